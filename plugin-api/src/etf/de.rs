//! The serde `Deserializer`: reads ETF bytes directly into the target type.
//!
//! Every read is bounds-checked (a short input is an error, never a panic), no length
//! field is trusted for allocation (capacities are capped by the bytes actually left),
//! and nesting deeper than [`MAX_DEPTH`] is refused so hostile input cannot overflow the
//! stack.

use std::fmt;

use serde::de::value::{BorrowedBytesDeserializer, BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::atom::{latin1, snake_eq, snake_string, AtomRef};
use super::error::Error;
use super::tags::{self, *};
use super::{ATOM_MARKER, LOCAL_NODE, PID_MARKER, TERM_MARKER};

type Result<T> = std::result::Result<T, Error>;

/// Deepest nesting of tuples, lists, maps and tagged enums accepted when decoding.
///
/// Real messages are a handful of levels deep. The limit keeps hostile input from
/// overflowing the stack: measured at the limit, a debug build needs about 4 KiB of
/// stack per level on the heaviest path (`#[serde(untagged)]` buffering), so 128 levels
/// fit in 512 KiB — well inside a default 2 MiB thread stack — and a release build needs
/// a quarter of that. (serde_json uses the same limit.)
pub const MAX_DEPTH: u32 = 128;

/// A reader over one encoded input. Cheap to copy (a slice, a position and a depth), which
/// lets look-ahead parse on a copy and throw it away.
#[derive(Clone, Copy)]
pub(crate) struct Deserializer<'de> {
    pub(crate) input: &'de [u8],
    pub(crate) pos: usize,
    pub(crate) depth: u32,
}

/// An integer as read from any of the four integer encodings: sign and magnitude, wide
/// enough for every Rust integer type.
#[derive(Clone, Copy)]
pub(crate) struct Int {
    negative: bool,
    magnitude: u128,
}

impl Int {
    fn to<T: TryFrom<u128> + TryFrom<i128>>(self) -> Option<T> {
        if self.negative {
            T::try_from(self.to_i128()?).ok()
        } else {
            T::try_from(self.magnitude).ok()
        }
    }

    fn to_i128(self) -> Option<i128> {
        if !self.negative {
            i128::try_from(self.magnitude).ok()
        } else if self.magnitude <= i128::MAX as u128 {
            Some(-(self.magnitude as i128))
        } else if self.magnitude == 1u128 << 127 {
            Some(i128::MIN)
        } else {
            None
        }
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative && self.magnitude != 0 {
            f.write_str("-")?;
        }
        write!(f, "{}", self.magnitude)
    }
}

impl<'de> Deserializer<'de> {
    /// A reader over a full, uncompressed encoding: checks the version byte. (The
    /// callers inflate a compressed term first, see `compressed`.)
    #[inline]
    pub(crate) fn from_versioned(input: &'de [u8]) -> Result<Self> {
        match input.first() {
            None => Err(Error::at("empty input, expected version byte 131", 0)),
            Some(&VERSION) => {
                let de = Deserializer {
                    input,
                    pos: 1,
                    depth: 0,
                };
                if input.get(1) == Some(&COMPRESSED) {
                    return Err(Error::at(
                        "internal: a compressed term reached the plain reader",
                        1,
                    ));
                }
                Ok(de)
            }
            Some(&b) => Err(Error::at(
                format!("expected version byte 131, found {b}"),
                0,
            )),
        }
    }

    /// A reader over the encoding of one term without the version byte.
    pub(crate) fn raw(input: &'de [u8]) -> Self {
        Deserializer {
            input,
            pos: 0,
            depth: 0,
        }
    }

