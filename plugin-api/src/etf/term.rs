//! [`Term`]: a dynamically typed Erlang term, for code that does not know the shape of a
//! message (logging, routing, tools, tests) — the analogue of `serde_json::Value`.

use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, DeserializeSeed, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};

use super::atom::{write_atom_display, write_escaped_char, AtomRef};
use super::de::Deserializer;
use super::error::Error;
use super::ser::{write_binary, write_f64, write_i128, write_i64, write_tuple_header};
use super::tags::*;
use super::{ATOM_MARKER, CHARLIST_MARKER, RAW_MARKER, TERM_MARKER};

type Result<T> = std::result::Result<T, Error>;

/// Any Erlang term.
///
/// Typed messages should be Rust types with `Serialize`/`Deserialize`; `Term` is for the
/// places that must handle whatever arrives: printing a message in a log, a router that
/// only looks at the tag, a test that checks the exact shape, talking to an Erlang node
/// whose protocol is not modelled yet.
///
/// Decoding is faithful: [`Term::decode`] followed by [`Term::encode`] gives back the
/// bytes a current Erlang (OTP 26+) `term_to_binary` writes, with these normalisations:
/// atoms are always written as UTF-8 atoms (OTP ≤ 25 wrote Latin-1 `ATOM_EXT`; only a
/// Latin-1 atom too long for `ATOM_UTF8_EXT`, which Erlang never writes, stays Latin-1),
/// pids, ports and references in their newest encodings, floats as `NEW_FLOAT_EXT`, and
/// a list whose tail is itself a list is flattened.
///
/// With this crate's serializer and deserializer, `Term` goes through serde unchanged
/// (`to_vec(&term)` equals `term.encode()` and `from_slice::<Term>` equals
/// [`Term::decode`]), so it can be a field of a typed message to carry an arbitrary
/// payload. With other serde formats it maps onto their data model on a best-effort basis.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// An atom such as `ok` or `'Hello'`.
    Atom(String),
    /// An integer that fits in 64 bits.
    Integer(i64),
    /// An integer outside the `i64` range (Erlang integers are unbounded).
    BigInt(BigInt),
    /// A float.
    Float(f64),
    /// A binary (`<<"text">>`, `<<1,2,3>>`).
    Binary(Vec<u8>),
    /// A bitstring whose length is not a whole number of bytes: `bits` (1..=7) bits of
    /// the last byte are used, its most significant ones.
    BitBinary {
        /// The data, the last byte only partly used.
        bytes: Vec<u8>,
        /// How many bits of the last byte belong to the bitstring.
        bits: u8,
    },
    /// A proper list. A char list such as `"abc"` is a list of integers.
    List(Vec<Term>),
    /// A list whose tail is not `[]`, such as `[1 | 2]`.
    ImproperList {
        /// The elements before the tail.
        elements: Vec<Term>,
        /// The tail (never a list).
        tail: Box<Term>,
    },
    /// A tuple.
    Tuple(Vec<Term>),
    /// A map, pairs in the order they were decoded or built.
    Map(Vec<(Term, Term)>),
    /// A process identifier from an Erlang node (or this host).
    Pid(ExternalPid),
    /// A port identifier.
    Port(ExternalPort),
    /// A reference (`make_ref()`).
    Reference(ExternalRef),
    /// A term this type does not model (a fun or an external fun), kept as its encoded
    /// bytes (tag included, no version byte) so it can be passed on unchanged.
    Other(Vec<u8>),
}

/// An integer too large for `i64`, as sign and magnitude.
///
/// Kept as raw digits rather than pulling in a bignum library: the host only needs to
/// carry such numbers through and print them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BigInt {
    /// Whether the number is negative.
    pub negative: bool,
    /// The absolute value, little-endian base-256 digits (as in `SMALL_BIG_EXT`).
    pub magnitude: Vec<u8>,
}

/// A pid as carried in ETF. Named "external" to keep it apart from the host's own
/// `plugin_api::Pid`: this is the wire form of an Erlang process identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalPid {
    /// The node the process lives on, e.g. `nonode@nohost`.
    pub node: String,
    /// Process number.
    pub id: u32,
    /// Serial (wrap-around counter of `id`).
    pub serial: u32,
    /// Incarnation of the node.
    pub creation: u32,
}

/// A port identifier as carried in ETF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalPort {
    /// The node the port lives on.
    pub node: String,
    /// Port number.
    pub id: u64,
    /// Incarnation of the node.
    pub creation: u32,
}

/// A reference as carried in ETF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalRef {
    /// The node that created the reference.
    pub node: String,
    /// Incarnation of the node.
    pub creation: u32,
    /// The reference's words, as encoded.
    pub id: Vec<u32>,
}

