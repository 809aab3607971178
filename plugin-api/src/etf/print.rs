//! Printing an encoded term in Erlang syntax straight from its bytes: the text of
//! [`display`](super::display) without building a [`Term`](super::Term) tree or the whole
//! string first, so that printing a 30 MB state costs a buffer rather than gigabytes of
//! tree nodes (`host ctl state` streams it to the socket this way).
//!
//! The walk reads the bytes in the order [`Term::decode`](super::Term::decode) does, with
//! the same checks and the same nesting count, so it succeeds exactly when `decode` does,
//! and then writes exactly `decode(bytes)?.to_string()`. The containers are printed here;
//! the leaves are small and go through the decoder's own leaf reader and `Term`'s
//! `Display`, except binaries, which print from the input slice without a copy.
//!
//! The one look-ahead: whether a list prints as a string (`"abc"`) depends on all its
//! elements and on its tail, so a list is first scanned on a copy of the reader — only
//! while its elements are printable integers, so each element is read at most twice.

use std::fmt;
use std::io;

use super::atom::write_escaped_char;
use super::compressed;
use super::de::Deserializer;
use super::error::Error;
use super::tags::*;
use super::term::{printable_latin1, write_binary_display, write_bit_binary, Term};

/// Why printing stopped.
pub(crate) enum Fail {
    /// The bytes do not decode (the text written so far is a prefix of nothing).
    Decode(Error),
    /// The output refused the text.
    Write,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Decode(e)
    }
}

impl From<fmt::Error> for Fail {
    fn from(_: fmt::Error) -> Fail {
        Fail::Write
    }
}

type R = std::result::Result<(), Fail>;

/// Prints a full encoding (version byte first; a compressed term is inflated first) to
/// `w`.
pub(crate) fn print_versioned<W: fmt::Write>(bytes: &[u8], w: &mut W) -> R {
    if compressed::is_compressed(bytes) {
        let data = compressed::inflate(bytes)?;
        let mut de = Deserializer::raw(&data);
        term(&mut de, w)?;
        de.end()?;
        return Ok(());
    }
    let mut de = Deserializer::from_versioned(bytes)?;
    term(&mut de, w)?;
    de.end()?;
    Ok(())
}

/// Writes [`display`](super::display)`(bytes)` to `out` as it reads the bytes, without
/// building a [`Term`] or the whole text: the memory it takes is the output's buffer,
/// whatever the term's size. Give it a buffered writer: the text arrives in small pieces.
///
/// When the bytes do not decode, the error is of kind [`io::ErrorKind::InvalidData`]
/// (wrapping the codec's [`Error`]) and `out` has received part of the text: to print
/// nothing in that case, check first by printing to [`io::sink`]. Never panics.
pub fn write_display(bytes: &[u8], out: &mut impl io::Write) -> io::Result<()> {
    struct Adapter<'a, W: io::Write> {
        out: &'a mut W,
        error: Option<io::Error>,
    }
    impl<W: io::Write> fmt::Write for Adapter<'_, W> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.out.write_all(s.as_bytes()).map_err(|e| {
                self.error = Some(e);
                fmt::Error
            })
        }
    }
    let mut a = Adapter { out, error: None };
    match print_versioned(bytes, &mut a) {
        Ok(()) => Ok(()),
        Err(Fail::Decode(e)) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(Fail::Write) => Err(a
            .error
            .unwrap_or_else(|| io::Error::other("the output refused the text"))),
    }
}

/// One term of any kind (as `parse_term`).
fn term<W: fmt::Write>(de: &mut Deserializer<'_>, w: &mut W) -> R {
    match de.peek()? {
        SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => tuple(de, w),
        LIST_EXT | NIL_EXT | STRING_EXT => list(de, w),
        MAP_EXT => map(de, w),
        BINARY_EXT => {
            de.pos += 1;
            let n = de.read_len32()?;
            write_binary_display(w, de.take(n)?)?;
            Ok(())
        }
        BIT_BINARY_EXT => {
            de.pos += 1;
            let n = de.read_len32()?;
            let bits = de.bits_byte(n)?;
            let bytes = de.take(n)?;
            if bits == 8 || n == 0 {
                write_binary_display(w, bytes)?;
            } else {
                write_bit_binary(w, bytes, bits)?;
            }
            Ok(())
        }
        _ => {
            let t = de.parse_leaf()?;
            write!(w, "{t}")?;
            Ok(())
        }
    }
}

fn tuple<W: fmt::Write>(de: &mut Deserializer<'_>, w: &mut W) -> R {
    let n = if de.read_u8()? == SMALL_TUPLE_EXT {
        de.read_u8()? as usize
    } else {
        de.read_len32()?
    };
    de.enter()?;
    w.write_char('{')?;
    for i in 0..n {
        if i > 0 {
            w.write_char(',')?;
        }
        term(de, w)?;
    }
    de.leave();
    w.write_char('}')?;
    Ok(())
}

fn map<W: fmt::Write>(de: &mut Deserializer<'_>, w: &mut W) -> R {
    de.pos += 1;
    let n = de.read_len32()?;
    de.enter()?;
    w.write_str("#{")?;
    for i in 0..n {
        if i > 0 {
            w.write_char(',')?;
        }
        term(de, w)?;
        w.write_str(" => ")?;
        term(de, w)?;
    }
    de.leave();
    w.write_char('}')?;
    Ok(())
}

