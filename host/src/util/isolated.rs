//! [`Isolated`]: a value on cache lines of its own, without over-alignment.

/// A value no other data shares a cache line with: 64 bytes of padding on each side.
///
/// For data one thread writes often and others touch too: an actor's mailbox, what a
/// worker publishes per message. Sharing a line with it makes every other access a cache
/// miss (it doubled the cost of a message once).
///
/// Not `CachePadded`: that aligns to 128 bytes, so every `Arc<Actor>` came from
/// `posix_memalign`, which in glibc searches its free chunks for an aligned one — a third
/// of the time of spawning 100,000 linked children went there. Padding needs no
/// alignment, so an actor is a plain `malloc`.
#[repr(C)]
pub(crate) struct Isolated<T> {
    _before: [u8; 64],
    value: T,
    _after: [u8; 64],
}

impl<T> Isolated<T> {
    /// `value`, padded.
    pub(crate) fn new(value: T) -> Self {
        Isolated {
            _before: [0; 64],
            value,
            _after: [0; 64],
        }
    }
}

impl<T> std::ops::Deref for Isolated<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