impl BigInt {
    /// A `BigInt` with the value `v` (any `i128`; useful in tests and to build terms).
    pub fn from_i128(v: i128) -> Self {
        let mut magnitude = v.unsigned_abs().to_le_bytes().to_vec();
        trim(&mut magnitude);
        BigInt {
            negative: v < 0,
            magnitude,
        }
    }

    /// The value as `i128`, if it fits — to hand a decoded bignum to typed code.
    pub fn to_i128(&self) -> Option<i128> {
        let digits = trimmed(&self.magnitude);
        if digits.len() > 16 {
            return None;
        }
        let mut le = [0u8; 16];
        le[..digits.len()].copy_from_slice(digits);
        let m = u128::from_le_bytes(le);
        if !self.negative {
            i128::try_from(m).ok()
        } else if m <= i128::MAX as u128 {
            Some(-(m as i128))
        } else if m == 1 << 127 {
            Some(i128::MIN)
        } else {
            None
        }
    }
}

fn trimmed(mut d: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = d {
        d = rest;
    }
    d
}

fn trim(v: &mut Vec<u8>) {
    let n = trimmed(v).len();
    v.truncate(n);
}

/// Decimal, like Erlang prints it; very large values (over 256 bytes) in Erlang's base-16
/// syntax (`16#...`) to keep printing linear.
impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = trimmed(&self.magnitude);
        if self.negative && !digits.is_empty() {
            f.write_char('-')?;
        }
        if digits.is_empty() {
            return f.write_char('0');
        }
        if digits.len() > 256 {
            f.write_str("16#")?;
            for b in digits.iter().rev() {
                write!(f, "{b:02X}")?;
            }
            return Ok(());
        }
        // Base 10^9 limbs, most significant digit bytes first.
        let mut limbs: Vec<u32> = Vec::new(); // little-endian limbs
        for &byte in digits.iter().rev() {
            let mut carry = byte as u64;
            for limb in limbs.iter_mut() {
                let v = (*limb as u64) * 256 + carry;
                *limb = (v % 1_000_000_000) as u32;
                carry = v / 1_000_000_000;
            }
            while carry > 0 {
                limbs.push((carry % 1_000_000_000) as u32);
                carry /= 1_000_000_000;
            }
        }
        let mut it = limbs.iter().rev();
        if let Some(first) = it.next() {
            write!(f, "{first}")?;
        }
        for limb in it {
            write!(f, "{limb:09}")?;
        }
        Ok(())
    }
}

impl Term {
    /// An atom term; a shorthand for `Term::Atom(s.into())`.
    pub fn atom(s: impl Into<String>) -> Term {
        Term::Atom(s.into())
    }