    /// Fails unless the whole input was consumed: a message is exactly one term.
    #[inline]
    pub(crate) fn end(&self) -> Result<()> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(Error::at(
                format!(
                    "{} trailing bytes after the term",
                    self.input.len() - self.pos
                ),
                self.pos,
            ))
        }
    }

    // ---- low-level reads ---------------------------------------------------------

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    #[cold]
    fn eof(&self, need: usize) -> Error {
        Error::at(
            format!(
                "unexpected end of input: needed {need} bytes, {} left",
                self.remaining()
            ),
            self.pos,
        )
    }

    #[inline]
    pub(crate) fn peek(&self) -> Result<u8> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.eof(1)),
        }
    }

    #[inline]
    pub(crate) fn read_u8(&mut self) -> Result<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.input.get(self.pos..end));
        match slice {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.eof(n)),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub(crate) fn read_u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn read_u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn read_u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn read_f64(&mut self) -> Result<f64> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    /// A length field, as `usize`.
    #[inline]
    pub(crate) fn read_len32(&mut self) -> Result<usize> {
        Ok(self.read_u32()? as usize)
    }

    #[inline]
    pub(crate) fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::at(
                format!("term nested deeper than {MAX_DEPTH} levels"),
                self.pos,
            ));
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Capacity to reserve for `n` announced elements: never more than the bytes left
    /// (every element takes at least one), so a forged length cannot allocate gigabytes.
    #[inline]
    pub(crate) fn cautious(&self, n: usize) -> usize {
        n.min(self.remaining()).min(4096)
    }

    // ---- errors ------------------------------------------------------------------

    /// "expected X, found Y (TAG_NAME)" at the current position.
    #[cold]
    pub(crate) fn unexpected(&self, expected: fmt::Arguments<'_>) -> Error {
        Error::at(
            format!(
                "expected {expected}, found {}",
                describe(self.input, self.pos)
            ),
            self.pos,
        )
    }

    // ---- term pieces -------------------------------------------------------------

    /// The body of an atom whose tag was just read.
    #[inline]
    pub(crate) fn atom_body(&mut self, tag: u8) -> Result<AtomRef<'de>> {
        let at = self.pos - 1;
        let (len, utf8) = match tag {
            SMALL_ATOM_UTF8_EXT => (self.read_u8()? as usize, true),
            ATOM_UTF8_EXT => (self.read_u16()? as usize, true),
            SMALL_ATOM_EXT => (self.read_u8()? as usize, false),
            ATOM_EXT => (self.read_u16()? as usize, false),
            _ => {
                self.pos = at;
                return Err(self.unexpected(format_args!("an atom")));
            }
        };
        let bytes = self.take(len)?;
        if utf8 {
            match std::str::from_utf8(bytes) {
                Ok(s) => Ok(AtomRef::Utf8(s)),
                Err(_) => Err(Error::at("atom is not valid UTF-8", at)),
            }
        } else {
            Ok(AtomRef::Latin1(bytes))
        }
    }

    /// Reads an atom, or fails naming `what` needed it.
    #[inline]
    pub(crate) fn read_atom(&mut self, what: fmt::Arguments<'_>) -> Result<AtomRef<'de>> {
        let tag = self.peek()?;
        if !tags::is_atom(tag) {
            return Err(self.unexpected(what));
        }
        self.pos += 1;
        self.atom_body(tag)
    }

    /// The atom at the current position, if there is one, without consuming it; returns
    /// the atom and the position after it.
    #[inline]
    fn peek_atom(&self) -> Result<Option<(AtomRef<'de>, usize)>> {
        let tag = self.peek()?;
        if !tags::is_atom(tag) {
            return Ok(None);
        }
        let mut c = *self;
        c.pos += 1;
        let a = c.atom_body(tag)?;
        Ok(Some((a, c.pos)))
    }

    /// Reads a pid of [`LOCAL_NODE`] (its tag next) as the id it carries: ID the low
    /// half, serial the high half. A pid of any other node is an error that names it.
    pub(crate) fn read_local_pid(&mut self) -> Result<u64> {
        let start = self.pos;
        let tag = self.read_u8()?;
        let node = self.read_atom(format_args!("a pid's node"))?.text();
        let id = self.read_u32()?;
        let serial = self.read_u32()?;
        let creation = if tag == NEW_PID_EXT {
            self.read_u32()?
        } else {
            self.read_u8()? as u32
        };
        if node != LOCAL_NODE || creation != 0 {
            return Err(Error::at(
                format!(
                    "a pid of node `{node}` (creation {creation}): only pids the host \
                     handed in (node `{LOCAL_NODE}`) decode as a Pid"
                ),
                start,
            ));
        }
        Ok(u64::from(serial) << 32 | u64::from(id))
    }

    /// Reads an integer in any encoding, failing (naming `what` wanted it) on other terms
    /// and on bignums wider than 128 bits.
    #[inline]
    pub(crate) fn read_int(&mut self, what: &str) -> Result<Int> {
        match self.input.get(self.pos..self.pos + 2) {
            Some(&[SMALL_INTEGER_EXT, b]) => {
                self.pos += 2;
                Ok(Int {
                    negative: false,
                    magnitude: b as u128,
                })
            }
            _ => self.read_int_slow(what),
        }
    }

    fn read_int_slow(&mut self, what: &str) -> Result<Int> {
        let start = self.pos;
        let tag = self.peek()?;
        let int = match tag {
            SMALL_INTEGER_EXT => {
                self.pos += 1;
                Int {
                    negative: false,
                    magnitude: self.read_u8()? as u128,
                }
            }
            INTEGER_EXT => {
                self.pos += 1;
                let v = self.read_u32()? as i32;
                Int {
                    negative: v < 0,
                    magnitude: v.unsigned_abs() as u128,
                }
            }
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                self.pos += 1;
                let n = if tag == SMALL_BIG_EXT {
                    self.read_u8()? as usize
                } else {
                    self.read_len32()?
                };
                let (negative, digits) = self.big_body(n)?;
                if digits.len() > 16 {
                    return Err(Error::at(
                        format!("integer of {} bytes is too large for {what}", digits.len()),
                        start,
                    ));
                }
                let mut le = [0u8; 16];
                le[..digits.len()].copy_from_slice(digits);
                Int {
                    negative,
                    magnitude: u128::from_le_bytes(le),
                }
            }
            _ => return Err(self.unexpected(format_args!("an integer for {what}"))),
        };
        Ok(int)
    }

    /// Sign and little-endian digits (high zero bytes trimmed) of a bignum whose tag and
    /// length were read.
    pub(crate) fn big_body(&mut self, n: usize) -> Result<(bool, &'de [u8])> {
        let sign_at = self.pos;
        let negative = match self.read_u8()? {
            0 => false,
            1 => true,
            s => return Err(Error::at(format!("invalid bignum sign byte {s}"), sign_at)),
        };
        let mut digits = self.take(n)?;
        while let [rest @ .., 0] = digits {
            digits = rest;
        }
        Ok((negative, digits))
    }

    /// The body of `FLOAT_EXT`: 31 bytes of `printf("%.20e")` text.
    pub(crate) fn old_float_body(&mut self) -> Result<f64> {
        let at = self.pos;
        let text = self.take(31)?;
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        std::str::from_utf8(&text[..end])
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| Error::at("FLOAT_EXT holds no valid float text", at))
    }

    /// Reads a float (either encoding); integers are accepted too, as Erlang arithmetic
    /// mixes them freely.
    fn read_float(&mut self, what: &str) -> Result<f64> {
        match self.peek()? {
            NEW_FLOAT_EXT => {
                self.pos += 1;
                self.read_f64()
            }
            FLOAT_EXT => {
                self.pos += 1;
                self.old_float_body()
            }
            SMALL_INTEGER_EXT | INTEGER_EXT | SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let i = self.read_int(what)?;
                Ok(match i.to_i128() {
                    Some(v) => v as f64,
                    None => i.magnitude as f64,
                })
            }
            _ => Err(self.unexpected(format_args!("a float for {what}"))),
        }
    }

    /// Reads a list/char list/binary as text, for `String` targets. `LIST_EXT` elements
    /// are Unicode code points, `STRING_EXT` bytes are Latin-1.
    fn read_list_text(&mut self) -> Result<String> {
        let n = self.read_len32()?;
        let mut s = String::with_capacity(self.cautious(n));
        for _ in 0..n {
            let at = self.pos;
            let cp = self.read_int("a character")?;
            match cp.to::<u32>().and_then(char::from_u32) {
                Some(c) => s.push(c),
                None => {
                    return Err(Error::at(
                        format!("{cp} in a char list is not a Unicode code point"),
                        at,
                    ))
                }
            }
        }
        self.nil_tail()?;
        Ok(s)
    }

    /// Reads a `LIST_EXT` of integers 0..=255 into bytes.
    fn read_list_bytes(&mut self) -> Result<Vec<u8>> {
        let n = self.read_len32()?;
        let mut v = Vec::with_capacity(self.cautious(n));
        for _ in 0..n {
            let at = self.pos;
            let b = self.read_int("a byte")?;
            v.push(
                b.to::<u8>()
                    .ok_or_else(|| Error::at(format!("{b} is not a byte (0..=255)"), at))?,
            );
        }
        self.nil_tail()?;
        Ok(v)
    }

    /// The tail of a proper list must be `[]`.
    #[inline]
    fn nil_tail(&mut self) -> Result<()> {
        if self.peek()? == NIL_EXT {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(format_args!("[] as the tail of a proper list")))
        }
    }

    /// Skips one term of any kind, validating its structure (used for ignored fields and
    /// to measure a term).
    pub(crate) fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
                let n = if self.read_u8()? == SMALL_TUPLE_EXT {
                    self.read_u8()? as usize
                } else {
                    self.read_len32()?
                };
                self.skip_n(n, false)
            }
            LIST_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                self.skip_n(n, true)
            }
            MAP_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                self.enter()?;
                for _ in 0..n {
                    self.skip()?;
                    self.skip()?;
                }
                self.leave();
                Ok(())
            }
            EXPORT_EXT => {
                self.pos += 1;
                self.skip_n(3, false)
            }
            _ => self.skip_leaf(),
        }
    }

    /// Skips `n` nested terms (and a list tail).
    fn skip_n(&mut self, n: usize, tail: bool) -> Result<()> {
        self.enter()?;
        for _ in 0..n {
            self.skip()?;
        }
        if tail {
            self.skip()?;
        }
        self.leave();
        Ok(())
    }

    /// Skips a term that contains no other terms.
    #[inline(never)]
    fn skip_leaf(&mut self) -> Result<()> {
        let start = self.pos;
        let tag = self.read_u8()?;
        match tag {
            SMALL_INTEGER_EXT => {
                self.take(1)?;
            }
            INTEGER_EXT => {
                self.take(4)?;
            }
            NEW_FLOAT_EXT => {
                self.take(8)?;
            }
            FLOAT_EXT => {
                self.take(31)?;
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                self.atom_body(tag)?;
            }
            SMALL_BIG_EXT => {
                let n = self.read_u8()? as usize;
                self.big_body(n)?;
            }
            LARGE_BIG_EXT => {
                let n = self.read_len32()?;
                self.big_body(n)?;
            }
            NIL_EXT => {}
            STRING_EXT => {
                let n = self.read_u16()? as usize;
                self.take(n)?;
            }
            BINARY_EXT => {
                let n = self.read_len32()?;
                self.take(n)?;
            }
            BIT_BINARY_EXT => {
                let n = self.read_len32()?;
                self.bits_byte(n)?;
                self.take(n)?;
            }
            PID_EXT | NEW_PID_EXT | PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT | REFERENCE_EXT => {
                self.read_atom(format_args!("a node name atom"))?;
                self.take(match tag {
                    PID_EXT => 9,
                    NEW_PID_EXT => 12,
                    PORT_EXT | REFERENCE_EXT => 5,
                    NEW_PORT_EXT => 8,
                    _ => 12,
                })?;
            }
            NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let n = self.read_u16()? as usize;
                self.read_atom(format_args!("a node name atom"))?;
                let creation = if tag == NEW_REFERENCE_EXT { 1 } else { 4 };
                self.take(creation + 4 * n)?;
            }
            NEW_FUN_EXT => {
                let size = self.read_len32()?;
                if size < 4 {
                    return Err(Error::at(format!("NEW_FUN_EXT size {size} < 4"), start));
                }
                self.take(size - 4)?;
            }
            _ => {
                self.pos = start;
                return Err(self.unsupported(tag));
            }
        }
        Ok(())
    }

    /// The "bits used in the last byte" field of `BIT_BINARY_EXT`.
    pub(crate) fn bits_byte(&mut self, len: usize) -> Result<u8> {
        let at = self.pos;
        let bits = self.read_u8()?;
        let ok = if len == 0 {
            bits <= 8
        } else {
            (1..=8).contains(&bits)
        };
        if !ok {
            return Err(Error::at(
                format!("BIT_BINARY_EXT with {bits} bits in the last byte"),
                at,
            ));
        }
        Ok(bits)
    }

    #[cold]
    pub(crate) fn unsupported(&self, tag: u8) -> Error {
        let msg = match tag {
            COMPRESSED => "a compressed term (tag 80) may only follow the version byte, \
                 not appear inside a term"
                .to_owned(),
            ATOM_CACHE_REF => "atom cache references (tag 82) only occur inside the distribution \
                 protocol and are not supported"
                .to_owned(),
            LOCAL_EXT => "LOCAL_EXT (tag 121) terms are node-local and not supported".to_owned(),
            FUN_EXT => "the old FUN_EXT (tag 117) is not supported".to_owned(),
            VERSION => "unexpected version byte 131 inside a term".to_owned(),
            t => format!("unknown term tag {t}"),
        };
        Error::at(msg, self.pos)
    }

    // ---- serde helpers -----------------------------------------------------------

    /// Reads a list (`LIST_EXT`, `NIL_EXT`, `STRING_EXT` or — leniently — `BINARY_EXT`
    /// as a list of bytes) and hands its elements to `visitor`.
    fn visit_list<V: Visitor<'de>>(&mut self, visitor: V, what: &str) -> Result<V::Value> {
        match self.peek()? {
            NIL_EXT => {
                self.pos += 1;
                visitor.visit_seq(Elements {
                    de: self,
                    remaining: 0,
                    tail: false,
                })
            }
            LIST_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                self.enter()?;
                let mut access = Elements {
                    de: self,
                    remaining: n,
                    tail: true,
                };
                let value = visitor.visit_seq(&mut access)?;
                access.finish()?;
                self.leave();
                Ok(value)
            }
            STRING_EXT => {
                self.pos += 1;
                let n = self.read_u16()? as usize;
                self.visit_byte_elements(n, visitor)
            }
            BINARY_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                self.visit_byte_elements(n, visitor)
            }
            _ => Err(self.unexpected(format_args!("a list for {what}"))),
        }
    }

    fn visit_byte_elements<V: Visitor<'de>>(&mut self, n: usize, visitor: V) -> Result<V::Value> {
        let base = self.pos;
        let bytes = self.take(n)?;
        let mut access = ByteElements { bytes, i: 0, base };
        let value = visitor.visit_seq(&mut access)?;
        if access.i != bytes.len() {
            return Err(Error::at(
                format!("{} unread elements in the list", bytes.len() - access.i),
                base + access.i,
            ));
        }
        Ok(value)
    }

    /// Reads a tuple of any arity and hands its elements to `visitor`.
    fn visit_tuple<V: Visitor<'de>>(
        &mut self,
        visitor: V,
        len: Option<usize>,
        what: fmt::Arguments<'_>,
    ) -> Result<V::Value> {
        let n = match self.peek()? {
            SMALL_TUPLE_EXT => {
                self.pos += 1;
                self.read_u8()? as usize
            }
            LARGE_TUPLE_EXT => {
                self.pos += 1;
                self.read_len32()?
            }
            NIL_EXT | LIST_EXT | STRING_EXT if len.is_some() => {
                return self.visit_list(visitor, "a tuple");
            }
            _ => return Err(self.unexpected(what)),
        };
        if let Some(len) = len {
            if n != len {
                return Err(Error::at(
                    format!("expected a tuple of arity {len}, found a tuple of arity {n}"),
                    self.pos,
                ));
            }
        }
        self.enter()?;
        let mut access = Elements {
            de: self,
            remaining: n,
            tail: false,
        };
        let value = visitor.visit_seq(&mut access)?;
        access.finish()?;
        self.leave();
        Ok(value)
    }

    /// Reads a map and hands its pairs to `visitor`.
    fn visit_map<V: Visitor<'de>>(
        &mut self,
        visitor: V,
        what: fmt::Arguments<'_>,
    ) -> Result<V::Value> {
        if self.peek()? != MAP_EXT {
            return Err(self.unexpected(what));
        }
        self.pos += 1;
        let n = self.read_len32()?;
        self.enter()?;
        let mut access = Pairs {
            de: self,
            remaining: n,
        };
        let value = visitor.visit_map(&mut access)?;
        if access.remaining != 0 {
            return Err(Error::at(
                format!("{} unread entries in the map", access.remaining),
                self.pos,
            ));
        }
        self.leave();
        Ok(value)
    }

    /// `deserialize_any`: maps the term to the nearest serde data-model value.
    fn any<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let tag = self.peek()?;
        match tag {
            SMALL_INTEGER_EXT | INTEGER_EXT | SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let i = self.read_int("a value")?;
                if !i.negative {
                    match u64::try_from(i.magnitude) {
                        Ok(v) => visitor.visit_u64(v),
                        Err(_) => visitor.visit_u128(i.magnitude),
                    }
                } else if let Some(v) = i.to::<i64>() {
                    visitor.visit_i64(v)
                } else if let Some(v) = i.to_i128() {
                    visitor.visit_i128(v)
                } else {
                    Err(Error::at(
                        format!("integer {i} does not fit in i128"),
                        start,
                    ))
                }
            }
            NEW_FLOAT_EXT | FLOAT_EXT => visitor.visit_f64(self.read_float("a value")?),
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                self.pos += 1;
                let atom = self.atom_body(tag)?;
                match &*atom.text() {
                    "true" => visitor.visit_bool(true),
                    "false" => visitor.visit_bool(false),
                    "undefined" | "nil" => visitor.visit_none(),
                    _ => atom.visit(visitor),
                }
            }
            BINARY_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                let b = self.take(n)?;
                match std::str::from_utf8(b) {
                    Ok(s) => visitor.visit_borrowed_str(s),
                    Err(_) => visitor.visit_borrowed_bytes(b),
                }
            }
            BIT_BINARY_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                if self.bits_byte(n)? != 8 {
                    return Err(Error::at(
                        "a bitstring that is not a whole number of bytes has no serde \
                         equivalent (decode into Term)",
                        start,
                    ));
                }
                visitor.visit_borrowed_bytes(self.take(n)?)
            }
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
                self.visit_tuple(visitor, None, format_args!("a tuple"))
            }
            NIL_EXT | LIST_EXT | STRING_EXT => self.visit_list(visitor, "a value"),
            MAP_EXT => self.visit_map(visitor, format_args!("a map")),
            PID_EXT | NEW_PID_EXT | PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT | REFERENCE_EXT
            | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT | NEW_FUN_EXT | EXPORT_EXT => Err(Error::at(
                format!(
                    "a {} has no serde equivalent (decode into Term)",
                    kind_name(tag)
                ),
                self.pos,
            )),
            t => Err(self.unsupported(t)),
        }
    }
}

