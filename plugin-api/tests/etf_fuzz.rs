//! Fuzz-style property tests of the ETF decoder (the in-CI counterpart of the
//! `tests/fuzz` cargo-fuzz targets): arbitrary and mutated bytes into `Term::decode`
//! and `from_slice` must give `Ok` or `Err` — never a panic, never a stack overflow —
//! whatever decodes must encode and decode again, and no length field may drive an
//! allocation larger than the input can back (checked with a counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Debug;

use plugin_api::etf::{self, Term};
use proptest::prelude::*;

mod common;
use common::{compress, term};
use proptest::sample::Index;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

// ---- a counting allocator --------------------------------------------------------------

/// Wraps the system allocator and, on threads that asked for it, records the largest
/// single request (alloc, zeroed alloc or the new size of a realloc).
struct Counting;

thread_local! {
    /// `None`: not measuring on this thread; `Some(max)`: largest request so far.
    /// A const-initialised `Cell` without a destructor: using it never allocates.
    static LARGEST: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if let Some(max) = l.get() {
            l.set(Some(max.max(size)));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns the largest single allocation it requested on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(Some(0)));
    f();
    LARGEST.with(|l| l.replace(None)).unwrap_or(0)
}

// ---- typed targets ----------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    name: String,
    tags: Vec<String>,
    limits: HashMap<String, i64>,
    kind: Kind,
    note: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Kind {
    Plain,
    Count(u32),
    Span(i64, i64),
    Named { id: u16, alias: Option<String> },
    Nested(Vec<Kind>),
}

/// `Vec<u8>` through `deserialize_byte_buf` (binaries), not `deserialize_seq`.
#[derive(Debug, PartialEq, Clone)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// `write_display` (the printer that works from the bytes, without a `Term`) succeeds
/// exactly when `Term::decode` does, and then writes exactly the decoded term's text;
/// `display` says the same.
fn streams_as_decoded(bytes: &[u8]) {
    let mut streamed = Vec::new();
    let r = etf::write_display(bytes, &mut streamed);
    match Term::decode(bytes) {
        Ok(t) => {
            let want = t.to_string();
            assert!(
                r.is_ok(),
                "{bytes:?} decodes to {want} but does not stream: {r:?}"
            );
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                want,
                "streamed text of {bytes:?}"
            );
            assert_eq!(etf::display(bytes), want);
        }
        Err(e) => {
            let r = r.expect_err("streamed what does not decode");
            assert_eq!(r.kind(), std::io::ErrorKind::InvalidData, "{bytes:?}: {r}");
            assert_eq!(etf::display(bytes), format!("<<undecodable: {e}>>"));
        }
    }
}

/// Whatever `T` decodes from `bytes` must encode again, and that encoding must decode.
fn typed<T: Serialize + DeserializeOwned + Debug>(bytes: &[u8]) {
    let Ok(v) = etf::from_slice::<T>(bytes) else {
        return;
    };
    // Encoding may refuse (an atom longer than Erlang allows), but never panics.
    if let Ok(again) = etf::to_vec(&v) {
        if let Err(e) = etf::from_slice::<T>(&again) {
            panic!("{v:?} decoded from {bytes:?}, re-encoded as {again:?}, fails: {e}");
        }
    }
}

/// Every decoder on `bytes`: each may fail, none may panic; a decoded `Term` re-encodes
/// to bytes that decode to a term encoding to the same bytes.
fn decode_all(bytes: &[u8]) {
    if let Ok(t) = Term::decode(bytes) {
        let once = t.encode();
        let back = Term::decode(&once)
            .unwrap_or_else(|e| panic!("{t:?} from {bytes:?} re-encodes undecodably: {e}"));
        assert_eq!(
            back.encode(),
            once,
            "re-encoding of {bytes:?} is not stable"
        );
        let _ = t.to_string();
    }
    let _ = etf::display(bytes);
    streams_as_decoded(bytes);
    typed::<Term>(bytes);
    typed::<Record>(bytes);
    typed::<Kind>(bytes);
    typed::<i64>(bytes);
    typed::<String>(bytes);
    typed::<Vec<u8>>(bytes);
    typed::<Bytes>(bytes);
    typed::<Option<String>>(bytes);
    typed::<(u8, String, bool, f64)>(bytes);
    typed::<Vec<String>>(bytes);
    typed::<HashMap<String, Term>>(bytes);
    let _ = etf::from_slice::<&str>(bytes);
    let _ = etf::from_slice::<serde::de::IgnoredAny>(bytes);
}