    /// Decodes a full encoding (starting with the version byte 131) of any term, also
    /// a compressed one (tag 80, inflated first).
    ///
    /// Never panics on malformed input; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Term> {
        if super::compressed::is_compressed(bytes) {
            let data = super::compressed::inflate(bytes)?;
            let mut de = Deserializer::raw(&data);
            let t = de.parse_term().map_err(super::compressed::inside)?;
            de.end().map_err(super::compressed::inside)?;
            return Ok(t);
        }
        let mut de = Deserializer::from_versioned(bytes)?;
        let t = de.parse_term()?;
        de.end()?;
        Ok(t)
    }

    /// Encodes the term with the version byte, in the encodings Erlang itself chooses
    /// (smallest integer form, `STRING_EXT` for lists of bytes, UTF-8 atoms).
    ///
    /// # Panics
    ///
    /// Only on values ETF cannot represent at all: an atom over 65535 bytes of UTF-8
    /// that is not Latin-1 text of at most 65535 characters, a binary or a collection
    /// over 4 GiB / 2³² elements, a reference of more than 65535 words. Never for a term
    /// [`Term::decode`] returned.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        self.encode_body(&mut out);
        out
    }

    /// Appends the term without the version byte.
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Term::Atom(a) => write_any_atom(out, a),
            Term::Integer(i) => write_i64(out, *i),
            Term::BigInt(b) => match b.to_i128() {
                Some(v) => write_i128(out, v),
                None => {
                    let d = trimmed(&b.magnitude);
                    if d.len() <= 255 {
                        out.extend_from_slice(&[SMALL_BIG_EXT, d.len() as u8]);
                    } else {
                        out.push(LARGE_BIG_EXT);
                        out.extend_from_slice(&len32(d.len()).to_be_bytes());
                    }
                    out.push(b.negative as u8);
                    out.extend_from_slice(d);
                }
            },
            Term::Float(x) => write_f64(out, *x),
            Term::Binary(b) => {
                if write_binary(out, b).is_err() {
                    panic!("binary of {} bytes cannot be encoded", b.len());
                }
            }
            Term::BitBinary { bytes, bits } => {
                out.push(BIT_BINARY_EXT);
                out.extend_from_slice(&len32(bytes.len()).to_be_bytes());
                out.push(*bits);
                out.extend_from_slice(bytes);
            }
            Term::List(items) => {
                if let Some(bytes) = char_list(items) {
                    out.push(STRING_EXT);
                    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                    out.extend(bytes);
                } else if items.is_empty() {
                    out.push(NIL_EXT);
                } else {
                    out.push(LIST_EXT);
                    out.extend_from_slice(&len32(items.len()).to_be_bytes());
                    for t in items {
                        t.encode_body(out);
                    }
                    out.push(NIL_EXT);
                }
            }
            Term::ImproperList { elements, tail } => {
                if !elements.is_empty() {
                    out.push(LIST_EXT);
                    out.extend_from_slice(&len32(elements.len()).to_be_bytes());
                    for t in elements {
                        t.encode_body(out);
                    }
                }
                tail.encode_body(out);
            }
            Term::Tuple(items) => {
                if write_tuple_header(out, items.len()).is_err() {
                    panic!("tuple of {} elements cannot be encoded", items.len());
                }
                for t in items {
                    t.encode_body(out);
                }
            }
            Term::Map(pairs) => {
                out.push(MAP_EXT);
                out.extend_from_slice(&len32(pairs.len()).to_be_bytes());
                for (k, v) in pairs {
                    k.encode_body(out);
                    v.encode_body(out);
                }
            }
            Term::Pid(p) => {
                out.push(NEW_PID_EXT);
                write_any_atom(out, &p.node);
                out.extend_from_slice(&p.id.to_be_bytes());
                out.extend_from_slice(&p.serial.to_be_bytes());
                out.extend_from_slice(&p.creation.to_be_bytes());
            }
            Term::Port(p) => {
                match u32::try_from(p.id) {
                    Ok(id) => {
                        out.push(NEW_PORT_EXT);
                        write_any_atom(out, &p.node);
                        out.extend_from_slice(&id.to_be_bytes());
                    }
                    Err(_) => {
                        out.push(V4_PORT_EXT);
                        write_any_atom(out, &p.node);
                        out.extend_from_slice(&p.id.to_be_bytes());
                    }
                }
                out.extend_from_slice(&p.creation.to_be_bytes());
            }
            Term::Reference(r) => {
                let n = u16::try_from(r.id.len())
                    .unwrap_or_else(|_| panic!("reference of {} words", r.id.len()));
                out.push(NEWER_REFERENCE_EXT);
                out.extend_from_slice(&n.to_be_bytes());
                write_any_atom(out, &r.node);
                out.extend_from_slice(&r.creation.to_be_bytes());
                for w in &r.id {
                    out.extend_from_slice(&w.to_be_bytes());
                }
            }
            Term::Other(raw) => out.extend_from_slice(raw),
        }
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("{n} elements exceed ETF's 32-bit length"))
}

/// An atom in the smallest UTF-8 encoding, without the 255-character check of the
/// serializer (a decoded term must re-encode whatever it held).
///
/// A Latin-1 `ATOM_EXT` holds up to 65535 characters, which can take up to 131070 bytes
/// as UTF-8 — more than `ATOM_UTF8_EXT`'s 16-bit length. Such an atom (found by fuzzing:
/// `ATOM_EXT` of 32768 × `0xE9` decoded fine, then `encode` panicked) is written back as
/// Latin-1 `ATOM_EXT`, so everything [`Term::decode`] returns can be encoded again.
fn write_any_atom(out: &mut Vec<u8>, s: &str) {
    if s.len() <= 255 {
        out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, s.len() as u8]);
    } else if let Ok(n) = u16::try_from(s.len()) {
        out.push(ATOM_UTF8_EXT);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        let n = s.chars().count();
        let latin1 = s.chars().all(|c| c <= '\u{ff}');
        match u16::try_from(n) {
            Ok(n) if latin1 => {
                out.push(ATOM_EXT);
                out.extend_from_slice(&n.to_be_bytes());
                out.extend(s.chars().map(|c| c as u8));
                return;
            }
            _ => panic!("atom of {} bytes cannot be encoded", s.len()),
        }
    }
    out.extend_from_slice(s.as_bytes());
}

