//! The serde `Serializer`: writes ETF bytes straight into a `Vec<u8>`, no term tree.

use serde::ser::{self, Impossible, Serialize};

use super::atom::{write_atom, write_snake_atom};
use super::error::Error;
use super::tags::*;
use super::{ATOM_MARKER, CHARLIST_MARKER, LOCAL_NODE, PID_MARKER, RAW_MARKER};

type Result<T> = std::result::Result<T, Error>;

/// Owns the output buffer while serializing (the caller's `Vec` is moved in and back out,
/// which costs nothing and keeps the lifetimes simple).
pub(crate) struct Serializer {
    pub(crate) out: Vec<u8>,
}

const TRUE: &[u8] = &[SMALL_ATOM_UTF8_EXT, 4, b't', b'r', b'u', b'e'];
const FALSE: &[u8] = &[SMALL_ATOM_UTF8_EXT, 5, b'f', b'a', b'l', b's', b'e'];
pub(crate) const UNDEFINED: &[u8] = &[
    SMALL_ATOM_UTF8_EXT,
    9,
    b'u',
    b'n',
    b'd',
    b'e',
    b'f',
    b'i',
    b'n',
    b'e',
    b'd',
];
const OK: &[u8] = &[SMALL_ATOM_UTF8_EXT, 2, b'o', b'k'];

/// Writes an integer in the smallest encoding Erlang itself would use.
#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    if (0..=255).contains(&v) {
        out.extend_from_slice(&[SMALL_INTEGER_EXT, v as u8]);
    } else if let Ok(x) = i32::try_from(v) {
        let b = x.to_be_bytes();
        out.extend_from_slice(&[INTEGER_EXT, b[0], b[1], b[2], b[3]]);
    } else {
        write_big(out, v < 0, v.unsigned_abs() as u128);
    }
}

#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    match i64::try_from(v) {
        Ok(x) => write_i64(out, x),
        Err(_) => write_big(out, false, v as u128),
    }
}

pub(crate) fn write_i128(out: &mut Vec<u8>, v: i128) {
    match i64::try_from(v) {
        Ok(x) => write_i64(out, x),
        Err(_) => write_big(out, v < 0, v.unsigned_abs()),
    }
}

pub(crate) fn write_u128(out: &mut Vec<u8>, v: u128) {
    match i64::try_from(v) {
        Ok(x) => write_i64(out, x),
        Err(_) => write_big(out, false, v),
    }
}

/// `SMALL_BIG_EXT` with the minimal number of little-endian digit bytes.
fn write_big(out: &mut Vec<u8>, negative: bool, magnitude: u128) {
    let digits = magnitude.to_le_bytes();
    let n = 16 - (magnitude.leading_zeros() / 8) as usize;
    out.extend_from_slice(&[SMALL_BIG_EXT, n as u8, negative as u8]);
    out.extend_from_slice(&digits[..n]);
}

#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    out.push(NEW_FLOAT_EXT);
    out.extend_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn write_binary(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let len = u32::try_from(b.len())
        .map_err(|_| Error::msg(format!("binary of {} bytes exceeds 4 GiB", b.len())))?;
    out.reserve(5 + b.len());
    out.push(BINARY_EXT);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

#[inline]
pub(crate) fn write_tuple_header(out: &mut Vec<u8>, arity: usize) -> Result<()> {
    if arity <= 255 {
        out.extend_from_slice(&[SMALL_TUPLE_EXT, arity as u8]);
    } else {
        let n = u32::try_from(arity)
            .map_err(|_| Error::msg(format!("tuple of {arity} elements is too large")))?;
        out.push(LARGE_TUPLE_EXT);
        out.extend_from_slice(&n.to_be_bytes());
    }
    Ok(())
}

/// Writes a 4-byte count placeholder after `tag`; returns where to patch it.
#[inline]
fn open_counted(out: &mut Vec<u8>, tag: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[tag, 0, 0, 0, 0]);
    at
}

