//! Compressed terms: what Erlang's `term_to_binary(T, [compressed])` writes.
//!
//! ```text
//! 131, 80, UncompressedSize:32/big, ZlibData
//! ```
//!
//! `ZlibData` is a zlib stream of the term's encoding *without* the version byte, and
//! `UncompressedSize` is its length. Both decoders ([`Term::decode`](super::Term::decode)
//! and [`from_slice`](super::from_slice)) inflate it first and then read the term as
//! usual.
//!
//! The declared size is a length field like any other, and gets the decoder's rule for
//! length fields: it may not promise more than the input can back. For a plain length
//! that means "no more than the bytes left"; for zlib data it means "no more than those
//! bytes can inflate to", and deflate expands at most [`MAX_DEFLATE_RATIO`]:1 (a 258-byte
//! match coded in 2 bits). A size past that is refused before anything is allocated.
//! Memory then follows the bytes actually inflated (the buffer grows as output arrives,
//! never to the declared size up front), inflation stops after `declared + 1` bytes, and
//! the result must be exactly the declared size, with the zlib stream ending exactly at
//! the end of the input.

use std::marker::PhantomData;

use flate2::{Decompress, FlushDecompress, Status};
use serde::de::{self, DeserializeSeed, Visitor};

use super::de::Deserializer;
use super::error::Error;
use super::tags::{COMPRESSED, VERSION};

/// The most deflate can expand its input: a 258-byte match costs at least 2 bits
/// (a 1-bit length code and a 1-bit distance code), so 1 byte of zlib data inflates to
/// at most 1032 bytes. Any declared size above `1032 × zlib bytes` is a lie.
pub(crate) const MAX_DEFLATE_RATIO: usize = 1032;

/// Where the zlib data starts: after 131, 80 and the 4-byte size.
const DATA_AT: usize = 6;

/// Whether `bytes` is a compressed term (version byte, then tag 80).
#[inline]
pub(crate) fn is_compressed(bytes: &[u8]) -> bool {
    matches!(bytes, [VERSION, COMPRESSED, ..])
}

/// Inflates a compressed term (`bytes` starts with 131, 80) into the encoding of the
/// term without its version byte. Errors name the byte of `bytes` at fault.
pub(crate) fn inflate(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    debug_assert!(is_compressed(bytes));
    let Some(size) = bytes.get(2..DATA_AT) else {
        return Err(Error::at(
            format!(
                "compressed term (tag 80) ends before its 4-byte uncompressed size: {} bytes left",
                bytes.len().saturating_sub(2)
            ),
            2,
        ));
    };
    let declared = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
    let zlib = &bytes[DATA_AT..];
    let can_hold = zlib.len().saturating_mul(MAX_DEFLATE_RATIO);
    if declared > can_hold {
        return Err(Error::at(
            format!(
                "compressed term declares {declared} uncompressed bytes, more than its {} \
                 bytes of zlib data can inflate to (at most {can_hold})",
                zlib.len()
            ),
            2,
        ));
    }

    // Inflate at most declared + 1 bytes: one more than declared is enough to know the
    // header lied. The buffer grows with the output, so a lying header costs nothing.
    let cap = declared + 1;
    let mut z = Decompress::new(true);
    let mut out: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    let mut ended = false;
    loop {
        if filled == out.len() {
            if out.len() == cap {
                break;
            }
            let grow = out.len().clamp(4096, 1 << 20);
            out.resize(cap.min(out.len() + grow), 0);
        }
        let consumed = z.total_in() as usize;
        let before = z.total_out();
        let status = z
            .decompress(&zlib[consumed..], &mut out[filled..], FlushDecompress::None)
            .map_err(|e| {
                Error::at(
                    format!("compressed term: the zlib data is corrupt ({e})"),
                    DATA_AT + z.total_in() as usize,
                )
            })?;
        filled += (z.total_out() - before) as usize;
        match status {
            Status::StreamEnd => {
                ended = true;
                break;
            }
            Status::Ok | Status::BufError => {
                let progressed = z.total_in() as usize != consumed || z.total_out() != before;
                if !progressed && filled < out.len() {
                    // Room to write and nothing came: the input is used up.
                    break;
                }
            }
        }
    }
    out.truncate(filled);
    if filled > declared {
        return Err(Error::at(
            format!(
                "compressed term inflates to more than the {declared} bytes its header declares"
            ),
            2,
        ));
    }
    if !ended {
        return Err(Error::at(
            format!(
                "compressed term is truncated: its zlib stream stops after {filled} of the \
                 {declared} declared bytes"
            ),
            bytes.len(),
        ));
    }
    if filled < declared {
        return Err(Error::at(
            format!("compressed term inflates to {filled} bytes, its header declares {declared}"),
            2,
        ));
    }
    let used = DATA_AT + z.total_in() as usize;
    if used != bytes.len() {
        return Err(Error::at(
            format!(
                "{} trailing bytes after the compressed term's zlib data",
                bytes.len() - used
            ),
            used,
        ));
    }
    Ok(out)
}

