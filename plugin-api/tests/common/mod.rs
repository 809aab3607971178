//! Shared by the ETF test files: a generator of arbitrary terms in the shapes the decoder
//! returns, and hand-made fun encodings.
#![allow(dead_code)]

use plugin_api::etf::{self, BigInt, ExternalPid, ExternalPort, ExternalRef, Term};
use proptest::prelude::*;

/// A closure's `NEW_FUN_EXT` bytes (no version byte) with a module atom and a payload.
pub fn new_fun(module: &str, payload: &[u8]) -> Vec<u8> {
    let mut rest = vec![119, module.len() as u8];
    rest.extend(module.as_bytes());
    rest.extend([97, 0, 98, 0, 0, 0, 1]);
    rest.extend([88, 119, 1, b'n', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    rest.extend(payload);
    let size = (4 + 1 + 16 + 4 + 4 + rest.len()) as u32;
    let mut raw = vec![112];
    raw.extend(size.to_be_bytes());
    raw.push(1); // arity
    raw.extend([7; 16]); // uniq
    raw.extend([0, 0, 0, 2]); // index
    raw.extend([0, 0, 0, 0]); // free variables
    raw.extend(rest);
    raw
}

pub fn any_atom() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-zA-Z0-9_@]{0,8}",
        "[a-zA-Z0-9_ é日.'\\\\]{0,12}",
        proptest::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
        proptest::sample::select(vec!["end", "fun", "true", "receive", "maybe", "nan", "inf"])
            .prop_map(str::to_owned),
    ]
}

pub fn node() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}@[a-z]{1,8}",
        "[a-z]{1,4}@[a-z]{1,4}\\.[a-z]{1,4}",
        any_atom()
    ]
}

pub fn creation() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), any::<u32>()]
}

pub fn latin1_atom(s: &str) -> Vec<u8> {
    let mut v = vec![100];
    v.extend((s.len() as u16).to_be_bytes());
    v.extend(s.as_bytes());
    v
}

/// Terms in the shapes `Term::decode` returns: awkward atoms and node names, creations,
/// infinite floats, printable strings and binaries, huge bignums, funs, improper lists.
pub fn term() -> impl Strategy<Value = Term> {
    let leaf = prop_oneof![
        any_atom().prop_map(Term::Atom),
        any::<i64>().prop_map(Term::Integer),
        any::<i128>()
            .prop_filter("outside i64", |v| i64::try_from(*v).is_err())
            .prop_map(|v| Term::BigInt(BigInt::from_i128(v))),
        (
            any::<bool>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 17..40),
                proptest::collection::vec(any::<u8>(), 250..270)
            ]
        )
            .prop_map(|(negative, mut magnitude)| {
                *magnitude.last_mut().unwrap() |= 1;
                Term::BigInt(BigInt {
                    negative,
                    magnitude,
                })
            }),
        any::<f64>()
            .prop_filter("NaN never equals itself", |x| !x.is_nan())
            .prop_map(Term::Float),
        proptest::collection::vec(any::<u8>(), 0..10).prop_map(Term::Binary),
        ".{0,10}".prop_map(|s| Term::Binary(s.into_bytes())),
        proptest::collection::vec(prop_oneof![32u8..=126, 160u8..=255, 8u8..=13], 1..10)
            .prop_map(Term::Binary),
        (proptest::collection::vec(any::<u8>(), 1..5), 1u8..8).prop_map(|(mut bytes, bits)| {
            // The unused low bits of the last byte are zero, as Erlang writes them.
            *bytes.last_mut().unwrap() &= 0xFF << (8 - bits);
            Term::BitBinary { bytes, bits }
        }),
        (node(), any::<u32>(), any::<u32>(), creation()).prop_map(
            |(node, id, serial, creation)| Term::Pid(ExternalPid {
                node,
                id,
                serial,
                creation
            })
        ),
        (node(), any::<u64>(), creation())
            .prop_map(|(node, id, creation)| Term::Port(ExternalPort { node, id, creation })),
        (
            node(),
            creation(),
            proptest::collection::vec(any::<u32>(), 0..5)
        )
            .prop_map(|(node, creation, id)| Term::Reference(ExternalRef {
                node,
                creation,
                id
            })),
        // Export funs, canonical (UTF-8 atoms) and as OTP 25 wrote them (Latin-1 tags).
        (any_atom(), any_atom(), any::<u8>()).prop_map(|(m, f, a)| {
            let t = etf::parse(&format!(
                "fun {}:{}/{a}",
                Term::atom(m.as_str()),
                Term::atom(f.as_str())
            ))
            .unwrap();
            assert!(matches!(t, Term::Other(_)));
            t
        }),
        ("[a-z]{1,6}", "[a-z]{1,6}", any::<u8>()).prop_map(|(m, f, a)| {
            let mut raw = vec![113];
            raw.extend(latin1_atom(&m));
            raw.extend(latin1_atom(&f));
            raw.extend([97, a]);
            Term::Other(raw)
        }),
        ("[a-z]{1,6}", proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(m, payload)| Term::Other(new_fun(&m, &payload))),
    ];
    let tail = leaf
        .clone()
        .prop_filter("not a list", |t| !matches!(t, Term::List(_)));
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Term::List),
            proptest::collection::vec(
                prop_oneof![0i64..=255, 32i64..=126, 160i64..=255, 0i64..=0x10FFFF],
                1..8
            )
            .prop_map(|v| Term::List(v.into_iter().map(Term::Integer).collect())),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Term::Tuple),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Term::Map),
            (proptest::collection::vec(inner, 1..4), tail.clone()).prop_map(|(elements, tail)| {
                Term::ImproperList {
                    elements,
                    tail: Box::new(tail),
                }
            }),
        ]
    })
}

/// What `term_to_binary(T, [{compressed, Level}])` writes for an encoding `plain` (with
/// its version byte): 131, 80, the uncompressed size, then the zlib stream of the term
/// without its version byte.
pub fn compress(plain: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    assert_eq!(
        plain.first(),
        Some(&131),
        "an encoding with its version byte"
    );
    let body = &plain[1..];
    let mut out = vec![131, 80];
    out.extend((body.len() as u32).to_be_bytes());
    let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::new(level));
    z.write_all(body).unwrap();
    z.finish().unwrap()
}
