//! Arbitrary bytes into the ETF decoder: `Term::decode`, `display` and `from_slice` into
//! typed targets must return (`Ok` or `Err`), never panic, overflow the stack or make a
//! huge allocation (run with `-malloc_limit_mb`, see README.md); whatever decodes must
//! encode again, and that encoding must decode to something that encodes identically.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use plugin_api::etf::{self, Term};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
#[allow(dead_code)]
struct Record {
    name: String,
    tags: Vec<String>,
    limits: HashMap<String, i64>,
    kind: Kind,
    note: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
#[allow(dead_code)]
enum Kind {
    Plain,
    Count(u32),
    Span(i64, i64),
    Named { id: u16, alias: Option<String> },
    Nested(Vec<Kind>),
}

/// Decodes into `T`; what decodes must re-encode (or be refused by the encoder, e.g. an
/// atom over Erlang's 255 characters) and decode again.
fn typed<T: Serialize + DeserializeOwned + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = etf::from_slice::<T>(data) {
        if let Ok(bytes) = etf::to_vec(&v) {
            if let Err(e) = etf::from_slice::<T>(&bytes) {
                panic!("{v:?} re-encoded as {bytes:?} does not decode: {e}");
            }
        }
    }
}

fn term_round_trip(data: &[u8]) {
    if let Ok(t) = Term::decode(data) {
        let once = t.encode();
        let back = match Term::decode(&once) {
            Ok(b) => b,
            Err(e) => panic!("{t:?} re-encoded as {once:?} does not decode: {e}"),
        };
        assert_eq!(back.encode(), once, "re-encoding is not stable");
        let _ = t.to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    // The raw input (so the version-byte check is fuzzed too) ...
    term_round_trip(data);
    // ... and, as the fuzzer would otherwise spend effort finding byte 131, the input
    // as a term body behind the version byte for everything else.
    let mut versioned = Vec::with_capacity(data.len() + 1);
    versioned.push(131);
    versioned.extend_from_slice(data);
    let data = &versioned[..];
    term_round_trip(data);
    let _ = etf::display(data);
    typed::<Term>(data);
    typed::<Record>(data);
    typed::<Kind>(data);
    typed::<Vec<String>>(data);
    typed::<HashMap<String, i64>>(data);
    typed::<(i64, String, Option<Vec<u8>>)>(data);
    let _ = etf::from_slice::<serde::de::IgnoredAny>(data);
});
