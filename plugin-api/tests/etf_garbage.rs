//! Hostile input: the decoder must return errors — never panic, never allocate from a
//! forged length, never overflow the stack.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use plugin_api::etf::{self, Atom, Term};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Msg {
    Incr(u32),
    Get,
    Move(i32, i32),
    Pay { amount: u64, note: Option<String> },
    Nest(Vec<Msg>),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct State {
    count: i64,
    name: String,
    items: Vec<(u8, bool)>,
    map: BTreeMap<String, f64>,
    msg: Option<Msg>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
#[allow(dead_code)]
enum Loose {
    A(u8),
    B(String),
    C(Vec<Loose>),
    D(HashMap<String, Loose>),
}

/// Feeds `bytes` to every decoder; they may fail but must return.
fn decode_all(bytes: &[u8]) {
    let _ = Term::decode(bytes);
    let _ = etf::display(bytes);
    let _ = etf::from_slice::<Term>(bytes);
    let _ = etf::from_slice::<Msg>(bytes);
    let _ = etf::from_slice::<State>(bytes);
    let _ = etf::from_slice::<Loose>(bytes);
    let _ = etf::from_slice::<Vec<String>>(bytes);
    let _ = etf::from_slice::<String>(bytes);
    let _ = etf::from_slice::<&str>(bytes);
    let _ = etf::from_slice::<Vec<u8>>(bytes);
    let _ = etf::from_slice::<HashMap<Atom, Term>>(bytes);
    let _ = etf::from_slice::<(i128, u128, f32)>(bytes);
    let _ = etf::from_slice::<Option<char>>(bytes);
    let _ = etf::from_slice::<serde::de::IgnoredAny>(bytes);
}

fn sample_state() -> State {
    State {
        count: -70000,
        name: "counter".into(),
        items: vec![(1, true), (255, false)],
        map: [("half".to_string(), 0.5)].into_iter().collect(),
        msg: Some(Msg::Nest(vec![
            Msg::Incr(5),
            Msg::Get,
            Msg::Move(1, -2),
            Msg::Pay {
                amount: u64::MAX,
                note: Some("x".into()),
            },
        ])),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..64), versioned in any::<bool>()) {
        if versioned {
            bytes.insert(0, 131);
        }
        decode_all(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6)
    ) {
        let mut bytes = etf::to_vec(&sample_state()).unwrap();
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i.max(1)),
            }
            if bytes.is_empty() { break; }
        }
        decode_all(&bytes);
    }

    #[test]
    fn truncations_fail_cleanly(cut in 0usize..200) {
        let bytes = etf::to_vec(&sample_state()).unwrap();
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(etf::from_slice::<State>(&bytes[..cut]).is_err());
        prop_assert!(Term::decode(&bytes[..cut]).is_err());
    }
}

#[test]
fn huge_length_fields_fail_fast_without_allocating() {
    let ff = [0xFF, 0xFF, 0xFF, 0xFF];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for tag in [105u8, 108, 109, 116, 77, 111] {
        // LARGE_TUPLE, LIST, BINARY, MAP, BIT_BINARY, LARGE_BIG: 4-byte length 0xFFFFFFFF
        // followed by a few bytes of content.
        let mut v = vec![131, tag];
        v.extend(ff);
        v.extend([8, 97, 1, 97, 2, 106, 0, 0, 0, 0]);
        inputs.push(v);
    }
    inputs.push(vec![131, 107, 0xFF, 0xFF, 1, 2, 3]); // STRING_EXT
    inputs.push(vec![131, 118, 0xFF, 0xFF, b'a']); // ATOM_UTF8_EXT
    inputs.push(vec![131, 90, 0xFF, 0xFF, 119, 1, b'a', 0, 0, 0, 0]); // NEWER_REFERENCE_EXT
    inputs.push(vec![131, 112, 0xFF, 0xFF, 0xFF, 0xFF, 1]); // NEW_FUN_EXT
    for input in &inputs {
        let start = Instant::now();
        decode_all(input);
        assert!(etf::from_slice::<Vec<u8>>(input).is_err());
        assert!(Term::decode(input).is_err(), "{input:?}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{input:?} took {:?}",
            start.elapsed()
        );
    }
    let e = Term::decode(&inputs[2]).unwrap_err().to_string();
    assert_eq!(
        e,
        "unexpected end of input: needed 4294967295 bytes, 10 left at byte 6"
    );
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    // 100_000 nested one-element tuples / lists / maps.
    for (open, close) in [
        (vec![104u8, 1], vec![]),
        (vec![108, 0, 0, 0, 1], vec![106]),
        (vec![116, 0, 0, 0, 1, 97, 0], vec![]),
    ] {
        let depth = 100_000;
        let mut v = vec![131];
        for _ in 0..depth {
            v.extend(&open);
        }
        v.extend([97, 1]);
        for _ in 0..depth {
            v.extend(&close);
        }
        let e = Term::decode(&v).unwrap_err().to_string();
        assert!(e.contains("nested deeper than 128"), "{e}");
        let e = etf::from_slice::<serde::de::IgnoredAny>(&v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested deeper than 128"), "{e}");
        assert!(etf::from_slice::<Loose>(&v).is_err());
        assert!(etf::from_slice::<Term>(&v).is_err());
        assert!(etf::display(&v).starts_with("<<undecodable: term nested deeper"));
    }
    // Recursive typed enum.
    let mut v = vec![131];
    for _ in 0..100_000 {
        v.extend([104, 2, 119, 4, b'n', b'e', b's', b't', 108, 0, 0, 0, 1]);
    }
    let e = etf::from_slice::<Msg>(&v).unwrap_err().to_string();
    assert!(e.contains("nested deeper than 128"), "{e}");
    // Just under the limit is fine.
    let mut v = vec![131];
    for _ in 0..etf::MAX_DEPTH - 1 {
        v.extend([104, 1]);
    }
    v.extend([97, 1]);
    assert!(Term::decode(&v).is_ok());
}

#[test]
fn unsupported_tags_have_clear_errors() {
    // Compressed terms are inflated (see etf_compressed.rs); one byte of zlib data is not
    // a stream, and tag 80 inside a term is not ETF.
    let e = Term::decode(&[131, 80, 0, 0, 0, 5, 1])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("compressed term"), "{e}");
    let e = Term::decode(&[131, 104, 1, 80, 0, 0, 0, 5, 1])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a compressed term (tag 80) may only follow the version byte"),
        "{e}"
    );
    let e = Term::decode(&[131, 82, 0]).unwrap_err().to_string();
    assert!(e.contains("atom cache"), "{e}");
    let e = Term::decode(&[131, 200]).unwrap_err().to_string();
    assert_eq!(e, "unknown term tag 200 at byte 1");
    let e = Term::decode(&[131, 119, 1, 0xFF]).unwrap_err().to_string();
    assert_eq!(e, "atom is not valid UTF-8 at byte 1");
    let e = etf::from_slice::<u8>(&[131, 119, 1, 0xFF])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("found malformed atom: atom is not valid UTF-8"),
        "{e}"
    );
    let e = Term::decode(&[131, 110, 1, 2, 5]).unwrap_err().to_string();
    assert!(e.contains("invalid bignum sign byte 2"), "{e}");
}
