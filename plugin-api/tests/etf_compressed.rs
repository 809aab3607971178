//! Compressed terms (`term_to_binary(T, [compressed])`: 131, 80, `Size:32`, zlib data).
//!
//! The fixtures under `tests/fixtures/etf/compressed/` were written by a real Erlang/OTP 25
//! (`gen.escript` from `compressed.txt`): for each case the default compression
//! (`<name>.z.etf`), level 9 with UTF-8 atoms (`<name>.z9.etf`) and the plain encoding
//! (`<name>.etf`). Hostile inputs are made here with flate2. The allocation bound is
//! checked with the counting allocator in `etf_fuzz.rs`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugin_api::etf::{self, Atom, Term};
use serde::Deserialize;

mod common;
use common::compress;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/etf/compressed")
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn names() -> Vec<String> {
    let text = std::fs::read_to_string(dir().join("../compressed.txt")).unwrap();
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('%'))
        .map(|l| l.split_once('\t').unwrap().0.to_owned())
        .collect()
}

fn err<T: std::fmt::Debug>(r: etf::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn erlang_compressed_fixtures_decode_like_their_plain_encoding() {
    let names = names();
    assert!(names.len() >= 9, "only {} cases", names.len());
    for name in &names {
        let plain = read(&format!("{name}.etf"));
        let expected = Term::decode(&plain).unwrap_or_else(|e| panic!("{name} plain: {e}"));
        for z in [format!("{name}.z.etf"), format!("{name}.z9.etf")] {
            let bytes = read(&z);
            assert_eq!(bytes[..2], [131, 80], "{z}: Erlang really compressed it");
            assert!(bytes.len() < plain.len(), "{z}");
            let t = Term::decode(&bytes).unwrap_or_else(|e| panic!("{z}: {e}"));
            assert_eq!(t, expected, "{z}");
            // Re-encoding gives Erlang's uncompressed bytes (UTF-8 atoms).
            assert_eq!(t.encode(), plain, "{z}");
            assert_eq!(etf::display(&bytes), etf::display(&plain), "{z}");
            assert_eq!(etf::from_slice::<Term>(&bytes).unwrap(), expected, "{z}");
        }
    }
}

#[test]
fn erlang_compressed_fixtures_decode_into_typed_values() {
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Entry {
        Deposit(u32),
    }
    #[derive(Deserialize, Debug)]
    struct State {
        cents: i64,
        owner: String,
        history: Vec<Entry>,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Msg {
        Charge { amount: u32, memo: String },
    }

    for z in ["z", "z9"] {
        let s: State = etf::from_slice(&read(&format!("state.{z}.etf"))).unwrap();
        assert_eq!((s.cents, s.owner.as_str()), (1_234_567, "alice"));
        assert_eq!(s.history.len(), 100);
        assert_eq!(s.history[99], Entry::Deposit(100));

        let m: Msg = etf::from_slice(&read(&format!("charge.{z}.etf"))).unwrap();
        assert_eq!(
            m,
            Msg::Charge {
                amount: 10,
                memo: "x".repeat(500)
            }
        );

        let records: Vec<(Atom, u32, String, u64)> =
            etf::from_slice(&read(&format!("records.{z}.etf"))).unwrap();
        assert_eq!(records.len(), 100);
        assert_eq!(
            records[6],
            (Atom::new("item"), 7, "name".into(), 7_000_000_049)
        );

        let atoms: Vec<Atom> = etf::from_slice(&read(&format!("atoms.{z}.etf"))).unwrap();
        assert_eq!(atoms, vec![Atom::new("foo"); 100]);
        let text: String = etf::from_slice(&read(&format!("text.{z}.etf"))).unwrap();
        assert_eq!(text, "hello, world ".repeat(80));
        let text: String = etf::from_slice(&read(&format!("charlist.{z}.etf"))).unwrap();
        assert_eq!(text, "hello ".repeat(50));
        let zeros: Vec<u8> = etf::from_slice(&read(&format!("zeros.{z}.etf"))).unwrap();
        assert_eq!(zeros, vec![0; 1000]);
        let seq: Vec<u16> = etf::from_slice(&read(&format!("seq.{z}.etf"))).unwrap();
        assert_eq!(seq, (1..=300).collect::<Vec<u16>>());
        let any: HashMap<String, Term> = etf::from_slice(&read(&format!("state.{z}.etf"))).unwrap();
        assert_eq!(any["cents"], Term::Integer(1_234_567));
    }
}

#[test]
fn a_compressed_term_cannot_be_borrowed_from_but_cow_works() {
    let bytes = compress(&etf::to_vec("borrowed").unwrap(), 6);
    // The inflated bytes do not outlive the call: a `&str` is refused, not dangling.
    let e = err(etf::from_slice::<&str>(&bytes));
    assert!(e.contains("borrowed"), "{e}");
    assert_eq!(etf::from_slice::<String>(&bytes).unwrap(), "borrowed");
    let c: Cow<'_, str> = etf::from_slice(&bytes).unwrap();
    assert_eq!(c, "borrowed");
    // The plain encoding still lends its bytes.
    let plain = etf::to_vec("borrowed").unwrap();
    assert_eq!(etf::from_slice::<&str>(&plain).unwrap(), "borrowed");
}

/// 131, 80, `declared`, then `zlib`.
fn with_size(declared: u32, zlib: &[u8]) -> Vec<u8> {
    let mut v = vec![131, 80];
    v.extend(declared.to_be_bytes());
    v.extend(zlib);
    v
}

/// Every decoder refuses `bytes`; returns `Term::decode`'s message after checking the
/// others agree.
fn refused(bytes: &[u8]) -> String {
    let e = Term::decode(bytes).unwrap_err();
    assert!(
        e.offset().is_some_and(|o| o <= bytes.len()),
        "offset outside the input: {e}"
    );
    let typed = etf::from_slice::<Term>(bytes).unwrap_err().to_string();
    assert_eq!(typed, e.to_string());
    assert!(etf::from_slice::<Vec<u8>>(bytes).is_err());
    assert_eq!(etf::display(bytes), format!("<<undecodable: {e}>>"));
    e.to_string()
}

#[test]
fn a_small_input_declaring_a_huge_size_is_refused_at_once() {
    // A list of a million zeros (2 MB) really compresses to about 2 KB; the header says
    // up to 4 GiB.
    let real = compress(&etf::to_vec(&vec![0u8; 1 << 20]).unwrap(), 9);
    let zlib = &real[6..];
    assert!(zlib.len() < 4096, "{}", zlib.len());
    for declared in [u32::MAX, 1 << 31, (zlib.len() * 1032 + 1) as u32] {
        let bomb = with_size(declared, zlib);
        let started = Instant::now();
        let e = refused(&bomb);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(
            e,
            format!(
                "compressed term declares {declared} uncompressed bytes, more than its {} \
                 bytes of zlib data can inflate to (at most {}) at byte 2",
                zlib.len(),
                zlib.len() * 1032
            )
        );
    }
    // No data at all.
    assert!(refused(&with_size(1, &[])).contains("more than its 0 bytes of zlib data"));
}

#[test]
fn a_wrong_declared_size_is_refused() {
    let plain = etf::to_vec(&vec!["some text"; 50]).unwrap();
    let good = compress(&plain, 6);
    let size = (plain.len() - 1) as u32;
    assert_eq!(good[2..6], size.to_be_bytes());
    assert!(Term::decode(&good).is_ok());

    let smaller = with_size(size - 1, &good[6..]);
    assert_eq!(
        refused(&smaller),
        format!(
            "compressed term inflates to more than the {} bytes its header declares at byte 2",
            size - 1
        )
    );
    let smaller = with_size(0, &good[6..]);
    assert!(refused(&smaller).contains("more than the 0 bytes"));
    let larger = with_size(size + 1, &good[6..]);
    assert_eq!(
        refused(&larger),
        format!(
            "compressed term inflates to {size} bytes, its header declares {} at byte 2",
            size + 1
        )
    );
}

#[test]
fn a_truncated_stream_is_refused_at_every_cut() {
    let plain = etf::to_vec(&(1..200).collect::<Vec<u32>>()).unwrap();
    let good = compress(&plain, 6);
    for cut in 0..good.len() {
        let e = refused(&good[..cut]);
        match cut {
            0 => assert!(e.contains("empty input"), "{e}"),
            1 => assert!(e.contains("unexpected end of input"), "{cut}: {e}"),
            2..=5 => assert!(
                e.contains("ends before its 4-byte uncompressed size"),
                "{e}"
            ),
            _ => assert!(
                e.contains("truncated")
                    || e.contains("more than its")
                    || e.contains("zlib data is corrupt"),
                "cut at {cut}: {e}"
            ),
        }
    }
    // Only the Adler-32 checksum missing: the stream has all the data but no end.
    let e = refused(&good[..good.len() - 4]);
    assert_eq!(
        e,
        format!(
            "compressed term is truncated: its zlib stream stops after {0} of the {0} \
             declared bytes at byte {1}",
            plain.len() - 1,
            good.len() - 4
        )
    );
}

#[test]
fn corrupt_data_and_trailing_bytes_are_refused() {
    let plain = etf::to_vec(&"payload ".repeat(40)).unwrap();
    let good = compress(&plain, 6);
    // A bad zlib header.
    let mut bad = good.clone();
    bad[6] ^= 0xFF;
    assert!(refused(&bad).contains("zlib data is corrupt"));
    // A wrong checksum.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let e = refused(&bad);
    assert!(e.contains("zlib data is corrupt"), "{e}");
    // Bytes after the end of the stream.
    let mut trailing = good.clone();
    trailing.extend([97, 1]);
    assert_eq!(
        refused(&trailing),
        format!(
            "2 trailing bytes after the compressed term's zlib data at byte {}",
            good.len()
        )
    );
}

#[test]
fn errors_inside_the_inflated_term_say_where() {
    // The inflated bytes are a small integer without its value byte.
    let bad = compress(&[131, 97], 6);
    assert_eq!(
        refused(&bad),
        "unexpected end of input: needed 1 bytes, 0 left (at byte 1 of the inflated term) \
         at byte 1"
    );
    // A typed mismatch.
    let atom = compress(&etf::to_vec(&Atom::new("foo")).unwrap(), 6);
    let e = err(etf::from_slice::<u8>(&atom));
    assert!(e.starts_with("expected "), "{e}");
    assert!(
        e.ends_with("(at byte 0 of the inflated term) at byte 1"),
        "{e}"
    );
    // Trailing bytes inside the inflated data.
    let two = compress(&[131, 97, 1, 97, 2], 6);
    assert_eq!(
        err(Term::decode(&two)),
        "2 trailing bytes after the term (at byte 2 of the inflated term) at byte 1"
    );
    assert!(err(etf::from_slice::<u8>(&two)).contains("trailing bytes"));
    // A compressed term inside a compressed term, or inside any term, is not ETF.
    let inner = compress(&etf::to_vec(&1u8).unwrap(), 6);
    let nested = compress(&inner, 6);
    assert!(refused(&nested).contains("may only follow the version byte"));
    let in_tuple = [&[131, 104, 1][..], &inner[1..]].concat();
    assert!(refused(&in_tuple).contains("may only follow the version byte"));
}

#[test]
fn every_level_round_trips_through_every_decoder() {
    #[derive(serde::Serialize, Deserialize, Debug, PartialEq)]
    struct S {
        name: String,
        items: Vec<(u8, Option<String>)>,
        tag: Atom,
    }
    let s = S {
        name: "name".into(),
        items: (0..40)
            .map(|i| (i, (i % 3 == 0).then(|| "x".into())))
            .collect(),
        tag: Atom::new("ok"),
    };
    let plain = etf::to_vec(&s).unwrap();
    for level in 0..=9 {
        let z = compress(&plain, level);
        assert_eq!(etf::from_slice::<S>(&z).unwrap(), s, "level {level}");
        assert_eq!(Term::decode(&z).unwrap().encode(), plain, "level {level}");
        assert_eq!(etf::display(&z), etf::display(&plain));
    }
    // An empty term (nothing inflated) is a truncated term, not a panic.
    let empty = with_size(0, &compress(&[131], 6)[6..]);
    assert!(refused(&empty).contains("unexpected end of input"));
}