// ---- strategies -------------------------------------------------------------------------

/// Tag bytes and the length-field extremes, so random input hits real structure often.
const INTERESTING: &[u8] = &[
    0, 1, 2, 0x7F, 0x80, 0xFF, 70, 77, 80, 82, 88, 89, 90, 97, 98, 99, 100, 101, 102, 103, 104,
    105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 131,
];

fn fuzz_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        proptest::sample::select(INTERESTING),
        b'a'..=b'z'
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    let leaf = prop_oneof![
        Just(Kind::Plain),
        any::<u32>().prop_map(Kind::Count),
        (any::<i64>(), any::<i64>()).prop_map(|(a, b)| Kind::Span(a, b)),
        (any::<u16>(), proptest::option::of(".{0,6}"))
            .prop_map(|(id, alias)| Kind::Named { id, alias }),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(Kind::Nested)
    })
}

fn record() -> impl Strategy<Value = Record> {
    (
        ".{0,10}",
        proptest::collection::vec(".{0,6}", 0..5),
        proptest::collection::hash_map("[a-z]{0,6}", any::<i64>(), 0..4),
        kind(),
        proptest::option::of(".{0,6}"),
    )
        .prop_map(|(name, tags, limits, kind, note)| Record {
            name,
            tags,
            limits,
            kind,
            note,
        })
}

/// One edit of an encoding.
#[derive(Debug, Clone)]
enum Edit {
    Set(Index, u8),
    FlipBit(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    /// Overwrites 4 bytes with a length field: 0xFFFFFFFF, 0x80000000 or 0x0000FFFF.
    HugeLength(Index, u8),
    /// Copies a slice of the input to another place (duplicated structure).
    Splice(Index, Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), fuzz_byte()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::FlipBit(i, b)),
        (any::<Index>(), fuzz_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), 0u8..3).prop_map(|(i, k)| Edit::HugeLength(i, k)),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, b, c)| Edit::Splice(a, b, c)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        if bytes.is_empty() {
            return;
        }
        let n = bytes.len();
        match e {
            Edit::Set(i, b) => bytes[i.index(n)] = *b,
            Edit::FlipBit(i, b) => bytes[i.index(n)] ^= 1 << b,
            Edit::Insert(i, b) => bytes.insert(i.index(n + 1), *b),
            Edit::Delete(i) => {
                bytes.remove(i.index(n));
            }
            Edit::Truncate(i) => bytes.truncate(i.index(n)),
            Edit::HugeLength(i, k) => {
                let field: [u8; 4] = match k {
                    0 => [0xFF; 4],
                    1 => [0x80, 0, 0, 0],
                    _ => [0, 0, 0xFF, 0xFF],
                };
                let at = i.index(n);
                for (j, b) in field.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + j) {
                        *slot = b;
                    }
                }
            }
            Edit::Splice(from, len, to) => {
                let from = from.index(n);
                let len = len.index(n - from + 1).min(64);
                let chunk = bytes[from..from + len].to_vec();
                let to = to.index(n + 1);
                bytes.splice(to..to, chunk);
            }
        }
    }
}