/// What kind of term a tag starts, in words.
fn kind_name(tag: u8) -> &'static str {
    match tag {
        SMALL_INTEGER_EXT | INTEGER_EXT => "integer",
        SMALL_BIG_EXT | LARGE_BIG_EXT => "bignum",
        NEW_FLOAT_EXT | FLOAT_EXT => "float",
        ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => "atom",
        SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => "tuple",
        NIL_EXT => "empty list",
        STRING_EXT => "char list",
        LIST_EXT => "list",
        BINARY_EXT => "binary",
        BIT_BINARY_EXT => "bitstring",
        MAP_EXT => "map",
        PID_EXT | NEW_PID_EXT => "pid",
        PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => "port",
        REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => "reference",
        NEW_FUN_EXT | EXPORT_EXT | FUN_EXT => "fun",
        _ => "term",
    }
}

/// Describes the term starting at `pos` for an error message: kind, a short detail and
/// the tag name, e.g. ``atom `foo` (SMALL_ATOM_UTF8_EXT)``.
pub(crate) fn describe(input: &[u8], pos: usize) -> String {
    let Some(&tag) = input.get(pos) else {
        return "end of input".to_owned();
    };
    let mut r = Deserializer {
        input,
        pos: pos + 1,
        depth: 0,
    };
    let detail = match tag {
        ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => match r.atom_body(tag) {
            Ok(a) => {
                let text = a.text();
                let shown: String = text.chars().take(64).collect();
                let dots = if text.chars().count() > 64 { "..." } else { "" };
                format!("atom `{shown}{dots}`")
            }
            Err(e) => format!("malformed atom: {}", e.message()),
        },
        SMALL_INTEGER_EXT | INTEGER_EXT | SMALL_BIG_EXT | LARGE_BIG_EXT => {
            r.pos = pos;
            match r.read_int("") {
                Ok(i) => format!("integer {i}"),
                Err(_) => "bignum".to_owned(),
            }
        }
        NEW_FLOAT_EXT => match r.read_f64() {
            Ok(f) => format!("float {f:?}"),
            Err(_) => "truncated float".to_owned(),
        },
        SMALL_TUPLE_EXT => match r.read_u8() {
            Ok(n) => format!("tuple of arity {n}"),
            Err(_) => "truncated tuple".to_owned(),
        },
        LARGE_TUPLE_EXT => match r.read_u32() {
            Ok(n) => format!("tuple of arity {n}"),
            Err(_) => "truncated tuple".to_owned(),
        },
        STRING_EXT => match r.read_u16() {
            Ok(n) => format!("char list of {n} bytes"),
            Err(_) => "truncated char list".to_owned(),
        },
        LIST_EXT => match r.read_u32() {
            Ok(n) => format!("list of {n} elements"),
            Err(_) => "truncated list".to_owned(),
        },
        BINARY_EXT => match r.read_u32() {
            Ok(n) => format!("binary of {n} bytes"),
            Err(_) => "truncated binary".to_owned(),
        },
        MAP_EXT => match r.read_u32() {
            Ok(n) => format!("map of {n} entries"),
            Err(_) => "truncated map".to_owned(),
        },
        NIL_EXT => "empty list []".to_owned(),
        t => {
            let k = kind_name(t);
            if k == "term" {
                return format!("unknown tag {t}");
            }
            k.to_owned()
        }
    };
    format!("{detail} ({})", tags::name(tag))
}