/// The bytes of a list Erlang would encode as `STRING_EXT`: 1 to 65535 integers, each
/// 0..=255.
fn char_list(items: &[Term]) -> Option<impl ExactSizeIterator<Item = u8> + '_> {
    if items.is_empty() || items.len() > u16::MAX as usize {
        return None;
    }
    let all_bytes = items
        .iter()
        .all(|t| matches!(t, Term::Integer(i) if (0..=255).contains(i)));
    all_bytes.then(|| {
        items.iter().map(|t| match t {
            Term::Integer(i) => *i as u8,
            _ => 0,
        })
    })
}

impl Deserializer<'_> {
    /// Decodes one term of any kind (the `Term` decoder; the typed path never builds one).
    ///
    /// The recursive kinds get their own small functions so that each nesting level
    /// costs little stack even in debug builds.
    pub(crate) fn parse_term(&mut self) -> Result<Term> {
        match self.peek()? {
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => self.parse_tuple(),
            LIST_EXT => self.parse_list(),
            MAP_EXT => self.parse_map(),
            _ => self.parse_leaf(),
        }
    }

    fn parse_tuple(&mut self) -> Result<Term> {
        let n = if self.read_u8()? == SMALL_TUPLE_EXT {
            self.read_u8()? as usize
        } else {
            self.read_len32()?
        };
        self.enter()?;
        let mut items = Vec::with_capacity(self.cautious(n));
        for _ in 0..n {
            items.push(self.parse_term()?);
        }
        self.leave();
        Ok(Term::Tuple(items))
    }

    fn parse_list(&mut self) -> Result<Term> {
        self.pos += 1;
        let n = self.read_len32()?;
        self.enter()?;
        let mut items = Vec::with_capacity(self.cautious(n));
        for _ in 0..n {
            items.push(self.parse_term()?);
        }
        let tail = self.parse_term()?;
        self.leave();
        Ok(match tail {
            Term::List(rest) => {
                items.extend(rest);
                Term::List(items)
            }
            Term::ImproperList { elements, tail } => {
                items.extend(elements);
                Term::ImproperList {
                    elements: items,
                    tail,
                }
            }
            tail if items.is_empty() => tail,
            tail => Term::ImproperList {
                elements: items,
                tail: Box::new(tail),
            },
        })
    }

    fn parse_map(&mut self) -> Result<Term> {
        self.pos += 1;
        let n = self.read_len32()?;
        self.enter()?;
        let mut pairs = Vec::with_capacity(self.cautious(n) / 2);
        for _ in 0..n {
            let k = self.parse_term()?;
            let v = self.parse_term()?;
            pairs.push((k, v));
        }
        self.leave();
        Ok(Term::Map(pairs))
    }

    /// The non-recursive kinds.
    #[inline(never)]
    pub(crate) fn parse_leaf(&mut self) -> Result<Term> {
        let start = self.pos;
        let tag = self.read_u8()?;
        Ok(match tag {
            SMALL_INTEGER_EXT => Term::Integer(self.read_u8()? as i64),
            INTEGER_EXT => Term::Integer(self.read_u32()? as i32 as i64),
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let n = if tag == SMALL_BIG_EXT {
                    self.read_u8()? as usize
                } else {
                    self.read_len32()?
                };
                let (negative, digits) = self.big_body(n)?;
                let big = BigInt {
                    negative,
                    magnitude: digits.to_vec(),
                };
                match big.to_i128().and_then(|v| i64::try_from(v).ok()) {
                    Some(v) => Term::Integer(v),
                    None => Term::BigInt(big),
                }
            }
            NEW_FLOAT_EXT => Term::Float(self.read_f64()?),
            FLOAT_EXT => Term::Float(self.old_float_body()?),
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                Term::Atom(self.atom_body(tag)?.text().into_owned())
            }
            NIL_EXT => Term::List(Vec::new()),
            STRING_EXT => {
                let n = self.read_u16()? as usize;
                let bytes = self.take(n)?;
                Term::List(bytes.iter().map(|&b| Term::Integer(b as i64)).collect())
            }
            BINARY_EXT => {
                let n = self.read_len32()?;
                Term::Binary(self.take(n)?.to_vec())
            }
            BIT_BINARY_EXT => {
                let n = self.read_len32()?;
                let bits = self.bits_byte(n)?;
                let bytes = self.take(n)?.to_vec();
                if bits == 8 || n == 0 {
                    Term::Binary(bytes)
                } else {
                    Term::BitBinary { bytes, bits }
                }
            }
            PID_EXT | NEW_PID_EXT => {
                let node = self.node()?;
                let id = self.read_u32()?;
                let serial = self.read_u32()?;
                let creation = if tag == PID_EXT {
                    self.read_u8()? as u32
                } else {
                    self.read_u32()?
                };
                Term::Pid(ExternalPid {
                    node,
                    id,
                    serial,
                    creation,
                })
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => {
                let node = self.node()?;
                let id = if tag == V4_PORT_EXT {
                    self.read_u64()?
                } else {
                    self.read_u32()? as u64
                };
                let creation = if tag == PORT_EXT {
                    self.read_u8()? as u32
                } else {
                    self.read_u32()?
                };
                Term::Port(ExternalPort { node, id, creation })
            }
            REFERENCE_EXT => {
                let node = self.node()?;
                let id = vec![self.read_u32()?];
                let creation = self.read_u8()? as u32;
                Term::Reference(ExternalRef { node, creation, id })
            }
            NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let n = self.read_u16()? as usize;
                let node = self.node()?;
                let creation = if tag == NEW_REFERENCE_EXT {
                    self.read_u8()? as u32
                } else {
                    self.read_u32()?
                };
                let mut id = Vec::with_capacity(self.cautious(n));
                for _ in 0..n {
                    id.push(self.read_u32()?);
                }
                Term::Reference(ExternalRef { node, creation, id })
            }
            NEW_FUN_EXT | EXPORT_EXT => {
                self.pos = start;
                self.skip()?;
                Term::Other(self.input[start..self.pos].to_vec())
            }
            _ => {
                self.pos = start;
                return Err(self.unsupported(tag));
            }
        })
    }

    fn node(&mut self) -> Result<String> {
        let a: AtomRef<'_> = self.read_atom(format_args!("a node name atom"))?;
        Ok(a.text().into_owned())
    }
}