// ---- properties -------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(fuzz_byte(), 0..96),
        versioned in any::<bool>(),
    ) {
        let mut input = Vec::with_capacity(bytes.len() + 1);
        if versioned {
            input.push(131);
        }
        input.extend(&bytes);
        decode_all(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn valid_terms_round_trip(t in term()) {
        let bytes = t.encode();
        let back = Term::decode(&bytes).unwrap();
        prop_assert_eq!(back.encode(), bytes.clone());
        decode_all(&bytes);
    }

    #[test]
    fn mutated_term_encodings_never_panic(
        t in term(),
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let mut bytes = t.encode();
        apply(&mut bytes, &edits);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_typed_encodings_never_panic(
        r in record(),
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let mut bytes = etf::to_vec(&r).unwrap();
        prop_assert_eq!(&etf::from_slice::<Record>(&bytes).unwrap(), &r);
        apply(&mut bytes, &edits);
        decode_all(&bytes);
    }

    #[test]
    fn truncated_encodings_are_errors_with_offsets(t in term(), cut in any::<Index>()) {
        let bytes = t.encode();
        let cut = cut.index(bytes.len());
        let e = Term::decode(&bytes[..cut]).unwrap_err();
        let offset = e.offset().expect("a decode error names its byte offset");
        prop_assert!(offset <= cut, "{} beyond the input of {} bytes", e, cut);
    }

    #[test]
    fn compressed_terms_round_trip(t in term(), level in 0u32..=9) {
        let plain = t.encode();
        let z = compress(&plain, level);
        let back = Term::decode(&z).unwrap();
        prop_assert_eq!(back.encode(), plain.clone());
        prop_assert_eq!(etf::from_slice::<Term>(&z).unwrap(), back);
        prop_assert_eq!(etf::display(&z), etf::display(&plain));
        decode_all(&z);
    }

    #[test]
    fn mutated_compressed_encodings_never_panic(
        t in term(),
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let mut bytes = compress(&t.encode(), 6);
        apply(&mut bytes, &edits);
        decode_all(&bytes);
        if let Err(e) = Term::decode(&bytes) {
            let offset = e.offset().expect("a decode error names its byte offset");
            prop_assert!(offset <= bytes.len(), "{} beyond the input of {} bytes", e, bytes.len());
        }
    }

    #[test]
    fn truncated_compressed_encodings_are_errors_with_offsets(
        t in term(),
        cut in any::<Index>(),
    ) {
        let bytes = compress(&t.encode(), 6);
        let cut = cut.index(bytes.len());
        let e = Term::decode(&bytes[..cut]).unwrap_err();
        let offset = e.offset().expect("a decode error names its byte offset");
        prop_assert!(offset <= cut, "{} beyond the input of {} bytes", e, cut);
    }
}

// ---- forged length fields ----------------------------------------------------------------

/// A tiny input for each tag with a length field, the field at its maximum.
fn forged_headers() -> Vec<(&'static str, Vec<u8>)> {
    let max32 = [0xFF, 0xFF, 0xFF, 0xFF];
    let max16 = [0xFF, 0xFF];
    // A few bytes of plausible content after the header.
    let body = [97, 1, 119, 1, b'a', 106];
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut add = |name, header: &[u8]| {
        let mut v = vec![131];
        v.extend(header);
        v.extend(body);
        out.push((name, v));
    };
    add("SMALL_TUPLE_EXT", &[104, 0xFF]);
    add("LARGE_TUPLE_EXT", &[&[105][..], &max32].concat());
    add("LIST_EXT", &[&[108][..], &max32].concat());
    add("MAP_EXT", &[&[116][..], &max32].concat());
    add("BINARY_EXT", &[&[109][..], &max32].concat());
    add("BIT_BINARY_EXT", &[&[77][..], &max32, &[3]].concat());
    add("SMALL_BIG_EXT", &[110, 0xFF, 0]);
    add("LARGE_BIG_EXT", &[&[111][..], &max32, &[0]].concat());
    add("STRING_EXT", &[&[107][..], &max16].concat());
    add("ATOM_EXT", &[&[100][..], &max16].concat());
    add("SMALL_ATOM_EXT", &[115, 0xFF]);
    add("ATOM_UTF8_EXT", &[&[118][..], &max16].concat());
    add("SMALL_ATOM_UTF8_EXT", &[119, 0xFF]);
    add(
        "NEW_REFERENCE_EXT",
        &[&[114][..], &max16, &[119, 1, b'n', 0]].concat(),
    );
    add(
        "NEWER_REFERENCE_EXT",
        &[&[90][..], &max16, &[119, 1, b'n', 0, 0, 0, 0]].concat(),
    );
    add("NEW_FUN_EXT", &[&[112][..], &max32].concat());
    add("EXPORT_EXT", &[113, 119, 0xFF]);
    add("COMPRESSED", &[&[80][..], &max32, &[0x78, 0x9C]].concat());
    add("PID_EXT", &[103, 118, 0xFF, 0xFF]);
    // Nested forgeries: a list of 2^32-1 maps of 2^32-1 lists ...
    add(
        "nested LIST_EXT/MAP_EXT",
        &[
            &[108][..],
            &max32,
            &[116],
            &max32,
            &[108],
            &max32,
            &[105],
            &max32,
        ]
        .concat(),
    );
    // A tagged tuple (enum) and a map (struct) whose headers lie.
    add(
        "enum tuple",
        &[&[105][..], &max32, &[119, 5], b"count", &[108], &max32].concat(),
    );
    add(
        "struct map",
        &[&[116][..], &max32, &[119, 4], b"tags", &[108], &max32].concat(),
    );
    add(
        "map of string keys",
        &[&[116][..], &max32, &[109, 0, 0, 0, 1, b'k', 108], &max32].concat(),
    );
    add(
        "char list",
        &[&[108][..], &max32, &[98, 0, 0, 0, 0x41, 97, 0x42]].concat(),
    );
    out
}

/// One way of decoding, returning its error if any.
type Decoder = dyn Fn(&[u8]) -> Option<etf::Error>;

#[test]
fn forged_length_fields_never_allocate_from_the_field() {
    const LIMIT: usize = 64 * 1024;
    for (name, input) in forged_headers() {
        assert!(input.len() < 64, "{name}: the input should be tiny");
        // Each decoder separately, so a failure names the one that allocated.
        let decoders: [(&str, &Decoder); 14] = [
            ("Term::decode", &|b| Term::decode(b).err()),
            ("display", &|b| {
                let _ = etf::display(b);
                None
            }),
            ("Term", &|b| etf::from_slice::<Term>(b).err()),
            ("Record", &|b| etf::from_slice::<Record>(b).err()),
            ("Kind", &|b| etf::from_slice::<Kind>(b).err()),
            ("String", &|b| etf::from_slice::<String>(b).err()),
            ("Vec<u8>", &|b| etf::from_slice::<Vec<u8>>(b).err()),
            ("Bytes", &|b| etf::from_slice::<Bytes>(b).err()),
            ("Vec<String>", &|b| etf::from_slice::<Vec<String>>(b).err()),
            ("Vec<Term>", &|b| etf::from_slice::<Vec<Term>>(b).err()),
            ("HashMap<String, String>", &|b| {
                etf::from_slice::<HashMap<String, String>>(b).err()
            }),
            ("(i64, Vec<Kind>)", &|b| {
                etf::from_slice::<(i64, Vec<Kind>)>(b).err()
            }),
            ("Option<Vec<i64>>", &|b| {
                etf::from_slice::<Option<Vec<i64>>>(b).err()
            }),
            ("IgnoredAny", &|b| {
                etf::from_slice::<serde::de::IgnoredAny>(b).err()
            }),
        ];
        for (decoder, decode) in decoders {
            let mut err = None;
            let largest = largest_allocation(|| err = decode(&input));
            assert!(
                largest <= LIMIT,
                "{name} into {decoder}: an allocation of {largest} bytes for a \
                 {}-byte input {input:?}",
                input.len()
            );
            if let Some(e) = err {
                assert!(
                    e.offset().is_some_and(|o| o <= input.len()),
                    "{name} into {decoder}: error without a valid offset: {e}"
                );
            }
        }
        // The dynamic decoder always refuses these; the message names the byte.
        let e = Term::decode(&input).unwrap_err();
        assert!(e.to_string().contains(" at byte "), "{name}: {e}");
    }
}

/// A compressed term's declared size is a length field too: a size the zlib data cannot
/// back is refused before anything is allocated, and a size it can back (or a lie the
/// data only shows while inflating) costs memory in proportion to the bytes inflated,
/// never to the header.
#[test]
fn compressed_sizes_never_allocate_from_the_header() {
    // 4 MiB of zeros compress to about 4 KB.
    let real = compress(&etf::to_vec(&Bytes(vec![0; 4 << 20])).unwrap(), 9);
    let zlib = real[6..].to_vec();
    let with_size = |declared: u32| [&[131, 80][..], &declared.to_be_bytes(), &zlib].concat();
    let decoders: [(&str, &Decoder); 4] = [
        ("Term::decode", &|b| Term::decode(b).err()),
        ("Term", &|b| etf::from_slice::<Term>(b).err()),
        ("Bytes", &|b| etf::from_slice::<Bytes>(b).err()),
        ("IgnoredAny", &|b| {
            etf::from_slice::<serde::de::IgnoredAny>(b).err()
        }),
    ];
    // The inflater's own state is a fixed ~43 KB, whatever the input.
    const INFLATER: usize = 64 * 1024;
    // (declared size, largest allocation allowed)
    let cases = [
        // Refused before the inflater exists.
        (u32::MAX, 1024),
        ((zlib.len() * 1032 + 1) as u32, 1024),
        // Plausible for the ratio, but the data inflates past it: stops one byte after.
        (100, INFLATER),
        (200_000, INFLATER.max(2 * 200_000)),
    ];
    for (declared, limit) in cases {
        let input = with_size(declared);
        for (name, decode) in &decoders {
            let mut err = None;
            let largest = largest_allocation(|| err = decode(&input));
            assert!(
                largest <= limit,
                "{name}, declared {declared}: an allocation of {largest} bytes"
            );
            let e = err.unwrap_or_else(|| panic!("{name}, declared {declared}: accepted"));
            assert_eq!(e.offset(), Some(2), "{name}: {e}");
        }
    }
    // The true size decodes, allocating about the inflated size (a few times at most).
    let largest = largest_allocation(|| {
        let b: Bytes = etf::from_slice(&real).unwrap();
        assert_eq!(b.0.len(), 4 << 20);
    });
    assert!(largest <= 3 * (4 << 20), "{largest}");
}

#[test]
fn forged_length_on_a_larger_input_allocates_in_proportion() {
    // 2^32-1 elements announced, 4000 real ones: what is reserved before the lie shows
    // must be in proportion to the 8 KB actually there, not to the field.
    let mut input = vec![131, 108, 0xFF, 0xFF, 0xFF, 0xFF];
    for _ in 0..4000 {
        input.extend([97, 7]);
    }
    let largest = largest_allocation(|| {
        assert!(Term::decode(&input).is_err());
        assert!(etf::from_slice::<Vec<i64>>(&input).is_err());
        assert!(etf::from_slice::<Vec<Term>>(&input).is_err());
        assert!(etf::from_slice::<String>(&input).is_err());
    });
    let bound = 4000 * std::mem::size_of::<Term>() * 2;
    assert!(largest <= bound, "{largest} bytes for an 8 KB input");
}

// ---- regressions found by these tests ----------------------------------------------------

/// `ATOM_EXT` holds up to 65535 Latin-1 characters; as UTF-8 that can be twice as many
/// bytes, over `ATOM_UTF8_EXT`'s 16-bit length. `Term::encode` used to panic on it.
#[test]
fn long_latin1_atom_re_encodes() {
    for (len, byte) in [(32768usize, 0xE9u8), (65535, 0xFF), (65535, b'a')] {
        let mut input = vec![131, 100];
        input.extend((len as u16).to_be_bytes());
        input.extend(vec![byte; len]);
        let t = Term::decode(&input).unwrap();
        let again = t.encode();
        assert_eq!(Term::decode(&again).unwrap(), t);
        // Erlang's 255-character limit still applies to typed encoding: an error.
        assert!(etf::to_vec(&t).is_err());
        decode_all(&input);
    }
}

/// A fun is kept as opaque bytes, so funs nested as each other's module were not depth
/// checked, and `display` parsed the module as any term: unbounded recursion, a stack
/// overflow for 20 000 levels (600 KB).
#[test]
fn nested_funs_display_without_recursion() {
    let mut body: Vec<u8> = vec![119, 1, b'm'];
    for _ in 0..20_000 {
        let size = (4 + 1 + 16 + 4 + 4 + body.len()) as u32;
        let mut fun = vec![112];
        fun.extend(size.to_be_bytes());
        fun.extend([0u8; 1 + 16 + 4 + 4]);
        fun.extend(&body);
        body = fun;
    }
    let mut input = vec![131];
    input.extend(&body);
    let t = Term::decode(&input).unwrap();
    let shown = t.to_string();
    assert!(shown.starts_with("#Fun<"), "{}", &shown[..40]);
    assert_eq!(etf::display(&input), shown);
    assert_eq!(t.encode(), input);
    // A well-formed closure still prints its module.
    let mut fun = vec![112];
    fun.extend(((4 + 1 + 16 + 4 + 4 + 5) as u32).to_be_bytes());
    fun.extend([0u8; 1 + 16 + 4 + 4]);
    fun.extend([119, 3, b'm', b'o', b'd']);
    let input = [&[131][..], &fun].concat();
    assert!(etf::display(&input).starts_with("#Fun<mod"));
}

/// The deepest term the decoder accepts can be displayed, encoded, re-decoded and
/// dropped in a debug build on a default test thread.
#[test]
fn deepest_accepted_terms_survive_every_operation() {
    let depth = etf::MAX_DEPTH as usize - 1;
    let shapes: [(&[u8], &[u8]); 4] = [
        (&[104, 1], &[]),
        (&[108, 0, 0, 0, 1], &[106]),
        (&[116, 0, 0, 0, 1, 97, 0], &[]),
        (&[113, 119, 1, b'm', 119, 1, b'f'], &[]),
    ];
    for (open, close) in shapes {
        let mut input = vec![131];
        for _ in 0..depth {
            input.extend(open);
        }
        input.extend([97, 1]);
        for _ in 0..depth {
            input.extend(close);
        }
        decode_all(&input);
        let t = Term::decode(&input).unwrap();
        assert_eq!(Term::decode(&t.encode()).unwrap(), t);
        assert!(!t.to_string().is_empty());
    }
}

// ---- printing from the bytes ------------------------------------------------------------

/// Lists the encoder never writes but the decoder flattens: a list whose tail is another
/// list (`LIST_EXT` segments, empty ones, `STRING_EXT` and `NIL_EXT` tails), with an
/// improper tail or none; an empty segment whose tail is not a list decodes to that tail.
/// Printed from the bytes, each must read as the decoded term does (`"ab"` when every
/// element is a printable code and the end is `[]`, else `[..]` or `[..|T]`).
#[test]
fn chained_list_segments_print_as_decoded() {
    fn seg(items: &[&[u8]], tail: &[u8]) -> Vec<u8> {
        let mut b = vec![108];
        b.extend((items.len() as u32).to_be_bytes());
        for i in items {
            b.extend(*i);
        }
        b.extend(tail);
        b
    }
    fn string_ext(s: &[u8]) -> Vec<u8> {
        let mut b = vec![107];
        b.extend((s.len() as u16).to_be_bytes());
        b.extend(s);
        b
    }
    let (a, b, one, big_a, atom) = (
        &[97, 97][..],
        &[97, 98][..],
        &[97, 1][..],
        &[110, 1, 0, 97][..],
        &[119, 1, b'x'][..],
    );
    let nil = &[106][..];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (seg(&[a, b], nil), "\"ab\""),
        (seg(&[a], &seg(&[b], nil)), "\"ab\""),
        (seg(&[], &seg(&[a], &seg(&[], nil))), "\"a\""),
        (seg(&[a], &string_ext(b"bc")), "\"abc\""),
        (seg(&[a], &string_ext(b"")), "\"a\""),
        (seg(&[a], &string_ext(&[1])), "[97,1]"),
        (seg(&[one], &string_ext(b"b")), "[1,98]"),
        (seg(&[big_a, a], nil), "\"aa\""),
        (seg(&[a], &seg(&[b], atom)), "[97,98|x]"),
        (seg(&[a], atom), "[97|x]"),
        (seg(&[], atom), "x"),
        (seg(&[], &seg(&[], atom)), "x"),
        (seg(&[], &seg(&[atom], atom)), "[x|x]"),
        (seg(&[], nil), "[]"),
        (seg(&[], &string_ext(b"")), "[]"),
        (string_ext(b""), "[]"),
        (string_ext(&[0, 65]), "[0,65]"),
        (seg(&[atom, a], nil), "[x,97]"),
        (seg(&[a, &seg(&[b], nil)], nil), "[97,\"b\"]"),
    ];
    for (body, want) in cases {
        let mut bytes = vec![131];
        bytes.extend(&body);
        streams_as_decoded(&bytes);
        assert_eq!(etf::display(&bytes), want, "{bytes:?}");
    }
    // The nesting limit counts each segment, as the decoder does.
    let mut deep = vec![106];
    for _ in 0..etf::MAX_DEPTH {
        deep = seg(&[], &deep);
    }
    for extra in [false, true] {
        let mut bytes = vec![131];
        if extra {
            bytes.extend(seg(&[], &deep));
        } else {
            bytes.extend(&deep);
        }
        streams_as_decoded(&bytes);
    }
}

/// A large term prints from its bytes without the tree a `Term` would be: printing 1M
/// elements, to a sink or to a string, allocates nothing large (the decoded tree's list
/// alone would be 1M × 32 bytes), and writes the decoded term's text.
#[test]
fn printing_a_large_term_builds_no_tree() {
    let items: Vec<(u64, String)> = (0..1_000_000u64)
        .map(|i| (i, format!("item \"{i}\"\n")))
        .collect();
    let bytes = etf::to_vec(&items).unwrap();
    drop(items);
    let largest = largest_allocation(|| {
        etf::write_display(&bytes, &mut std::io::sink()).unwrap();
    });
    assert!(largest < 4096, "largest allocation {largest} bytes");
    let mut text = Vec::with_capacity(64 << 20);
    let largest = largest_allocation(|| etf::write_display(&bytes, &mut text).unwrap());
    assert!(largest < 4096, "largest allocation {largest} bytes");
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.starts_with("[{0,<<\"item \\\"0\\\"\\n\">>},{1,"),
        "{}",
        &text[..40]
    );
    assert_eq!(text, Term::decode(&bytes).unwrap().to_string());
    assert_eq!(etf::display(&bytes), text);
}
