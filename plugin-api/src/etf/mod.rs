//! The Erlang External Term Format (ETF) codec every message and state travels in.
//!
//! Why ETF: it describes itself (a message queued before a code reload still decodes
//! after it, a state can grow fields), it prints as a readable Erlang term in logs, and
//! real Erlang nodes read and write it natively. The serde [`Serializer`](serde::Serializer)
//! and [`Deserializer`](serde::Deserializer) here write and read the bytes directly — no
//! intermediate term tree on the hot path. [`Term`] is the dynamically typed form for code
//! that does not know a message's shape.
//!
//! ```
//! use plugin_api::etf;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! enum Msg { Incr(u32), GetCount }
//!
//! let bytes = etf::to_vec(&Msg::Incr(5)).unwrap();
//! assert_eq!(bytes, [131, 104, 2, 119, 4, b'i', b'n', b'c', b'r', 97, 5]);
//! assert_eq!(etf::display(&bytes), "{incr,5}");
//! assert_eq!(etf::from_slice::<Msg>(&bytes).unwrap(), Msg::Incr(5));
//! assert_eq!(etf::to_vec(&Msg::GetCount).unwrap()[3..], *b"get_count");
//! ```
//!
//! # Mapping
//!
//! | Rust (serde)                         | Erlang term                         | ETF written                               | also accepted when decoding |
//! |--------------------------------------|-------------------------------------|-------------------------------------------|-----------------------------|
//! | `bool`                               | `true` / `false`                    | `SMALL_ATOM_UTF8_EXT`                     | any atom encoding |
//! | integers `i8`..`i128`, `u8`..`u128`  | integer                             | smallest of `SMALL_INTEGER_EXT` (0..=255), `INTEGER_EXT` (i32), `SMALL_BIG_EXT` | any integer encoding, `LARGE_BIG_EXT`; out of range for the target type is an error |
//! | `f32`, `f64`                         | float                               | `NEW_FLOAT_EXT`                           | `FLOAT_EXT`, integers |
//! | `char`                               | integer code point (`$a` = 97)      | integer                                   | a one-character binary or atom |
//! | `String`, `&str`                     | binary `<<"text">>`                 | `BINARY_EXT`                              | atom, char list (`STRING_EXT` as Latin-1, `LIST_EXT` of code points), `[]` |
//! | bytes (`serde_bytes`)                | binary                              | `BINARY_EXT`                              | `STRING_EXT`, list of bytes, whole-byte `BIT_BINARY_EXT`, `[]` |
//! | `Option<T>`: `None` / `Some(x)`      | `undefined` / `x`                   | atom / `x`                                | `nil` for `None` |
//! | `()`                                 | `ok`                                | atom                                      | |
//! | unit struct `Foo`                    | `foo` (snake_case)                  | atom                                      | `'Foo'` |
//! | newtype struct `Meters(f64)`         | the inner value (transparent)       |                                           | |
//! | tuple, tuple struct, array `[T; N]`  | tuple `{A, B}`                      | `SMALL_TUPLE_EXT` / `LARGE_TUPLE_EXT`     | a list of the right length |
//! | `Vec<T>`, sequences, sets            | proper list `[A, B]`                | `LIST_EXT` (`NIL_EXT` when empty)         | `STRING_EXT` (Erlang's encoding of `[1,2,3]`), a binary as a list of bytes |
//! | `HashMap`, `BTreeMap`                | map `#{K => V}`                     | `MAP_EXT`                                 | |
//! | struct `S { a: 1 }`                  | map with atom keys `#{a => 1}`      | `MAP_EXT`, keys as written in Rust        | binary keys; unknown keys are ignored, `#[serde(default)]` fills missing ones |
//! | unit variant `Msg::GetCount`         | `get_count`                         | atom (snake_case of the variant name)     | the exact name `'GetCount'`, `{get_count}` |
//! | newtype variant `Msg::Incr(5)`       | `{incr, 5}`                         | 2-tuple                                   | |
//! | tuple variant `Msg::Move(1, 2)`      | `{move, 1, 2}` (flat)               | (n+1)-tuple                               | |
//! | struct variant `Msg::Pay { amount }` | `{pay, #{amount => 10}}`            | 2-tuple of atom and map                   | |
//! | [`Atom`]                             | atom                                | `SMALL_ATOM_UTF8_EXT` / `ATOM_UTF8_EXT`   | `ATOM_EXT`, `SMALL_ATOM_EXT` (Latin-1) |
//! | [`Term`]                             | any term, unchanged                 | as [`Term::encode`]                       | everything |
//!
//! Snake_case conversion inserts `_` before an uppercase letter that follows a lowercase
//! letter or digit, or that starts a new word after an acronym: `GetCount` → `get_count`,
//! `HTTPRequest` → `http_request`, `V2Beta` → `v2_beta`. It is done while writing or
//! comparing bytes, without allocating. Variant names already renamed with
//! `#[serde(rename_all = "snake_case")]` are unchanged by it.
//!
//! `deserialize_any` (used by `#[serde(untagged)]`, `#[serde(flatten)]` and
//! self-describing targets) maps terms onto the serde data model: integers → `u64`/`i64`
//! (or 128-bit when larger), floats → `f64`, `true`/`false` → bool, `undefined`/`nil` →
//! none, other atoms → string, binaries → string when valid UTF-8 else bytes, tuples and
//! lists (including `STRING_EXT`) → sequences, maps → maps. Pids, ports, references and
//! funs have no serde equivalent there; decode them into [`Term`].
//!
//! `#[serde(flatten)]` makes serde write the struct as a generic map with string keys, so
//! its keys come out as binaries rather than atoms; decoding accepts both.
//!
//! Types with a human-readable and a compact serde form (IP addresses, UUIDs, ...) use
//! the compact one (`is_human_readable` is false), which is also the Erlang way:
//! `{127,0,0,1}`, a 16-byte binary.
//!
//! # Limits and robustness
//!
//! Decoding untrusted bytes never panics: a malformed input is an [`Error`] naming what
//! was expected, what was found (with the ETF tag name) and the byte offset. Length
//! fields are never trusted for allocation (capacity is capped by the bytes actually
//! left), nesting is limited to [`MAX_DEPTH`] levels, and trailing bytes after the term
//! are an error.
//!
//! Compressed terms (`term_to_binary(T, [compressed])`: 131, 80, `Size:32`, zlib data)
//! are inflated before decoding, by every decoder ([`from_slice`], [`Term::decode`],
//! [`display`]). The declared size gets the same rule as any length field — it may not
//! promise more than the input can back: more than the zlib bytes can inflate to (deflate
//! expands at most 1032:1) is refused before anything is allocated. The buffer grows
//! only with output actually inflated, inflation stops one byte past the declared size,
//! and the result must be exactly that size, with nothing after the zlib stream. An
//! error inside the inflated term is reported at byte 1 (the compressed term) and says
//! where in the inflated bytes it was.
//!
//! # Text syntax
//!
//! [`Term`]'s `Display` prints Erlang syntax and [`parse`] (or `str::parse::<Term>`)
//! reads it back, exactly: `parse(&t.to_string()) == Ok(t)` for every decoded term. This
//! is how operators and tools type messages (`{incr, 5}`, `#{amount => 10}`,
//! `<<"text">>`) and read replies; see [`parse`] for the grammar.