/// Erlang syntax, as `io:format("~p")` would print it (without line breaks):
/// `{incr,5}`, `#{count => 3}`, `<<"text">>`, `[1,2]`, `'Quoted atom'`, `1.0`.
///
/// A non-empty list of printable Latin-1 codes (and `\n`, `\t`, ...) prints as a string
/// (`"abc"`), like Erlang's default printable range; a binary that is printable UTF-8
/// prints as `<<"text">>` (with `/utf8` when not ASCII), printable Latin-1 as
/// `<<"text">>`, other binaries as `<<1,2,3>>`.
///
/// The output is also the input syntax of [`parse`](super::parse): for every term
/// [`Term::decode`] can return, `parse(&t.to_string()) == Ok(t)` (floats exactly; a NaN
/// comes back as a NaN). Where Erlang's printer loses information this one does not:
///
/// - Pids, ports and references print with the node name (Erlang prints a node-table
///   index) and the node's creation when it is not 0: `#Pid<node.id.serial>`,
///   `#Port<node.id>`, `#Ref<node.w1.w2...>`, or `#Pid<node:creation.id.serial>`. The
///   node is an atom, quoted when it needs to be (`#Pid<'a@host.example'.9.0>`), so the
///   dots stay unambiguous.
/// - A float that Erlang cannot hold (our decoder accepts the bit patterns) prints as
///   `#Float<nan>`, `#Float<inf>` or `#Float<-inf>` rather than as something that would
///   read back as an atom.
/// - Funs print as `fun m:f/1` when the bytes are exactly that export's canonical
///   encoding, otherwise as `#Fun<module.<<bytes>>>` (the raw encoding, after the module
///   for the reader; no module when the bytes do not name one), so closures and funs
///   from older nodes with Latin-1 atom tags read back byte for byte. A `Term::Other`
///   holding something that is not a fun prints as `#Term<N bytes>`, which does not parse.
impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Atom(a) => write_atom_display(f, a),
            Term::Integer(i) => write!(f, "{i}"),
            Term::BigInt(b) => write!(f, "{b}"),
            Term::Float(x) => write_float(f, *x),
            Term::Binary(b) => write_binary_display(f, b),
            Term::BitBinary { bytes, bits } => write_bit_binary(f, bytes, *bits),
            Term::List(items) => {
                if is_printable_char_list(items) {
                    f.write_char('"')?;
                    for t in items {
                        if let Term::Integer(i) = t {
                            write_escaped_char(f, *i as u8 as char, '"')?;
                        }
                    }
                    f.write_char('"')
                } else {
                    f.write_char('[')?;
                    write_seq(f, items)?;
                    f.write_char(']')
                }
            }
            Term::ImproperList { elements, tail } => {
                f.write_char('[')?;
                write_seq(f, elements)?;
                write!(f, "|{tail}]")
            }
            Term::Tuple(items) => {
                f.write_char('{')?;
                write_seq(f, items)?;
                f.write_char('}')
            }
            Term::Map(pairs) => {
                f.write_str("#{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_char('}')
            }
            Term::Pid(p) => {
                write_node(f, "#Pid<", &p.node, p.creation)?;
                write!(f, ".{}.{}>", p.id, p.serial)
            }
            Term::Port(p) => {
                write_node(f, "#Port<", &p.node, p.creation)?;
                write!(f, ".{}>", p.id)
            }
            Term::Reference(r) => {
                write_node(f, "#Ref<", &r.node, r.creation)?;
                for w in &r.id {
                    write!(f, ".{w}")?;
                }
                f.write_char('>')
            }
            Term::Other(raw) => write_other(f, raw),
        }
    }
}

