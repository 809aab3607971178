//! Atoms: the [`Atom`] newtype, writing atoms, reading the four atom encodings, the
//! allocation-free snake_case conversion of variant names, and Erlang-syntax quoting.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use super::error::Error;
use super::tags::{ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT};
use super::ATOM_MARKER;

/// A Rust string that travels as an Erlang atom instead of a binary.
///
/// `String` maps to a binary (`<<"text">>`), which is what Erlang code uses for text; but
/// some protocol fields are atoms on the Erlang side (a status like `ok`, a registered
/// name, a node name) and are not known at compile time, so they cannot be a unit enum
/// variant. Wrapping them in `Atom` keeps them atoms on the wire. With other serde
/// formats (JSON, ...) an `Atom` is just its string.
///
/// Decoding with this codec requires an atom (any of the four atom encodings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Atom(pub String);

impl Atom {
    /// Makes an atom from anything string-like; a shorthand for `Atom(s.into())`.
    pub fn new(s: impl Into<String>) -> Self {
        Atom(s.into())
    }

    /// The atom's text, to match on without moving out of the atom.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom(s.to_owned())
    }
}

impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom(s)
    }
}

impl AsRef<str> for Atom {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Prints the atom in Erlang syntax, quoted when Erlang would need quotes (`ok`,
/// `'Hello world'`).
impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_atom_display(f, &self.0)
    }
}

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(ATOM_MARKER, self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Atom;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an atom")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Atom, E> {
                Ok(Atom(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Atom, E> {
                Ok(Atom(v))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Atom, D::Error> {
                String::deserialize(d).map(Atom)
            }
        }
        d.deserialize_newtype_struct(ATOM_MARKER, V)
    }
}

/// Writes `s` as `SMALL_ATOM_UTF8_EXT` (up to 255 bytes) or `ATOM_UTF8_EXT`.
///
/// Erlang refuses atoms longer than 255 characters, so those are an error here rather
/// than bytes a real node would reject.
#[inline]
pub(crate) fn write_atom(out: &mut Vec<u8>, s: &str) -> Result<(), Error> {
    let len = s.len();
    if len <= 255 {
        out.reserve(2 + len);
        out.push(SMALL_ATOM_UTF8_EXT);
        out.push(len as u8);
    } else {
        check_long_atom(s)?;
        out.push(ATOM_UTF8_EXT);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

#[cold]
fn check_long_atom(s: &str) -> Result<(), Error> {
    let chars = s.chars().count();
    if chars > 255 || s.len() > u16::MAX as usize {
        return Err(Error::msg(format!(
            "atom of {chars} characters is longer than Erlang's limit of 255"
        )));
    }
    Ok(())
}

/// Writes `name` (a Rust type or variant name) converted to snake_case as an atom,
/// straight into `out` without building a `String`.
#[inline]
pub(crate) fn write_snake_atom(out: &mut Vec<u8>, name: &str) -> Result<(), Error> {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return write_atom(out, name);
    }
    let len = Snake::new(name).count();
    if len > 255 {
        let s: String = snake_string(name);
        return write_atom(out, &s);
    }
    out.reserve(2 + len);
    out.push(SMALL_ATOM_UTF8_EXT);
    out.push(len as u8);
    out.extend(Snake::new(name));
    Ok(())
}

/// The snake_case form of `name` as a `String` (error messages only).
pub(crate) fn snake_string(name: &str) -> String {
    let bytes: Vec<u8> = Snake::new(name).collect();
    // Only ASCII bytes are changed or inserted, so UTF-8 validity is preserved.
    String::from_utf8(bytes).unwrap_or_else(|_| name.to_owned())
}

/// Whether `atom` is `name` converted to snake_case, compared byte by byte as the
/// conversion runs (no allocation, this is on the decode hot path).
#[inline]
pub(crate) fn snake_eq(name: &str, atom: &[u8]) -> bool {
    // Conversion only inserts bytes, so a shorter atom can never match.
    atom.len() >= name.len() && Snake::new(name).eq(atom.iter().copied())
}

/// Iterator over the bytes of `name` in snake_case: `GetCount` → `get_count`,
/// `HTTPRequest` → `http_request`, `V2Beta` → `v2_beta`; already snake_case names are
/// unchanged. Only ASCII letters are touched.
pub(crate) struct Snake<'a> {
    b: &'a [u8],
    i: usize,
    pending: Option<u8>,
}

impl<'a> Snake<'a> {
    pub(crate) fn new(name: &'a str) -> Self {
        Snake {
            b: name.as_bytes(),
            i: 0,
            pending: None,
        }
    }
}

impl Iterator for Snake<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        let c = *self.b.get(self.i)?;
        let i = self.i;
        self.i += 1;
        if !c.is_ascii_uppercase() {
            return Some(c);
        }
        let lower = c.to_ascii_lowercase();
        if i > 0 {
            let prev = self.b[i - 1];
            let next_lower = self.b.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                self.pending = Some(lower);
                return Some(b'_');
            }
        }
        Some(lower)
    }
}