/// How a list prints, which its elements and its tail decide together.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A non-empty proper list of printable codes: `"abc"`.
    Text,
    /// `[a,b]`, `[]` or `[a,b|t]`.
    Brackets,
    /// No elements and a tail that is not a list: the decoder returns the tail itself.
    Tail,
}

/// A list (`LIST_EXT`, `NIL_EXT` or `STRING_EXT`) with the tails that are lists flattened
/// into it, as `parse_list` does: each `LIST_EXT` segment one nesting level deeper.
fn list<W: fmt::Write>(de: &mut Deserializer<'_>, w: &mut W) -> R {
    let shape = shape(*de);
    match shape {
        Shape::Text => w.write_char('"')?,
        Shape::Brackets => w.write_char('[')?,
        Shape::Tail => {}
    }
    let (mut levels, mut first) = (0u32, true);
    let result = loop {
        match de.peek()? {
            LIST_EXT => {
                de.pos += 1;
                let n = de.read_len32()?;
                de.enter()?;
                levels += 1;
                for _ in 0..n {
                    if shape == Shape::Text {
                        let at = de.pos;
                        match de.parse_leaf()? {
                            Term::Integer(i) => write_escaped_char(w, i as u8 as char, '"')?,
                            _ => break_text(at)?,
                        }
                    } else {
                        if !first {
                            w.write_char(',')?;
                        }
                        first = false;
                        term(de, w)?;
                    }
                }
            }
            NIL_EXT => {
                de.pos += 1;
                break Ok(());
            }
            STRING_EXT => {
                de.pos += 1;
                let n = de.read_u16()? as usize;
                for &b in de.take(n)? {
                    if shape == Shape::Text {
                        write_escaped_char(w, b as char, '"')?;
                    } else {
                        if !first {
                            w.write_char(',')?;
                        }
                        first = false;
                        write!(w, "{b}")?;
                    }
                }
                break Ok(());
            }
            _ => {
                match shape {
                    Shape::Tail => {}
                    Shape::Brackets => w.write_char('|')?,
                    Shape::Text => break_text(de.pos)?,
                }
                break term(de, w);
            }
        }
    };
    result?;
    for _ in 0..levels {
        de.leave();
    }
    match shape {
        Shape::Text => w.write_char('"')?,
        Shape::Brackets => w.write_char(']')?,
        Shape::Tail => {}
    }
    Ok(())
}

/// The look-ahead found a string where there is none: a bug of [`shape`], reported as an
/// error rather than printed wrong.
#[cold]
fn break_text(at: usize) -> R {
    Err(Fail::Decode(Error::at(
        "internal: the printer misjudged a list as a string",
        at,
    )))
}

/// Scans a list on a copy of the reader: a string when it has elements, every one a
/// printable code, and ends in `[]`. Stops at the first element that is not one (then it
/// prints in brackets: it has elements). Malformed bytes make it answer `Brackets`; the
/// printing that follows meets the same bytes and fails on them.
fn shape(mut de: Deserializer<'_>) -> Shape {
    let mut any = false;
    loop {
        match de.peek() {
            Ok(LIST_EXT) => {
                de.pos += 1;
                let Ok(n) = de.read_len32() else {
                    return Shape::Brackets;
                };
                if n > 0 {
                    any = true;
                }
                for _ in 0..n {
                    if !printable_code(&mut de) {
                        return Shape::Brackets;
                    }
                }
            }
            Ok(NIL_EXT) => {
                return if any { Shape::Text } else { Shape::Brackets };
            }
            Ok(STRING_EXT) => {
                de.pos += 1;
                let Ok(n) = de.read_u16() else {
                    return Shape::Brackets;
                };
                let Ok(bytes) = de.take(n as usize) else {
                    return Shape::Brackets;
                };
                let all = bytes.iter().all(|&b| printable_latin1(b as u32));
                return if all && (any || n > 0) {
                    Shape::Text
                } else {
                    Shape::Brackets
                };
            }
            _ if any => return Shape::Brackets,
            _ => return Shape::Tail,
        }
    }
}

/// Reads one element if it is an integer in Erlang's printable range (whatever its
/// encoding: a bignum that fits decodes to a plain integer).
fn printable_code(de: &mut Deserializer<'_>) -> bool {
    let code = match de.read_u8() {
        Ok(SMALL_INTEGER_EXT) => de.read_u8().map(u32::from).ok(),
        Ok(INTEGER_EXT) => de
            .read_u32()
            .ok()
            .and_then(|v| u32::try_from(v as i32).ok()),
        Ok(tag @ (SMALL_BIG_EXT | LARGE_BIG_EXT)) => {
            let n = if tag == SMALL_BIG_EXT {
                de.read_u8().map(usize::from).ok()
            } else {
                de.read_len32().ok()
            };
            match n.and_then(|n| de.big_body(n).ok()) {
                Some((negative, digits)) if digits.len() <= 4 => {
                    let v = digits
                        .iter()
                        .rev()
                        .fold(0u32, |acc, &d| (acc << 8) | d as u32);
                    (!negative || v == 0).then_some(v)
                }
                _ => None,
            }
        }
        _ => None,
    };
    code.is_some_and(printable_latin1)
}