fn write_seq(f: &mut fmt::Formatter<'_>, items: &[Term]) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{t}")?;
    }
    Ok(())
}

/// `<<1,2,5:3>>`: a bitstring whose last byte is partly used (`bits` of it, its most
/// significant ones).
pub(crate) fn write_bit_binary(f: &mut impl fmt::Write, bytes: &[u8], bits: u8) -> fmt::Result {
    f.write_str("<<")?;
    if let Some((last, init)) = bytes.split_last() {
        for b in init {
            write!(f, "{b},")?;
        }
        let bits = bits.clamp(1, 8);
        write!(f, "{}:{bits}", (*last as u16) >> (8 - bits))?;
    }
    f.write_str(">>")
}

/// Erlang's default printable range (`+pc latin1`): Latin-1 text and the usual escapes.
pub(crate) fn printable_latin1(c: u32) -> bool {
    matches!(c, 32..=126 | 160..=255 | 8..=13 | 27)
}

fn is_printable_char_list(items: &[Term]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|t| matches!(t, Term::Integer(i) if u32::try_from(*i).is_ok_and(printable_latin1)))
}

/// The start of a pid, port or reference: the kind, the node as an atom, and `:creation`
/// unless it is 0 (the creation of a node that is not distributed), so that the printed
/// form carries every field and parses back.
fn write_node(f: &mut fmt::Formatter<'_>, kind: &str, node: &str, creation: u32) -> fmt::Result {
    f.write_str(kind)?;
    write_atom_display(f, node)?;
    if creation != 0 {
        write!(f, ":{creation}")?;
    }
    Ok(())
}

/// Floats as Erlang prints them: always with a fraction (`1.0`, `1.0e21`), and the
/// shortest digits that read back as the same `f64` (Rust's `{:?}`), so printing and
/// parsing loses nothing.
fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        // Not an Erlang float (Erlang refuses these bit patterns); a form that cannot be
        // mistaken for an atom, and that our parser reads back.
        return f.write_str("#Float<nan>");
    }
    if x.is_infinite() {
        return f.write_str(if x > 0.0 {
            "#Float<inf>"
        } else {
            "#Float<-inf>"
        });
    }
    let s = format!("{x:?}");
    match s.find('e') {
        Some(e) if !s[..e].contains('.') => write!(f, "{}.0{}", &s[..e], &s[e..]),
        None if !s.contains('.') => write!(f, "{s}.0"),
        _ => f.write_str(&s),
    }
}

pub(crate) fn write_binary_display(f: &mut impl fmt::Write, b: &[u8]) -> fmt::Result {
    if let Ok(s) = std::str::from_utf8(b) {
        let printable = !s.is_empty()
            && s.chars()
                .all(|c| !c.is_control() || printable_latin1(c as u32));
        if printable {
            f.write_str("<<\"")?;
            // Runs that need no escape go out whole (a crash reason is long text).
            let mut start = 0;
            for (i, c) in s.char_indices() {
                if c == '\\' || c == '"' || c.is_control() {
                    f.write_str(&s[start..i])?;
                    write_escaped_char(f, c, '"')?;
                    start = i + c.len_utf8();
                }
            }
            f.write_str(&s[start..])?;
            f.write_char('"')?;
            if !s.is_ascii() {
                f.write_str("/utf8")?;
            }
            return f.write_str(">>");
        }
    }
    if !b.is_empty() && b.iter().all(|&c| printable_latin1(c as u32)) {
        f.write_str("<<\"")?;
        for &c in b {
            write_escaped_char(f, c as char, '"')?;
        }
        return f.write_str("\">>");
    }
    f.write_str("<<")?;
    for (i, byte) in b.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{byte}")?;
    }
    f.write_str(">>")
}

