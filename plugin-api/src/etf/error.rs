//! The one error type of the codec.

use std::fmt;

/// Why an encode or a decode failed, and where.
///
/// A decode error carries the byte offset into the input (counting the leading version
/// byte 131, so the first term starts at byte 1) because the bytes usually came from
/// another actor or another node and "at byte 17" is what lets a person find the bad spot
/// in a hex dump. The text names what was expected and what was found, with the ETF tag
/// name, e.g. ``expected an atom or tagged tuple for enum `Msg`, found binary of 3 bytes
/// (BINARY_EXT) at byte 1``.
///
/// The payload is boxed so that `Result<T, Error>` stays one pointer wide on the hot path.
pub struct Error(Box<Inner>);

struct Inner {
    msg: String,
    offset: Option<usize>,
}

impl Error {
    /// An error at a known byte offset of the input.
    pub(crate) fn at(msg: impl Into<String>, offset: usize) -> Self {
        Error(Box::new(Inner {
            msg: msg.into(),
            offset: Some(offset),
        }))
    }

    /// An error with no position (encoding errors, or messages from serde's visitors
    /// before [`Error::or_at`] places them).
    pub(crate) fn msg(msg: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            msg: msg.into(),
            offset: None,
        }))
    }

    /// Places an error raised by a visitor (which cannot know the offset) at `offset`,
    /// keeping the innermost position if one was already set.
    #[cold]
    pub(crate) fn or_at(mut self, offset: usize) -> Self {
        if self.0.offset.is_none() {
            self.0.offset = Some(offset);
        }
        self
    }

    /// The byte offset in the decoded input where the problem was found (the version byte
    /// is byte 0); `None` for encoding errors. Lets tools point at the bad byte.
    pub fn offset(&self) -> Option<usize> {
        self.0.offset
    }

    /// The description without the position, for callers that format the offset
    /// themselves.
    pub fn message(&self) -> &str {
        &self.0.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.offset {
            Some(o) => write!(f, "{} at byte {o}", self.0.msg),
            None => f.write_str(&self.0.msg),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "etf::Error({self})")
    }
}

impl std::error::Error for Error {}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::msg(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::msg(msg.to_string())
    }
}