/// Elements of a list or tuple.
struct Elements<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    remaining: usize,
    /// A `LIST_EXT` still owes its `[]` tail.
    tail: bool,
}

impl Elements<'_, '_> {
    /// After the visitor is done: all elements must have been read, and a list's tail
    /// must be `[]`.
    fn finish(&mut self) -> Result<()> {
        if self.remaining != 0 {
            return Err(Error::at(
                format!("{} unread elements", self.remaining),
                self.de.pos,
            ));
        }
        if self.tail {
            self.tail = false;
            self.de.nil_tail()?;
        }
        Ok(())
    }
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.remaining == 0 {
            if self.tail {
                self.tail = false;
                self.de.nil_tail()?;
            }
            return Ok(None);
        }
        self.remaining -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.de.cautious(self.remaining))
    }
}

/// Elements of a `STRING_EXT` (or a binary read as a list): small integers.
struct ByteElements<'de> {
    bytes: &'de [u8],
    i: usize,
    base: usize,
}

impl<'de> de::SeqAccess<'de> for ByteElements<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some(&b) = self.bytes.get(self.i) else {
            return Ok(None);
        };
        let at = self.base + self.i;
        self.i += 1;
        seed.deserialize(b.into_deserializer())
            .map(Some)
            .map_err(|e: Error| e.or_at(at))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len() - self.i)
    }
}