/// Places an error found in the inflated bytes at the compressed term (byte 1 of the
/// input), saying where in the inflated term it was.
pub(crate) fn inside(e: Error) -> Error {
    let msg = match e.offset() {
        Some(o) => format!("{} (at byte {o} of the inflated term)", e.message()),
        None => format!("{} (in the inflated term)", e.message()),
    };
    Error::at(msg, 1)
}

/// [`from_slice`](super::from_slice) for a compressed term.
///
/// The inflated bytes live only for this call, so the value cannot borrow from them:
/// strings and byte strings reach the visitor as `visit_str` / `visit_bytes` (to be
/// copied), never as borrowed data. `String`, `Vec<u8>`, `Cow` and everything owned
/// decode as from a plain term; a `&str` field is refused with serde's "expected a
/// borrowed string".
pub(crate) fn from_slice<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    let data = inflate(bytes)?;
    let mut de = Deserializer::raw(&data);
    let value = T::deserialize(Owned::new(&mut de)).map_err(inside)?;
    de.end().map_err(inside)?;
    Ok(value)
}

// ---- a lifetime-erasing adapter ------------------------------------------------------
//
// `T: Deserialize<'de>` must be fed by a `Deserializer<'de>`, but the inflated bytes live
// shorter than `'de`. `Owned` presents a deserializer over shorter-lived bytes (`'b`) as
// one for any `'de`, by handing every borrowed string or byte string to the visitor as a
// transient one, which the visitor must copy. Every other call is forwarded unchanged,
// with the visitors, seeds and accessors wrapped the same way.

/// A `Deserializer<'b>` presented as a `Deserializer<'de>` that never lends data.
struct Owned<'b, D>(D, PhantomData<&'b ()>);

impl<D> Owned<'_, D> {
    fn new(d: D) -> Self {
        Owned(d, PhantomData)
    }
}

/// A `Visitor<'de>` presented as a `Visitor<'b>`.
struct Wrap<'de, V>(V, PhantomData<&'de ()>);

impl<V> Wrap<'_, V> {
    fn new(v: V) -> Self {
        Wrap(v, PhantomData)
    }
}

/// A `DeserializeSeed<'de>` presented as a `DeserializeSeed<'b>`.
struct Seed<'de, S>(S, PhantomData<&'de ()>);

/// A `SeqAccess<'b>` / `MapAccess<'b>` / `EnumAccess<'b>` / `VariantAccess<'b>`
/// presented for `'de`.
struct Access<'b, A>(A, PhantomData<&'b ()>);

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* Wrap::new(visitor))
        }
    )*};
}

impl<'de, 'b, D: de::Deserializer<'b>> de::Deserializer<'de> for Owned<'b, D> {
    type Error = D::Error;

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, 'b, V: Visitor<'de>> Visitor<'b> for Wrap<'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(f)
    }

    visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_byte_buf(Vec<u8>);
    }

    /// The one change: borrowed data is lent for the call only.
    fn visit_borrowed_str<E: de::Error>(self, v: &'b str) -> Result<V::Value, E> {
        self.0.visit_str(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'b [u8]) -> Result<V::Value, E> {
        self.0.visit_bytes(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'b>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Owned::new(d))
    }

    fn visit_newtype_struct<D: de::Deserializer<'b>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Owned::new(d))
    }

    fn visit_seq<A: de::SeqAccess<'b>>(self, a: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Access(a, PhantomData))
    }

    fn visit_map<A: de::MapAccess<'b>>(self, a: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Access(a, PhantomData))
    }

    fn visit_enum<A: de::EnumAccess<'b>>(self, a: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Access(a, PhantomData))
    }
}

impl<'de, 'b, S: DeserializeSeed<'de>> DeserializeSeed<'b> for Seed<'de, S> {
    type Value = S::Value;

    fn deserialize<D: de::Deserializer<'b>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Owned::new(d))
    }
}

fn seed<'de, S: DeserializeSeed<'de>>(s: S) -> Seed<'de, S> {
    Seed(s, PhantomData)
}

impl<'de, 'b, A: de::SeqAccess<'b>> de::SeqAccess<'de> for Access<'b, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        s: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(seed(s))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, 'b, A: de::MapAccess<'b>> de::MapAccess<'de> for Access<'b, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        s: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed(s))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(seed(s))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, 'b, A: de::EnumAccess<'b>> de::EnumAccess<'de> for Access<'b, A> {
    type Error = A::Error;
    type Variant = Access<'b, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        s: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (v, variant) = self.0.variant_seed(seed(s))?;
        Ok((v, Access(variant, PhantomData)))
    }
}

impl<'de, 'b, A: de::VariantAccess<'b>> de::VariantAccess<'de> for Access<'b, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(seed(s))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap::new(v))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap::new(v))
    }
}