#[inline]
fn patch_count(out: &mut [u8], at: usize, count: usize, what: &str) -> Result<()> {
    let n = u32::try_from(count)
        .map_err(|_| Error::msg(format!("{what} of {count} elements is too large")))?;
    out[at + 1..at + 5].copy_from_slice(&n.to_be_bytes());
    Ok(())
}

impl<'a> ser::Serializer for &'a mut Serializer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = List<'a>;
    type SerializeTuple = Tuple<'a>;
    type SerializeTupleStruct = Tuple<'a>;
    type SerializeTupleVariant = Tuple<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Map<'a>;

    /// Binary format: types with two representations (IP addresses, UUIDs, ...) use their
    /// compact one, which is also the idiomatic Erlang one (`{127,0,0,1}`, a 16-byte
    /// binary).
    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.extend_from_slice(if v { TRUE } else { FALSE });
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        write_i64(&mut self.out, v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        write_i64(&mut self.out, v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        write_i64(&mut self.out, v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        write_i64(&mut self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        write_i128(&mut self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.out.extend_from_slice(&[SMALL_INTEGER_EXT, v]);
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        write_i64(&mut self.out, v.into());
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        write_i64(&mut self.out, v.into());
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        write_u64(&mut self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        write_u128(&mut self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        write_f64(&mut self.out, v.into());
        Ok(())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        write_f64(&mut self.out, v);
        Ok(())
    }
    /// A char is its code point, like Erlang's `$a` (= 97).
    fn serialize_char(self, v: char) -> Result<()> {
        write_i64(&mut self.out, v as i64);
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        write_binary(&mut self.out, v.as_bytes())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        write_binary(&mut self.out, v)
    }
    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.out.extend_from_slice(UNDEFINED);
        Ok(())
    }
    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<()> {
        self.out.extend_from_slice(OK);
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<()> {
        write_snake_atom(&mut self.out, name)
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        write_snake_atom(&mut self.out, variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<()> {
        let mode = match name {
            ATOM_MARKER => Marker::Atom,
            RAW_MARKER => Marker::Raw,
            CHARLIST_MARKER => Marker::CharList,
            PID_MARKER => Marker::Pid,
            _ => return value.serialize(self),
        };
        value.serialize(MarkerSerializer {
            out: &mut self.out,
            mode,
        })
    }
    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.out.extend_from_slice(&[SMALL_TUPLE_EXT, 2]);
        write_snake_atom(&mut self.out, variant)?;
        value.serialize(self)
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<List<'a>> {
        let at = open_counted(&mut self.out, LIST_EXT);
        Ok(List {
            ser: self,
            at,
            count: 0,
        })
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Tuple<'a>> {
        write_tuple_header(&mut self.out, len)?;
        Ok(Tuple {
            ser: self,
            expected: len,
            count: 0,
        })
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Tuple<'a>> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Tuple<'a>> {
        write_tuple_header(&mut self.out, len + 1)?;
        write_snake_atom(&mut self.out, variant)?;
        Ok(Tuple {
            ser: self,
            expected: len,
            count: 0,
        })
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'a>> {
        let at = open_counted(&mut self.out, MAP_EXT);
        Ok(Map {
            ser: self,
            at,
            count: 0,
        })
    }
    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Map<'a>> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Map<'a>> {
        self.out.extend_from_slice(&[SMALL_TUPLE_EXT, 2]);
        write_snake_atom(&mut self.out, variant)?;
        self.serialize_map(None)
    }
}

/// A list being written; the element count is patched in at the end, so sequences of
/// unknown length (iterators, `#[serde(flatten)]`) cost nothing extra.
pub(crate) struct List<'a> {
    ser: &'a mut Serializer,
    at: usize,
    count: usize,
}

impl ser::SerializeSeq for List<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.count += 1;
        value.serialize(&mut *self.ser)
    }
    #[inline]
    fn end(self) -> Result<()> {
        let out = &mut self.ser.out;
        if self.count == 0 {
            // The empty list is NIL_EXT, not a LIST_EXT of length 0.
            out.truncate(self.at);
        } else {
            patch_count(out, self.at, self.count, "list")?;
        }
        out.push(NIL_EXT);
        Ok(())
    }
}

/// A tuple (or tuple struct, tuple variant) being written; the arity is known up front.
pub(crate) struct Tuple<'a> {
    ser: &'a mut Serializer,
    expected: usize,
    count: usize,
}

impl Tuple<'_> {
    #[inline]
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.count += 1;
        value.serialize(&mut *self.ser)
    }
    #[inline]
    fn finish(self) -> Result<()> {
        if self.count != self.expected {
            return Err(Error::msg(format!(
                "tuple declared {} elements but {} were serialized",
                self.expected, self.count
            )));
        }
        Ok(())
    }
}

impl ser::SerializeTuple for Tuple<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Tuple<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Tuple<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.finish()
    }
}