/// Key/value pairs of a map.
struct Pairs<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    remaining: usize,
}

impl<'de> de::MapAccess<'de> for Pairs<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.de.cautious(self.remaining))
    }
}

/// An enum value: either a bare atom (unit variant) or a tuple `{tag, ...}` whose header
/// has been read.
struct Enum<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    name: &'static str,
    variants: &'static [&'static str],
    /// `None` for the atom form, `Some(arity)` for the tuple form.
    arity: Option<usize>,
    /// Where the tag atom starts, for error messages.
    tag_at: usize,
    /// Where the whole enum value starts.
    start: usize,
}

impl Enum<'_, '_> {
    #[cold]
    fn shape_error(&self, wanted: &str) -> Error {
        let found = match self.arity {
            None => describe(self.de.input, self.tag_at),
            Some(n) => format!("tuple of arity {n}"),
        };
        let tag = describe_tag(self.de.input, self.tag_at);
        Error::at(
            format!(
                "expected {wanted} for variant `{tag}` of enum `{}`, found {found}",
                self.name
            ),
            self.start,
        )
    }
}

/// The text of the atom at `at` (for error messages).
fn describe_tag(input: &[u8], at: usize) -> String {
    let mut r = Deserializer {
        input,
        pos: at,
        depth: 0,
    };
    match r.read_atom(format_args!("")) {
        Ok(a) => a.text().into_owned(),
        Err(_) => "?".to_owned(),
    }
}