/// Funs: `fun m:f/a` for an export fun in its canonical encoding, otherwise the raw
/// bytes as `#Fun<module.<<bytes>>>` (see the `Display` impl for why).
fn write_other(f: &mut fmt::Formatter<'_>, raw: &[u8]) -> fmt::Result {
    match fun_info(raw, 0) {
        Ok(FunInfo {
            export: Some((m, fun, arity)),
            ..
        }) => {
            f.write_str("fun ")?;
            write_atom_display(f, &m)?;
            f.write_char(':')?;
            write_atom_display(f, &fun)?;
            write!(f, "/{arity}")
        }
        Ok(FunInfo { module, .. }) => {
            f.write_str("#Fun<")?;
            if let Some(m) = module {
                write_atom_display(f, &m)?;
                f.write_char('.')?;
            }
            f.write_str("<<")?;
            for (i, byte) in raw.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write!(f, "{byte}")?;
            }
            f.write_str(">>>")
        }
        Err(_) => write!(f, "#Term<{} bytes>", raw.len()),
    }
}

/// What the printer and the text parser need to know about the raw bytes of a fun.
pub(crate) struct FunInfo {
    /// The module, when the bytes hold an atom where Erlang puts it.
    pub(crate) module: Option<String>,
    /// `(module, function, arity)` when the bytes are exactly [`export_fun_bytes`] of
    /// them, i.e. when `fun m:f/a` reads back to the same bytes.
    pub(crate) export: Option<(String, String, u8)>,
}

/// Checks that `raw` is exactly one fun (`NEW_FUN_EXT` or `EXPORT_EXT`) as
/// [`Term::decode`] accepts it at nesting `depth` (so also within its depth limit), and
/// reads what can be shown of it.
///
/// Only atoms are read from inside: the decoder keeps funs as opaque bytes, so a fun's
/// module position may hold another fun, and reading it as any term would recurse
/// without limit (20 000 funs nested as each other's module overflowed the stack).
pub(crate) fn fun_info(raw: &[u8], depth: u32) -> Result<FunInfo> {
    let mut r = Deserializer {
        input: raw,
        pos: 0,
        depth,
    };
    let tag = r.peek()?;
    if tag != NEW_FUN_EXT && tag != EXPORT_EXT {
        return Err(r.unexpected(format_args!("a fun (NEW_FUN_EXT or EXPORT_EXT)")));
    }
    r.skip()?;
    r.end()?;
    let mut m = Deserializer::raw(raw);
    // NEW_FUN_EXT: Tag Size(4) Arity(1) Uniq(16) Index(4) NumFree(4) Module ...
    m.pos = if tag == EXPORT_EXT { 1 } else { 30 };
    let atom = |m: &mut Deserializer<'_>| {
        m.read_atom(format_args!("an atom"))
            .ok()
            .map(|a| a.text().into_owned())
    };
    let module = atom(&mut m);
    let mut export = None;
    if let (EXPORT_EXT, Some(module)) = (tag, &module) {
        let fun = atom(&mut m);
        let arity = match (m.read_u8(), m.read_u8()) {
            (Ok(SMALL_INTEGER_EXT), Ok(a)) => Some(a),
            _ => None,
        };
        if let (Some(fun), Some(arity)) = (fun, arity) {
            if export_fun_bytes(module, &fun, arity) == raw {
                export = Some((module.clone(), fun, arity));
            }
        }
    }
    Ok(FunInfo { module, export })
}

/// The canonical encoding (no version byte) of `fun module:function/arity`: UTF-8 atoms,
/// as a current Erlang writes it.
pub(crate) fn export_fun_bytes(module: &str, function: &str, arity: u8) -> Vec<u8> {
    let mut out = vec![EXPORT_EXT];
    write_any_atom(&mut out, module);
    write_any_atom(&mut out, function);
    out.extend_from_slice(&[SMALL_INTEGER_EXT, arity]);
    out
}

/// Serializes the term natively: with this crate's serializer the output is exactly
/// [`Term::encode`] (minus the version byte); atoms, char lists and the kinds serde has
/// no model for (pids, refs, ports, funs, bitstrings, improper lists, huge bignums) go
/// through private markers the serializer recognises. Other formats see atoms as
/// strings, binaries as bytes, tuples as tuples, and the unmodelled kinds as bytes.
impl Serialize for Term {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Term::Atom(a) => s.serialize_newtype_struct(ATOM_MARKER, a.as_str()),
            Term::Integer(i) => s.serialize_i64(*i),
            Term::BigInt(b) => match b.to_i128() {
                Some(v) => s.serialize_i128(v),
                None => raw(self, s),
            },
            Term::Float(x) => s.serialize_f64(*x),
            Term::Binary(b) => s.serialize_bytes(b),
            Term::List(items) => {
                if let Some(bytes) = char_list(items) {
                    let bytes: Vec<u8> = bytes.collect();
                    return s.serialize_newtype_struct(CHARLIST_MARKER, &Bytes(&bytes));
                }
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for t in items {
                    seq.serialize_element(t)?;
                }
                seq.end()
            }
            Term::Tuple(items) => {
                let mut tup = s.serialize_tuple(items.len())?;
                for t in items {
                    tup.serialize_element(t)?;
                }
                tup.end()
            }
            Term::Map(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Term::BitBinary { .. }
            | Term::ImproperList { .. }
            | Term::Pid(_)
            | Term::Port(_)
            | Term::Reference(_)
            | Term::Other(_) => raw(self, s),
        }
    }
}

