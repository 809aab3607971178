//! An actor's mailbox: messages in arrival order, owned by the host.
//!
//! Every message is a host-owned `Vec<u8>` of ETF: nothing in a mailbox points into a
//! plugin, so a mailbox outlives any version of the code that will read it. That is what
//! lets messages keep queuing, in order, while their actor is suspended for a swap.

use std::collections::VecDeque;

use parking_lot::Mutex;
use plugin_api::abi::{FromRaw, MsgKind};

pub use crate::util::terms::MsgBytes;

/// One queued message.
#[derive(Debug)]
pub struct Envelope {
    /// Which callback handles it.
    pub kind: MsgKind,
    /// For a call: who waits for the reply. For a reply to a request: the request's tag
    /// (`caller` 0), so a reply the requester cannot decode can still be answered (see
    /// `process::run`). Zeroed otherwise.
    pub from: FromRaw,
    /// The message as ETF (version byte first).
    pub bytes: MsgBytes,
}

impl Envelope {
    /// A cast or info message.
    pub fn message(kind: MsgKind, bytes: impl Into<MsgBytes>) -> Self {
        Envelope {
            kind,
            from: FromRaw { caller: 0, tag: 0 },
            bytes: bytes.into(),
        }
    }

    /// `{reply, Tag, Reply}` to the actor that made request `tag`: an info message that
    /// remembers its tag.
    pub fn reply(tag: u64, bytes: impl Into<MsgBytes>) -> Self {
        Envelope {
            kind: MsgKind::Info,
            from: FromRaw { caller: 0, tag },
            bytes: bytes.into(),
        }
    }

    /// The request tag this info message answers, if it is a reply.
    pub fn reply_to(&self) -> Option<u64> {
        (self.kind == MsgKind::Info && self.from.caller == 0 && self.from.tag != 0)
            .then_some(self.from.tag)
    }

    /// A call awaiting a reply routed by `from`.
    pub fn call(from: FromRaw, bytes: impl Into<MsgBytes>) -> Self {
        Envelope {
            kind: MsgKind::Call,
            from,
            bytes: bytes.into(),
        }
    }
}

/// A FIFO of envelopes, safe to push from any thread.
///
/// A short critical section under an uncontended `parking_lot` mutex costs about as much
/// as a lock-free queue here, and keeps `len` exact for operators.
#[derive(Debug, Default)]
pub struct Mailbox {
    queue: Mutex<VecDeque<Envelope>>,
}

impl Mailbox {
    /// Appends a message; returns the new length.
    pub fn push(&self, env: Envelope) -> usize {
        let mut q = self.queue.lock();
        q.push_back(env);
        q.len()
    }

    /// Moves up to `max` of the oldest messages into `out` (which must be empty) under one
    /// lock. When everything fits, the queues are swapped: no copying, and `out`'s spare
    /// capacity becomes the mailbox's.
    pub fn take_batch(&self, max: usize, out: &mut VecDeque<Envelope>) {
        debug_assert!(out.is_empty());
        let mut q = self.queue.lock();
        if q.len() <= max {
            std::mem::swap(&mut *q, out);
        } else {
            out.extend(q.drain(..max));
        }
    }

    /// Puts messages taken by [`Mailbox::take_batch`] but not handled back at the front,
    /// in their order, ahead of anything that arrived since.
    pub fn put_back(&self, rest: &mut VecDeque<Envelope>) {
        if rest.is_empty() {
            return;
        }
        let mut q = self.queue.lock();
        while let Some(env) = rest.pop_back() {
            q.push_front(env);
        }
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    /// Number of waiting messages.
    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    /// Removes and returns everything (used when the actor dies, to fail pending calls).
    pub fn drain(&self) -> Vec<Envelope> {
        self.queue.lock().drain(..).collect()
    }
}