impl<'de> de::EnumAccess<'de> for Enum<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let name = self.name;
        let atom = self
            .de
            .read_atom(format_args!("an atom naming a variant of enum `{name}`"))?;
        let text = atom.text();
        for &v in self.variants {
            if v == text || snake_eq(v, text.as_bytes()) {
                let value = seed.deserialize(BorrowedStrDeserializer::<Error>::new(v))?;
                return Ok((value, self));
            }
        }
        // Not a known name: let the enum decide (it may have a `#[serde(other)]` or an
        // alias), and report our own clearer error if it refuses.
        let fallback = match &text {
            std::borrow::Cow::Borrowed(s) => {
                seed.deserialize(BorrowedStrDeserializer::<Error>::new(s))
            }
            std::borrow::Cow::Owned(s) => {
                seed.deserialize(StringDeserializer::<Error>::new(s.clone()))
            }
        };
        match fallback {
            Ok(value) => Ok((value, self)),
            Err(_) => {
                let expected: Vec<String> = self.variants.iter().map(|v| snake_string(v)).collect();
                Err(Error::at(
                    format!(
                        "unknown variant `{text}` of enum `{name}` (expected one of {})",
                        expected.join(", ")
                    ),
                    self.tag_at,
                ))
            }
        }
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        match self.arity {
            None | Some(1) => Ok(()),
            Some(_) => Err(self.shape_error("a bare atom")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        match self.arity {
            Some(2) => seed.deserialize(self.de),
            _ => Err(self.shape_error("a tuple {tag, Value}")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        if self.arity != Some(len + 1) {
            return Err(self.shape_error(&format!("a tuple of arity {}", len + 1)));
        }
        let mut access = Elements {
            de: self.de,
            remaining: len,
            tail: false,
        };
        let value = visitor.visit_seq(&mut access)?;
        access.finish()?;
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if self.arity != Some(2) {
            return Err(self.shape_error("a tuple {tag, #{field => Value}}"));
        }
        let name = self.name;
        self.de.visit_map(
            visitor,
            format_args!("a map of fields for a variant of enum `{name}`"),
        )
    }
}

/// Hands `Term`'s deserializer the raw bytes of the next term (see `TERM_MARKER`): an
/// enum with one magic variant, which no other deserializer produces.
struct RawTerm<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for RawTerm<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let v = seed.deserialize(BorrowedStrDeserializer::<Error>::new(TERM_MARKER))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for RawTerm<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        Err(Error::msg("internal: raw term is a newtype variant"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        let start = self.de.pos;
        self.de.skip()?;
        let raw = &self.de.input[start..self.de.pos];
        seed.deserialize(BorrowedBytesDeserializer::<Error>::new(raw))
            .map_err(|e: Error| e.or_at(start))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value> {
        Err(Error::msg("internal: raw term is a newtype variant"))
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> Result<V::Value> {
        Err(Error::msg("internal: raw term is a newtype variant"))
    }
}

macro_rules! de_int {
    ($($method:ident => $visit:ident($ty:ty);)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let start = self.pos;
            let n = self.read_int(stringify!($ty))?;
            match n.to::<$ty>() {
                Some(v) => visitor.$visit(v).map_err(|e: Error| e.or_at(start)),
                None => Err(Error::at(
                    format!("integer {n} out of range for {}", stringify!($ty)),
                    start,
                )),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        self.any(visitor).map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        if let Some((atom, end)) = self.peek_atom()? {
            let b = match atom {
                AtomRef::Utf8("true") | AtomRef::Latin1(b"true") => Some(true),
                AtomRef::Utf8("false") | AtomRef::Latin1(b"false") => Some(false),
                _ => None,
            };
            if let Some(b) = b {
                self.pos = end;
                return visitor.visit_bool(b).map_err(|e: Error| e.or_at(start));
            }
        }
        Err(self.unexpected(format_args!("`true` or `false` for a bool")))
    }

    de_int! {
        deserialize_i8 => visit_i8(i8);
        deserialize_i16 => visit_i16(i16);
        deserialize_i32 => visit_i32(i32);
        deserialize_i64 => visit_i64(i64);
        deserialize_i128 => visit_i128(i128);
        deserialize_u8 => visit_u8(u8);
        deserialize_u16 => visit_u16(u16);
        deserialize_u32 => visit_u32(u32);
        deserialize_u128 => visit_u128(u128);
    }

    /// An integer, or a pid of the host ([`LOCAL_NODE`]) as its id: a `Pid` decodes
    /// through here, and a plugin that typed a pid as `u64` before pids were Erlang pids
    /// keeps working.
    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        if matches!(self.peek()?, NEW_PID_EXT | PID_EXT) {
            let id = self.read_local_pid()?;
            return visitor.visit_u64(id).map_err(|e: Error| e.or_at(start));
        }
        let n = self.read_int("u64")?;
        match n.to::<u64>() {
            Some(v) => visitor.visit_u64(v).map_err(|e: Error| e.or_at(start)),
            None => Err(Error::at(
                format!("integer {n} out of range for u64"),
                start,
            )),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let f = self.read_float("f32")?;
        visitor
            .visit_f32(f as f32)
            .map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let f = self.read_float("f64")?;
        visitor.visit_f64(f).map_err(|e: Error| e.or_at(start))
    }

    /// A char is an integer code point (`$a`); a one-character binary or atom is
    /// accepted too.
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let tag = self.peek()?;
        let c = match tag {
            SMALL_INTEGER_EXT | INTEGER_EXT | SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let n = self.read_int("char")?;
                n.to::<u32>()
                    .and_then(char::from_u32)
                    .ok_or_else(|| Error::at(format!("{n} is not a Unicode code point"), start))?
            }
            BINARY_EXT | ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                let s: String = self.text_value()?;
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => c,
                    _ => {
                        return Err(Error::at(
                            format!("expected one character, found {s:?}"),
                            start,
                        ))
                    }
                }
            }
            _ => return Err(self.unexpected(format_args!("an integer code point for a char"))),
        };
        visitor.visit_char(c).map_err(|e: Error| e.or_at(start))
    }

    /// Binaries (UTF-8), atoms, char lists (`STRING_EXT` as Latin-1, `LIST_EXT` of code
    /// points) and `[]` (the empty string) all decode to text.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let tag = self.peek()?;
        let r = match tag {
            BINARY_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                let b = self.take(n)?;
                match std::str::from_utf8(b) {
                    Ok(s) => visitor.visit_borrowed_str(s),
                    Err(e) => {
                        return Err(Error::at(
                            format!(
                                "binary is not valid UTF-8 (bad byte at offset {} of the \
                                 binary) for a string",
                                e.valid_up_to()
                            ),
                            start,
                        ))
                    }
                }
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                self.pos += 1;
                self.atom_body(tag)?.visit(visitor)
            }
            STRING_EXT => {
                self.pos += 1;
                let n = self.read_u16()? as usize;
                match latin1(self.take(n)?) {
                    std::borrow::Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
                    std::borrow::Cow::Owned(s) => visitor.visit_string(s),
                }
            }
            LIST_EXT => {
                self.pos += 1;
                let s = self.read_list_text()?;
                visitor.visit_string(s)
            }
            NIL_EXT => {
                self.pos += 1;
                visitor.visit_borrowed_str("")
            }
            _ => {
                return Err(
                    self.unexpected(format_args!("a binary, atom or char list for a string"))
                )
            }
        };
        r.map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    /// Binaries, char lists and lists of bytes decode to bytes.
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let tag = self.peek()?;
        let r = match tag {
            BINARY_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                visitor.visit_borrowed_bytes(self.take(n)?)
            }
            BIT_BINARY_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                if self.bits_byte(n)? != 8 {
                    return Err(Error::at(
                        "expected bytes, found a bitstring that is not a whole number of \
                         bytes",
                        start,
                    ));
                }
                visitor.visit_borrowed_bytes(self.take(n)?)
            }
            STRING_EXT => {
                self.pos += 1;
                let n = self.read_u16()? as usize;
                visitor.visit_borrowed_bytes(self.take(n)?)
            }
            LIST_EXT => {
                self.pos += 1;
                let v = self.read_list_bytes()?;
                visitor.visit_byte_buf(v)
            }
            NIL_EXT => {
                self.pos += 1;
                visitor.visit_borrowed_bytes(&[])
            }
            _ => return Err(self.unexpected(format_args!("a binary for bytes"))),
        };
        r.map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    /// `undefined` and `nil` are `None`; anything else is `Some`.
    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        if let Some((atom, end)) = self.peek_atom()? {
            if matches!(
                atom,
                AtomRef::Utf8("undefined" | "nil") | AtomRef::Latin1(b"undefined" | b"nil")
            ) {
                self.pos = end;
                return visitor.visit_none().map_err(|e: Error| e.or_at(start));
            }
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        if let Some((atom, end)) = self.peek_atom()? {
            if matches!(atom, AtomRef::Utf8("ok") | AtomRef::Latin1(b"ok")) {
                self.pos = end;
                return visitor.visit_unit().map_err(|e: Error| e.or_at(start));
            }
        }
        Err(self.unexpected(format_args!("`ok` for ()")))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.pos;
        if let Some((atom, end)) = self.peek_atom()? {
            let text = atom.text();
            if text == name || snake_eq(name, text.as_bytes()) {
                self.pos = end;
                return visitor.visit_unit().map_err(|e: Error| e.or_at(start));
            }
        }
        Err(self.unexpected(format_args!(
            "atom `{}` for unit struct `{name}`",
            snake_string(name)
        )))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.pos;
        match name {
            ATOM_MARKER => {
                let atom = self.read_atom(format_args!("an atom for Atom"))?;
                atom.visit(visitor).map_err(|e: Error| e.or_at(start))
            }
            TERM_MARKER => visitor
                .visit_enum(RawTerm { de: self })
                .map_err(|e: Error| e.or_at(start)),
            // A pid, or the bare id of a state saved before pids were Erlang pids.
            PID_MARKER => de::Deserializer::deserialize_u64(self, visitor),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        self.visit_list(visitor, "a sequence")
            .map_err(|e: Error| e.or_at(start))
    }

    /// Tuples are tuples; lists of the right length are accepted too, since serde also
    /// uses tuples for fixed-size arrays, which Erlang would send as lists.
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        self.visit_tuple(visitor, Some(len), format_args!("a tuple of arity {len}"))
            .map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.pos;
        self.visit_tuple(
            visitor,
            Some(len),
            format_args!("a tuple of arity {len} for `{name}`"),
        )
        .map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        self.visit_map(visitor, format_args!("a map"))
            .map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.pos;
        self.visit_map(visitor, format_args!("a map for struct `{name}`"))
            .map_err(|e: Error| e.or_at(start))
    }

    /// A unit variant is a bare atom (`get_count`); a variant with data is a tuple
    /// `{tag, ...}`.
    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.pos;
        let tag = self.peek()?;
        let arity = match tag {
            SMALL_TUPLE_EXT => {
                self.pos += 1;
                Some(self.read_u8()? as usize)
            }
            LARGE_TUPLE_EXT => {
                self.pos += 1;
                Some(self.read_len32()?)
            }
            t if tags::is_atom(t) => None,
            _ => {
                return Err(
                    self.unexpected(format_args!("an atom or a tagged tuple for enum `{name}`"))
                )
            }
        };
        if arity == Some(0) {
            return Err(Error::at(
                format!("expected a tagged tuple for enum `{name}`, found the empty tuple {{}}"),
                start,
            ));
        }
        self.enter()?;
        let tag_at = self.pos;
        let value = visitor
            .visit_enum(Enum {
                de: self,
                name,
                variants,
                arity,
                tag_at,
                start,
            })
            .map_err(|e: Error| e.or_at(start))?;
        self.leave();
        Ok(value)
    }

    /// Struct field names and enum tags: atoms or binaries (or an integer index).
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let tag = self.peek()?;
        let r = match tag {
            t if tags::is_atom(t) => {
                self.pos += 1;
                self.atom_body(t)?.visit(visitor)
            }
            BINARY_EXT => {
                self.pos += 1;
                let n = self.read_len32()?;
                let b = self.take(n)?;
                match std::str::from_utf8(b) {
                    Ok(s) => visitor.visit_borrowed_str(s),
                    Err(_) => visitor.visit_borrowed_bytes(b),
                }
            }
            SMALL_INTEGER_EXT | INTEGER_EXT => {
                let n = self.read_int("a field index")?;
                match n.to::<u64>() {
                    Some(v) => visitor.visit_u64(v),
                    None => return Err(Error::at(format!("field index {n} is negative"), start)),
                }
            }
            _ => return Err(self.unexpected(format_args!("an atom or binary as a field name"))),
        };
        r.map_err(|e: Error| e.or_at(start))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }
}

impl<'de> Deserializer<'de> {
    /// Text of a binary or atom (for `char`).
    fn text_value(&mut self) -> Result<String> {
        struct S;
        impl<'de> Visitor<'de> for S {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<String, E> {
                Ok(v.to_owned())
            }
        }
        de::Deserializer::deserialize_str(self, S)
    }
}