/// A map, struct or struct variant's field map being written; the pair count is patched
/// in at the end (it differs from the declared field count with `skip_serializing_if`
/// and `flatten`).
pub(crate) struct Map<'a> {
    ser: &'a mut Serializer,
    at: usize,
    count: usize,
}

impl Map<'_> {
    #[inline]
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.count += 1;
        write_atom(&mut self.ser.out, key)?;
        value.serialize(&mut *self.ser)
    }
    #[inline]
    fn finish(self) -> Result<()> {
        patch_count(&mut self.ser.out, self.at, self.count, "map")
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.count += 1;
        key.serialize(&mut *self.ser)
    }
    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Map<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.finish()
    }
}

/// What a private marker newtype asks the serializer to do with its content.
#[derive(Clone, Copy)]
enum Marker {
    /// `Atom`: the string is written as an atom.
    Atom,
    /// `Term`'s opaque parts: the bytes are an already-encoded term, copied verbatim.
    Raw,
    /// `Term::List` of bytes: written as `STRING_EXT`, as Erlang does.
    CharList,
    /// `Pid`: the id is written as `NEW_PID_EXT` of [`LOCAL_NODE`].
    Pid,
}

/// Serializes the content of a marker newtype; accepts only the one shape it expects.
struct MarkerSerializer<'a> {
    out: &'a mut Vec<u8>,
    mode: Marker,
}

impl MarkerSerializer<'_> {
    fn wrong(&self) -> Error {
        Error::msg(match self.mode {
            Marker::Atom => "an Atom must contain a string",
            Marker::Raw | Marker::CharList => "internal term marker must contain bytes",
            Marker::Pid => "a Pid must contain a u64",
        })
    }
}

macro_rules! reject {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<()> { Err(self.wrong()) })*
    };
}

impl ser::Serializer for MarkerSerializer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        match self.mode {
            Marker::Atom => write_atom(self.out, v),
            _ => Err(self.wrong()),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        match self.mode {
            Marker::Raw => {
                self.out.extend_from_slice(v);
                Ok(())
            }
            Marker::CharList => {
                let n = u16::try_from(v.len())
                    .map_err(|_| Error::msg("char list longer than 65535 for STRING_EXT"))?;
                self.out.push(STRING_EXT);
                self.out.extend_from_slice(&n.to_be_bytes());
                self.out.extend_from_slice(v);
                Ok(())
            }
            Marker::Atom | Marker::Pid => Err(self.wrong()),
        }
    }

    fn serialize_u64(self, v: u64) -> Result<()> {
        match self.mode {
            Marker::Pid => {
                self.out.push(NEW_PID_EXT);
                write_atom(self.out, LOCAL_NODE)?;
                self.out.extend_from_slice(&(v as u32).to_be_bytes());
                self.out
                    .extend_from_slice(&((v >> 32) as u32).to_be_bytes());
                self.out.extend_from_slice(&0u32.to_be_bytes());
                Ok(())
            }
            _ => Err(self.wrong()),
        }
    }

    reject! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<()> {
        Err(self.wrong())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(self.wrong())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(self.wrong())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(self.wrong())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(self.wrong())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(self.wrong())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(self.wrong())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(self.wrong())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(self.wrong())
    }
}