mod atom;
mod compressed;
mod de;
mod error;
mod print;
mod ser;
mod syntax;
mod tags;
mod term;

use serde::{Deserialize, Serialize};

pub use atom::Atom;
pub use de::MAX_DEPTH;
pub use error::Error;
pub use print::write_display;
pub use syntax::{parse, SyntaxError, MAX_DECIMAL_DIGITS};
pub use term::{display, BigInt, ExternalPid, ExternalPort, ExternalRef, Term};

/// The codec's result type, so signatures read `etf::Result<T>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Newtype-struct name the serializer and deserializer treat as "this string is an atom".
/// The NUL bytes make a clash with a real type name impossible.
pub(crate) const ATOM_MARKER: &str = "\0etf::Atom";
/// Newtype-struct name under which `Term` passes already-encoded bytes to our serializer.
pub(crate) const RAW_MARKER: &str = "\0etf::Raw";
/// Newtype-struct name under which `Term` passes a list of bytes to be written as
/// `STRING_EXT`.
pub(crate) const CHARLIST_MARKER: &str = "\0etf::CharList";
/// Newtype-struct name `Term` asks for to receive the raw bytes of the next term.
pub(crate) const TERM_MARKER: &str = "\0etf::Term";
/// Newtype-struct name under which [`Pid`](crate::Pid) passes its id: written as an
/// Erlang pid of [`LOCAL_NODE`], read back from one (or from a plain integer, the form
/// before pids were Erlang pids).
pub(crate) const PID_MARKER: &str = "\0etf::Pid";