/// An atom as found in the input: UTF-8 (the modern encodings) or Latin-1 (`ATOM_EXT`,
/// `SMALL_ATOM_EXT`, still written by OTP 25 and older).
#[derive(Clone, Copy)]
pub(crate) enum AtomRef<'de> {
    Utf8(&'de str),
    Latin1(&'de [u8]),
}

impl<'de> AtomRef<'de> {
    /// The atom's text; borrowed unless it is Latin-1 with non-ASCII characters.
    #[inline]
    pub(crate) fn text(self) -> Cow<'de, str> {
        match self {
            AtomRef::Utf8(s) => Cow::Borrowed(s),
            AtomRef::Latin1(b) => latin1(b),
        }
    }

    /// Hands the atom's text to a visitor, borrowed when possible.
    #[inline]
    pub(crate) fn visit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.text() {
            Cow::Borrowed(s) => v.visit_borrowed_str(s),
            Cow::Owned(s) => v.visit_string(s),
        }
    }
}

/// Latin-1 bytes as a string: borrowed when ASCII (the common case), converted otherwise.
#[inline]
pub(crate) fn latin1(b: &[u8]) -> Cow<'_, str> {
    if b.is_ascii() {
        // ASCII is valid UTF-8; the fallback is unreachable.
        Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default())
    } else {
        Cow::Owned(b.iter().map(|&c| c as char).collect())
    }
}

const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "else", "end", "fun", "if", "let", "maybe", "not", "of", "or",
    "orelse", "receive", "rem", "try", "when", "xor",
];

/// Writes an atom in Erlang source syntax: bare when it is a lowercase identifier that is
/// not a reserved word, otherwise single-quoted with escapes.
pub(crate) fn write_atom_display(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let bare = s.chars().next().is_some_and(is_lower)
        && s.chars()
            .all(|c| is_lower(c) || is_upper(c) || c.is_ascii_digit() || c == '_' || c == '@')
        && !RESERVED.contains(&s);
    if bare {
        return f.write_str(s);
    }
    f.write_char('\'')?;
    for c in s.chars() {
        write_escaped_char(f, c, '\'')?;
    }
    f.write_char('\'')
}

/// Erlang's lowercase letters (ASCII and Latin-1), which may start a bare atom.
fn is_lower(c: char) -> bool {
    c.is_ascii_lowercase() || (('\u{df}'..='\u{ff}').contains(&c) && c != '\u{f7}')
}

/// Erlang's uppercase letters (ASCII and Latin-1).
fn is_upper(c: char) -> bool {
    c.is_ascii_uppercase() || (('\u{c0}'..='\u{de}').contains(&c) && c != '\u{d7}')
}

/// Writes one character inside a quoted atom or string, escaping the quote, backslash and
/// control characters the way Erlang's printer does.
pub(crate) fn write_escaped_char(f: &mut impl fmt::Write, c: char, quote: char) -> fmt::Result {
    match c {
        '\\' => f.write_str("\\\\"),
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        '\u{8}' => f.write_str("\\b"),
        '\u{b}' => f.write_str("\\v"),
        '\u{c}' => f.write_str("\\f"),
        '\u{1b}' => f.write_str("\\e"),
        '\u{7f}' => f.write_str("\\d"),
        c if c == quote => {
            f.write_char('\\')?;
            f.write_char(c)
        }
        c if c.is_control() => write!(f, "\\x{{{:X}}}", c as u32),
        c => f.write_char(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_conversion() {
        for (name, snake) in [
            ("GetCount", "get_count"),
            ("Incr", "incr"),
            ("get_count", "get_count"),
            ("HTTPRequest", "http_request"),
            ("V2Beta", "v2_beta"),
            ("Foo_Bar", "foo_bar"),
            ("ABC", "abc"),
            ("", ""),
            ("ÉtéX", "Étéx"),
        ] {
            assert_eq!(snake_string(name), snake, "{name}");
            assert!(snake_eq(name, snake.as_bytes()), "{name}");
        }
        assert!(!snake_eq("GetCount", b"getcount"));
        assert!(!snake_eq("GetCount", b"get_count_"));
    }

    #[test]
    fn atom_quoting() {
        let show = |s: &str| {
            let mut out = String::new();
            write_atom_display(&mut out, s).unwrap();
            out
        };
        assert_eq!(show("ok"), "ok");
        assert_eq!(show("nonode@nohost"), "nonode@nohost");
        assert_eq!(show("Ok"), "'Ok'");
        assert_eq!(show("hello world"), "'hello world'");
        assert_eq!(show("it's"), "'it\\'s'");
        assert_eq!(show("end"), "'end'");
        assert_eq!(show(""), "''");
        assert_eq!(show("héllo"), "héllo");
        assert_eq!(show("日本"), "'日本'");
    }
}