fn raw<S: Serializer>(t: &Term, s: S) -> std::result::Result<S::Ok, S::Error> {
    let mut body = Vec::new();
    t.encode_body(&mut body);
    s.serialize_newtype_struct(RAW_MARKER, &Bytes(&body))
}

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// With this crate's deserializer, decodes exactly like [`Term::decode`] (the
/// deserializer hands over the raw bytes of the term). With other deserializers, maps
/// their data model onto terms: strings and bytes become binaries, sequences lists, maps
/// maps, `null`/`None` the atom `undefined`, booleans `true`/`false`.
impl<'de> Deserialize<'de> for Term {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Term, D::Error> {
        d.deserialize_newtype_struct(TERM_MARKER, TermVisitor)
    }
}

struct TermVisitor;

impl<'de> Visitor<'de> for TermVisitor {
    type Value = Term;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Erlang term")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Term, E> {
        Ok(Term::atom(if v { "true" } else { "false" }))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Term, E> {
        Ok(Term::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Term, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Term::Integer(v),
            Err(_) => Term::BigInt(BigInt::from_i128(v as i128)),
        })
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> std::result::Result<Term, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Term::Integer(v),
            Err(_) => Term::BigInt(BigInt::from_i128(v)),
        })
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> std::result::Result<Term, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Term::Integer(v),
            Err(_) => {
                let mut magnitude = v.to_le_bytes().to_vec();
                trim(&mut magnitude);
                Term::BigInt(BigInt {
                    negative: false,
                    magnitude,
                })
            }
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Term, E> {
        Ok(Term::Float(v))
    }
    fn visit_char<E: de::Error>(self, v: char) -> std::result::Result<Term, E> {
        Ok(Term::Integer(v as i64))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Term, E> {
        Ok(Term::Binary(v.as_bytes().to_vec()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Term, E> {
        Ok(Term::Binary(v.into_bytes()))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<Term, E> {
        Ok(Term::Binary(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> std::result::Result<Term, E> {
        Ok(Term::Binary(v))
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<Term, E> {
        Ok(Term::atom("undefined"))
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Term, E> {
        Ok(Term::atom("undefined"))
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Term, D::Error> {
        Term::deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Term, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Term, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(t) = seq.next_element()? {
            items.push(t);
        }
        Ok(Term::List(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Term, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(kv) = map.next_entry()? {
            pairs.push(kv);
        }
        Ok(Term::Map(pairs))
    }
    /// Only our deserializer produces the magic enum: its one newtype variant holds the
    /// raw bytes of the term.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> std::result::Result<Term, A::Error> {
        let (Magic, variant) = data.variant::<Magic>()?;
        de::VariantAccess::newtype_variant_seed(variant, RawSeed)
    }
}

/// The magic variant name of the raw-term enum.
struct Magic;

impl<'de> Deserialize<'de> for Magic {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Magic, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Magic;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a term (enums of other formats have no Term equivalent)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Magic, E> {
                if v == TERM_MARKER {
                    Ok(Magic)
                } else {
                    Err(E::custom(format_args!(
                        "enum variant `{v}` of a foreign format has no Term equivalent"
                    )))
                }
            }
        }
        d.deserialize_identifier(V)
    }
}

struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = Term;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Term, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Term;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the raw bytes of a term")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<Term, E> {
                let mut r = Deserializer::raw(v);
                let t = r.parse_term().map_err(E::custom)?;
                r.end().map_err(E::custom)?;
                Ok(t)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Pretty-prints an encoded term (with its version byte) in Erlang syntax, for logs:
/// `Term::decode(bytes)?.to_string()`, printed straight from the bytes without building
/// the [`Term`] (see [`write_display`](super::write_display) to stream it instead).
///
/// Never fails and never panics: bytes that do not decode print as
/// `<<undecodable: reason at byte N>>`, so a log line about a bad message still says
/// what was wrong with it.
pub fn display(bytes: &[u8]) -> String {
    let mut s = String::new();
    match super::print::print_versioned(bytes, &mut s) {
        Ok(()) => s,
        // Decoding again only for the error's text (the printer stops where the decoder
        // does, but the message is the decoder's to word).
        Err(_) => match Term::decode(bytes) {
            Ok(t) => t.to_string(),
            Err(e) => format!("<<undecodable: {e}>>"),
        },
    }
}
