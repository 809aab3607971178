//! ETF tag bytes, named as in the Erlang documentation ("External Term Format"), so the
//! code and the error messages use the names a person can look up.

pub(crate) const VERSION: u8 = 131;

pub(crate) const NEW_FLOAT_EXT: u8 = 70;
pub(crate) const BIT_BINARY_EXT: u8 = 77;
pub(crate) const COMPRESSED: u8 = 80;
pub(crate) const ATOM_CACHE_REF: u8 = 82;
pub(crate) const NEW_PID_EXT: u8 = 88;
pub(crate) const NEW_PORT_EXT: u8 = 89;
pub(crate) const NEWER_REFERENCE_EXT: u8 = 90;
pub(crate) const SMALL_INTEGER_EXT: u8 = 97;
pub(crate) const INTEGER_EXT: u8 = 98;
pub(crate) const FLOAT_EXT: u8 = 99;
pub(crate) const ATOM_EXT: u8 = 100;
pub(crate) const REFERENCE_EXT: u8 = 101;
pub(crate) const PORT_EXT: u8 = 102;
pub(crate) const PID_EXT: u8 = 103;
pub(crate) const SMALL_TUPLE_EXT: u8 = 104;
pub(crate) const LARGE_TUPLE_EXT: u8 = 105;
pub(crate) const NIL_EXT: u8 = 106;
pub(crate) const STRING_EXT: u8 = 107;
pub(crate) const LIST_EXT: u8 = 108;
pub(crate) const BINARY_EXT: u8 = 109;
pub(crate) const SMALL_BIG_EXT: u8 = 110;
pub(crate) const LARGE_BIG_EXT: u8 = 111;
pub(crate) const NEW_FUN_EXT: u8 = 112;
pub(crate) const EXPORT_EXT: u8 = 113;
pub(crate) const NEW_REFERENCE_EXT: u8 = 114;
pub(crate) const SMALL_ATOM_EXT: u8 = 115;
pub(crate) const MAP_EXT: u8 = 116;
pub(crate) const FUN_EXT: u8 = 117;
pub(crate) const ATOM_UTF8_EXT: u8 = 118;
pub(crate) const SMALL_ATOM_UTF8_EXT: u8 = 119;
pub(crate) const V4_PORT_EXT: u8 = 120;
pub(crate) const LOCAL_EXT: u8 = 121;

/// The documented name of a tag, for error messages.
pub(crate) fn name(tag: u8) -> &'static str {
    match tag {
        VERSION => "VERSION",
        NEW_FLOAT_EXT => "NEW_FLOAT_EXT",
        BIT_BINARY_EXT => "BIT_BINARY_EXT",
        COMPRESSED => "COMPRESSED",
        ATOM_CACHE_REF => "ATOM_CACHE_REF",
        NEW_PID_EXT => "NEW_PID_EXT",
        NEW_PORT_EXT => "NEW_PORT_EXT",
        NEWER_REFERENCE_EXT => "NEWER_REFERENCE_EXT",
        SMALL_INTEGER_EXT => "SMALL_INTEGER_EXT",
        INTEGER_EXT => "INTEGER_EXT",
        FLOAT_EXT => "FLOAT_EXT",
        ATOM_EXT => "ATOM_EXT",
        REFERENCE_EXT => "REFERENCE_EXT",
        PORT_EXT => "PORT_EXT",
        PID_EXT => "PID_EXT",
        SMALL_TUPLE_EXT => "SMALL_TUPLE_EXT",
        LARGE_TUPLE_EXT => "LARGE_TUPLE_EXT",
        NIL_EXT => "NIL_EXT",
        STRING_EXT => "STRING_EXT",
        LIST_EXT => "LIST_EXT",
        BINARY_EXT => "BINARY_EXT",
        SMALL_BIG_EXT => "SMALL_BIG_EXT",
        LARGE_BIG_EXT => "LARGE_BIG_EXT",
        NEW_FUN_EXT => "NEW_FUN_EXT",
        EXPORT_EXT => "EXPORT_EXT",
        NEW_REFERENCE_EXT => "NEW_REFERENCE_EXT",
        SMALL_ATOM_EXT => "SMALL_ATOM_EXT",
        MAP_EXT => "MAP_EXT",
        FUN_EXT => "FUN_EXT",
        ATOM_UTF8_EXT => "ATOM_UTF8_EXT",
        SMALL_ATOM_UTF8_EXT => "SMALL_ATOM_UTF8_EXT",
        V4_PORT_EXT => "V4_PORT_EXT",
        LOCAL_EXT => "LOCAL_EXT",
        _ => "unknown tag",
    }
}

/// Whether `tag` starts an atom in any of its four encodings.
#[inline]
pub(crate) fn is_atom(tag: u8) -> bool {
    matches!(
        tag,
        ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT
    )
}