/// The node a pid names inside the host, as Erlang names a node that is not distributed.
///
/// Plugins see every pid — of a local actor or of a process on another node — as a pid
/// of this node, its 64-bit id split into ID (low half) and serial (high half), creation
/// 0. The distribution layer rewrites pids as they cross the wire: a local actor's becomes
/// a pid of the host's real node name, another node's comes back as the real one.
pub const LOCAL_NODE: &str = "nonode@nohost";

/// Encodes `value` as a complete ETF message (version byte 131 first), ready to send to
/// an actor or an Erlang node.
///
/// Fails only for values ETF cannot hold (an atom longer than 255 characters, a binary
/// over 4 GiB) or when the value's own `Serialize` fails.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(64);
    append_to_vec(&mut buf, value)?;
    Ok(buf)
}

/// Appends the encoding of `value` (version byte 131 first) to `buf`.
///
/// This is the hot-path form: a caller that sends many messages reuses one buffer (or a
/// pooled one) instead of allocating a `Vec` per message. On error `buf` is left as it
/// was before the call.
pub fn append_to_vec<T: ?Sized + Serialize>(buf: &mut Vec<u8>, value: &T) -> Result<()> {
    let start = buf.len();
    let mut ser = ser::Serializer {
        out: std::mem::take(buf),
    };
    ser.out.push(tags::VERSION);
    let r = value.serialize(&mut ser);
    *buf = ser.out;
    if r.is_err() {
        buf.truncate(start);
    }
    r
}

/// Decodes one complete ETF message (it must start with the version byte 131 and
/// contain exactly one term) into `T`. A compressed term (`term_to_binary(T,
/// [compressed])`, tag 80) is inflated first, within the limits in the module docs.
///
/// `T` may borrow from `bytes` (`&str`, `&[u8]` fields decode without copying) — except
/// from a compressed term, whose inflated bytes do not outlive the call: decode those into
/// owned types (`String`, `Vec<u8>`, `Cow`). Never panics on malformed input; see the
/// module docs for what each Rust type accepts.
pub fn from_slice<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T> {
    if compressed::is_compressed(bytes) {
        return compressed::from_slice(bytes);
    }
    let mut de = de::Deserializer::from_versioned(bytes)?;
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Decodes the first complete term of `bytes` (version byte 131 first, not compressed)
/// and returns it with the number of bytes it took, so that several terms written one
/// after the other — a distribution frame's control message and payload — can be read
/// in turn. Never panics on malformed input.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Term, usize)> {
    let mut de = de::Deserializer::from_versioned(bytes)?;
    let t = de.parse_term()?;
    Ok((t, bytes.len() - de.remaining()))
}

/// The length in bytes of the one term encoded at the start of `body` (no version byte),
/// found without building it: how a caller cuts a sub-term out of a message to pass it on
/// unchanged. Never panics on malformed input.
pub fn term_len(body: &[u8]) -> Result<usize> {
    let mut de = de::Deserializer::raw(body);
    de.skip()?;
    Ok(body.len() - de.remaining())
}
