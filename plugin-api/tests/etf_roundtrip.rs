//! Round trips of every mapping rule of the ETF codec, with the exact bytes for the
//! important ones, plus property tests over generated values.

use std::collections::{BTreeMap, HashMap};

use plugin_api::etf::{self, Atom, BigInt, ExternalPid, ExternalPort, ExternalRef, Term};
use proptest::prelude::*;

mod common;
use common::term;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

fn rt<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) -> Vec<u8> {
    let bytes = etf::to_vec(v).unwrap();
    let back: T = etf::from_slice(&bytes).unwrap();
    assert_eq!(&back, v, "bytes {bytes:?}");
    // Every encoding we produce is a valid term.
    Term::decode(&bytes).unwrap();
    bytes
}

fn atom(s: &str) -> Vec<u8> {
    let mut v = vec![119, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Msg {
    Incr(u32),
    GetCount,
    Move(i32, i32),
    Pay { amount: u64, currency: String },
    HTTPRequest,
    Nested(Box<Msg>),
}

#[test]
fn newtype_variant_exact_bytes() {
    assert_eq!(
        rt(&Msg::Incr(5)),
        [131, 104, 2, 119, 4, b'i', b'n', b'c', b'r', 97, 5]
    );
}

#[test]
fn unit_variant_is_snake_case_atom() {
    assert_eq!(rt(&Msg::GetCount), cat(&[&[131], &atom("get_count")]));
    assert_eq!(rt(&Msg::HTTPRequest), cat(&[&[131], &atom("http_request")]));
}

#[test]
fn tuple_variant_is_flat_tuple() {
    assert_eq!(
        rt(&Msg::Move(1, -2)),
        cat(&[
            &[131, 104, 3],
            &atom("move"),
            &[97, 1, 98, 255, 255, 255, 254]
        ])
    );
}

#[test]
fn struct_variant_is_tag_and_map() {
    let m = Msg::Pay {
        amount: 10,
        currency: "EUR".into(),
    };
    assert_eq!(
        rt(&m),
        cat(&[
            &[131, 104, 2],
            &atom("pay"),
            &[116, 0, 0, 0, 2],
            &atom("amount"),
            &[97, 10],
            &atom("currency"),
            &[109, 0, 0, 0, 3, b'E', b'U', b'R'],
        ])
    );
    assert_eq!(
        etf::display(&etf::to_vec(&m).unwrap()),
        r#"{pay,#{amount => 10,currency => <<"EUR">>}}"#
    );
    rt(&Msg::Nested(Box::new(Msg::Nested(Box::new(Msg::GetCount)))));
}

#[test]
fn variant_decoding_accepts_exact_name_and_one_tuple() {
    let b = cat(&[&[131], &atom("GetCount")]);
    assert_eq!(etf::from_slice::<Msg>(&b).unwrap(), Msg::GetCount);
    let b = cat(&[&[131, 104, 1], &atom("get_count")]);
    assert_eq!(etf::from_slice::<Msg>(&b).unwrap(), Msg::GetCount);
    // Latin-1 ATOM_EXT as written by OTP <= 25.
    let b = [131, 104, 2, 100, 0, 4, b'i', b'n', b'c', b'r', 97, 5];
    assert_eq!(etf::from_slice::<Msg>(&b).unwrap(), Msg::Incr(5));
}

#[test]
fn enum_errors_name_the_problem() {
    let b = cat(&[&[131], &atom("frobnicate")]);
    let e = etf::from_slice::<Msg>(&b).unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown variant `frobnicate` of enum `Msg` (expected one of incr, get_count, \
         move, pay, http_request, nested) at byte 1"
    );
    let b = cat(&[&[131], &atom("incr")]);
    let e = etf::from_slice::<Msg>(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected a tuple {tag, Value} for variant `incr` of enum `Msg`, found atom `incr` \
         (SMALL_ATOM_UTF8_EXT) at byte 1"
    );
    assert_eq!(e.offset(), Some(1));
    let b = [131, 109, 0, 0, 0, 1, b'x'];
    let e = etf::from_slice::<Msg>(&b).unwrap_err().to_string();
    assert_eq!(
        e,
        "expected an atom or a tagged tuple for enum `Msg`, found binary of 1 bytes \
         (BINARY_EXT) at byte 1"
    );
    let b = cat(&[&[131, 104, 3], &atom("incr"), &[97, 1, 97, 2]]);
    let e = etf::from_slice::<Msg>(&b).unwrap_err().to_string();
    assert!(
        e.contains("expected a tuple {tag, Value} for variant `incr`"),
        "{e}"
    );
    assert!(e.contains("tuple of arity 3"), "{e}");
}

#[test]
fn integers_use_the_smallest_encoding() {
    assert_eq!(rt(&0u8), [131, 97, 0]);
    assert_eq!(rt(&255u32), [131, 97, 255]);
    assert_eq!(rt(&256i64), [131, 98, 0, 0, 1, 0]);
    assert_eq!(rt(&-1i8), [131, 98, 255, 255, 255, 255]);
    assert_eq!(rt(&i32::MIN), [131, 98, 128, 0, 0, 0]);
    assert_eq!(rt(&(i32::MAX as i64 + 1)), [131, 110, 4, 0, 0, 0, 0, 128]);
    assert_eq!(rt(&i64::MIN), [131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128]);
    assert_eq!(
        rt(&u64::MAX),
        [131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255]
    );
    let mut umax = vec![131, 110, 16, 0];
    umax.extend([255; 16]);
    assert_eq!(rt(&u128::MAX), umax);
    rt(&i128::MIN);
    rt(&i128::MAX);
    rt(&(u16::MAX, i16::MIN, u32::MAX, i8::MIN));
}

#[test]
fn integers_decode_across_widths_with_range_checks() {
    let b = etf::to_vec(&300u32).unwrap();
    assert_eq!(etf::from_slice::<i16>(&b).unwrap(), 300);
    assert_eq!(etf::from_slice::<u128>(&b).unwrap(), 300);
    let e = etf::from_slice::<u8>(&b).unwrap_err().to_string();
    assert_eq!(e, "integer 300 out of range for u8 at byte 1");
    let b = etf::to_vec(&-5i64).unwrap();
    assert!(etf::from_slice::<u64>(&b).is_err());
    assert_eq!(etf::from_slice::<i8>(&b).unwrap(), -5);
    let b = etf::to_vec(&u64::MAX).unwrap();
    assert!(etf::from_slice::<i64>(&b).is_err());
    // LARGE_BIG_EXT with leading zero digits still decodes.
    let b = [131, 111, 0, 0, 0, 3, 1, 7, 0, 0];
    assert_eq!(etf::from_slice::<i32>(&b).unwrap(), -7);
    let e = etf::from_slice::<i32>(&[131, 109, 0, 0, 0, 0])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "expected an integer for i32, found binary of 0 bytes (BINARY_EXT) at byte 1"
    );
}

#[test]
fn floats() {
    let mut f = vec![131, 70];
    f.extend(1.5f64.to_be_bytes());
    assert_eq!(rt(&1.5f64), f);
    rt(&-0.25f32);
    rt(&f64::MAX);
    // FLOAT_EXT, the pre-R11 text encoding.
    let mut old = vec![131, 99];
    let mut text = b"1.50000000000000000000e+00".to_vec();
    text.resize(31, 0);
    old.extend(text);
    assert_eq!(etf::from_slice::<f64>(&old).unwrap(), 1.5);
    // Integers are accepted where a float is expected.
    assert_eq!(etf::from_slice::<f64>(&[131, 97, 3]).unwrap(), 3.0);
}

#[test]
fn bool_option_unit() {
    assert_eq!(rt(&true), cat(&[&[131], &atom("true")]));
    assert_eq!(rt(&false), cat(&[&[131], &atom("false")]));
    assert_eq!(rt(&None::<u8>), cat(&[&[131], &atom("undefined")]));
    assert_eq!(rt(&Some(7u8)), [131, 97, 7]);
    assert_eq!(rt(&()), cat(&[&[131], &atom("ok")]));
    let nil = cat(&[&[131], &atom("nil")]);
    assert_eq!(etf::from_slice::<Option<u8>>(&nil).unwrap(), None);
    rt(&Some(Some(3i32)));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Ping;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct HealthCheck;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Meters(f64);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Point(i32, i32);

#[test]
fn unit_newtype_and_tuple_structs() {
    assert_eq!(rt(&Ping), cat(&[&[131], &atom("ping")]));
    assert_eq!(rt(&HealthCheck), cat(&[&[131], &atom("health_check")]));
    assert_eq!(rt(&Meters(1.5)), etf::to_vec(&1.5f64).unwrap());
    assert_eq!(rt(&Point(1, 2)), [131, 104, 2, 97, 1, 97, 2]);
    assert_eq!(
        rt(&(1u8, "a".to_string())),
        [131, 104, 2, 97, 1, 109, 0, 0, 0, 1, b'a']
    );
    assert_eq!(rt(&[1u8, 2, 3]), [131, 104, 3, 97, 1, 97, 2, 97, 3]);
    // Arrays also accept a list.
    assert_eq!(
        etf::from_slice::<[u8; 3]>(&[131, 107, 0, 3, 1, 2, 3]).unwrap(),
        [1, 2, 3]
    );
    let e = etf::from_slice::<Point>(&[131, 104, 3, 97, 1, 97, 2, 97, 3]).unwrap_err();
    assert!(e.to_string().contains("arity 2"), "{e}");
}

#[test]
fn strings_and_bytes() {
    assert_eq!(
        rt(&"abc".to_string()),
        [131, 109, 0, 0, 0, 3, b'a', b'b', b'c']
    );
    let s: &str = etf::from_slice(&[131, 109, 0, 0, 0, 2, b'h', b'i']).unwrap();
    assert_eq!(s, "hi"); // borrowed, zero-copy
                         // Char lists: STRING_EXT (Latin-1) and LIST_EXT of code points.
    assert_eq!(
        etf::from_slice::<String>(&[131, 107, 0, 2, b'h', 233]).unwrap(),
        "hé"
    );
    let list = [
        131, 108, 0, 0, 0, 2, 98, 0, 0, 0x65, 0xe5, 98, 0, 0, 0x67, 0x2c, 106,
    ];
    assert_eq!(etf::from_slice::<String>(&list).unwrap(), "日本");
    assert_eq!(etf::from_slice::<String>(&[131, 106]).unwrap(), "");
    // Atoms decode as strings too.
    assert_eq!(
        etf::from_slice::<String>(&cat(&[&[131], &atom("ok")])).unwrap(),
        "ok"
    );
    // Invalid UTF-8 in a binary is an error for String.
    assert!(etf::from_slice::<String>(&[131, 109, 0, 0, 0, 1, 255]).is_err());
    // chars are code points.
    assert_eq!(rt(&'a'), [131, 97, 97]);
    rt(&'日');
    assert_eq!(
        etf::from_slice::<char>(&[131, 109, 0, 0, 0, 1, b'x']).unwrap(),
        'x'
    );
    // Bytes (serialize_bytes) are binaries.
    struct Raw<'a>(&'a [u8]);
    impl Serialize for Raw<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    assert_eq!(
        etf::to_vec(&Raw(&[1, 2])).unwrap(),
        [131, 109, 0, 0, 0, 2, 1, 2]
    );
    let b: &[u8] = etf::from_slice(&[131, 109, 0, 0, 0, 2, 1, 2]).unwrap();
    assert_eq!(b, [1, 2]);
}

#[test]
fn sequences_are_lists() {
    assert_eq!(rt(&Vec::<u8>::new()), [131, 106]);
    assert_eq!(rt(&vec![1u8, 2]), [131, 108, 0, 0, 0, 2, 97, 1, 97, 2, 106]);
    // Erlang writes [1,2,3] as STRING_EXT.
    assert_eq!(
        etf::from_slice::<Vec<u32>>(&[131, 107, 0, 3, 1, 2, 3]).unwrap(),
        [1, 2, 3]
    );
    // And a binary is accepted as a list of bytes.
    assert_eq!(
        etf::from_slice::<Vec<u8>>(&[131, 109, 0, 0, 0, 2, 9, 8]).unwrap(),
        [9, 8]
    );
    rt(&vec![vec![String::from("a")], vec![]]);
    let improper = [131, 108, 0, 0, 0, 1, 97, 1, 97, 2];
    let e = etf::from_slice::<Vec<u8>>(&improper)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[] as the tail of a proper list"), "{e}");
    // Iterators of unknown length.
    struct Iter;
    impl Serialize for Iter {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq((0..3u8).filter(|x| x % 2 == 0))
        }
    }
    assert_eq!(
        etf::to_vec(&Iter).unwrap(),
        [131, 108, 0, 0, 0, 2, 97, 0, 97, 2, 106]
    );
}

#[test]
fn maps() {
    let mut m = BTreeMap::new();
    m.insert("a".to_string(), 1u8);
    assert_eq!(rt(&m), [131, 116, 0, 0, 0, 1, 109, 0, 0, 0, 1, b'a', 97, 1]);
    let mut h = HashMap::new();
    h.insert(1i32, vec![true]);
    h.insert(-1000, vec![]);
    rt(&h);
    rt(&BTreeMap::<u8, u8>::new());
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct State {
    count: u64,
    name: String,
    #[serde(default)]
    tags: Vec<Atom>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    note: Option<String>,
}

#[test]
fn structs_are_maps_with_atom_keys() {
    let s = State {
        count: 3,
        name: "c".into(),
        tags: vec![Atom::from("x")],
        note: None,
    };
    let b = rt(&s);
    assert_eq!(
        etf::display(&b),
        r#"#{count => 3,name => <<"c">>,tags => [x]}"#
    );
    // Missing defaulted fields, unknown keys, binary keys.
    let t = Term::Map(vec![
        (Term::Binary(b"count".to_vec()), Term::Integer(7)),
        (Term::atom("name"), Term::Binary(b"n".to_vec())),
        (
            Term::atom("extra"),
            Term::Tuple(vec![Term::atom("ignored")]),
        ),
    ]);
    let s: State = etf::from_slice(&t.encode()).unwrap();
    assert_eq!(
        s,
        State {
            count: 7,
            name: "n".into(),
            tags: vec![],
            note: None
        }
    );
    let t = Term::Map(vec![(Term::atom("count"), Term::Integer(7))]);
    let e = etf::from_slice::<State>(&t.encode())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "missing field `name` at byte 1");
    let e = etf::from_slice::<State>(&[131, 106])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "expected a map for struct `State`, found empty list [] (NIL_EXT) at byte 1"
    );
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Inner {
    x: u8,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct WithFlatten {
    id: u32,
    #[serde(flatten)]
    inner: Inner,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum Untagged {
    Num(i64),
    Text(String),
    Pair(u8, bool),
    Rec { a: Option<u8> },
}

#[test]
fn flatten_and_untagged_use_deserialize_any() {
    rt(&WithFlatten {
        id: 1,
        inner: Inner { x: 2 },
    });
    rt(&Untagged::Num(-3));
    rt(&Untagged::Text("hi".into()));
    rt(&Untagged::Pair(1, true));
    rt(&Untagged::Rec { a: None });
    rt(&Untagged::Rec { a: Some(1) });
}

#[test]
fn atom_newtype() {
    assert_eq!(rt(&Atom::from("hello")), cat(&[&[131], &atom("hello")]));
    // Latin-1 atoms from old nodes.
    let a: Atom = etf::from_slice(&[131, 100, 0, 2, b'h', 233]).unwrap();
    assert_eq!(a.as_str(), "hé");
    let a: Atom = etf::from_slice(&[131, 115, 1, b'z']).unwrap();
    assert_eq!(a, Atom::new("z"));
    assert!(etf::from_slice::<Atom>(&[131, 109, 0, 0, 0, 0]).is_err());
    assert_eq!(Atom::from("Hello").to_string(), "'Hello'");
    // Too long for Erlang.
    assert!(etf::to_vec(&Atom("a".repeat(256))).is_err());
    let long = "é".repeat(200); // 400 bytes but 200 characters: ATOM_UTF8_EXT
    let b = rt(&Atom(long));
    assert_eq!(b[1], 118);
}

#[test]
fn term_serde_is_faithful() {
    let t = Term::Tuple(vec![
        Term::atom("msg"),
        Term::List(vec![Term::Integer(1), Term::Integer(2)]),
        Term::Map(vec![(Term::atom("k"), Term::Float(1.0))]),
        Term::Pid(ExternalPid {
            node: "n@h".into(),
            id: 1,
            serial: 2,
            creation: 3,
        }),
        Term::BigInt(BigInt::from_i128(i128::MAX)),
        Term::ImproperList {
            elements: vec![Term::Integer(1)],
            tail: Box::new(Term::Integer(2)),
        },
        Term::List(vec![]),
    ]);
    let bytes = t.encode();
    assert_eq!(etf::to_vec(&t).unwrap(), bytes);
    assert_eq!(etf::from_slice::<Term>(&bytes).unwrap(), t);
    assert_eq!(Term::decode(&bytes).unwrap(), t);

    // As a field of a typed message.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Envelope {
        to: Atom,
        payload: Term,
    }
    let e = Envelope {
        to: Atom::from("counter"),
        payload: t.clone(),
    };
    rt(&e);
    // And inside an untagged enum (best effort through deserialize_any).
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Either {
        Num(u8),
        Any(Term),
    }
    let b = etf::to_vec(&Either::Any(Term::Tuple(vec![Term::Integer(300)]))).unwrap();
    assert_eq!(
        etf::from_slice::<Either>(&b).unwrap(),
        Either::Any(Term::List(vec![Term::Integer(300)]))
    );
}

#[test]
fn term_display() {
    let cases: Vec<(Term, &str)> = vec![
        (
            Term::Tuple(vec![Term::atom("incr"), Term::Integer(5)]),
            "{incr,5}",
        ),
        (
            Term::Map(vec![(Term::atom("count"), Term::Integer(3))]),
            "#{count => 3}",
        ),
        (Term::Binary(b"text".to_vec()), "<<\"text\">>"),
        (Term::Binary(vec![1, 2, 3]), "<<1,2,3>>"),
        (Term::Binary("é".as_bytes().to_vec()), "<<\"é\"/utf8>>"),
        (Term::Binary(vec![]), "<<>>"),
        (
            Term::List(vec![Term::Integer(1), Term::Integer(2)]),
            "[1,2]",
        ),
        (
            Term::List(vec![Term::Integer(97), Term::Integer(98)]),
            "\"ab\"",
        ),
        (Term::atom("Quoted atom"), "'Quoted atom'"),
        (Term::Float(1.0), "1.0"),
        (Term::Float(1e100), "1.0e100"),
        (Term::Float(-0.25), "-0.25"),
        (
            Term::BigInt(BigInt::from_i128(-123456789012345678901234567890)),
            "-123456789012345678901234567890",
        ),
        (
            Term::ImproperList {
                elements: vec![Term::Integer(1)],
                tail: Box::new(Term::Integer(2)),
            },
            "[1|2]",
        ),
        (
            Term::BitBinary {
                bytes: vec![1, 2, 3 << 3],
                bits: 5,
            },
            "<<1,2,3:5>>",
        ),
        (
            Term::Port(ExternalPort {
                node: "a@b".into(),
                id: 5,
                creation: 1,
            }),
            "#Port<a@b:1.5>",
        ),
        (
            Term::Reference(ExternalRef {
                node: "a@b".into(),
                creation: 1,
                id: vec![1, 2, 3],
            }),
            "#Ref<a@b:1.1.2.3>",
        ),
    ];
    for (t, s) in cases {
        assert_eq!(t.to_string(), s);
        assert_eq!(etf::display(&t.encode()), s);
    }
    assert!(etf::display(&[131, 255]).starts_with("<<undecodable: "));
    assert!(etf::display(&[]).starts_with("<<undecodable: "));
}

#[test]
fn append_to_vec_reuses_and_restores_the_buffer() {
    let mut buf = vec![1, 2, 3];
    etf::append_to_vec(&mut buf, &Msg::GetCount).unwrap();
    assert_eq!(&buf[..4], &[1, 2, 3, 131]);
    assert_eq!(etf::from_slice::<Msg>(&buf[3..]).unwrap(), Msg::GetCount);
    let mut buf = vec![9];
    assert!(etf::append_to_vec(&mut buf, &Atom("x".repeat(300))).is_err());
    assert_eq!(buf, [9]);
}

#[test]
fn version_byte_and_trailing_bytes() {
    let e = etf::from_slice::<u8>(&[97, 1]).unwrap_err().to_string();
    assert_eq!(e, "expected version byte 131, found 97 at byte 0");
    let e = etf::from_slice::<u8>(&[131, 97, 1, 0])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "1 trailing bytes after the term at byte 3");
    let e = etf::from_slice::<u8>(&[131, 80, 0, 0, 0, 1])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("compressed term declares 1 uncompressed bytes"),
        "{e}"
    );
}

// ---- property tests ------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Ints {
    a: i8,
    b: i16,
    c: i32,
    d: i64,
    e: i128,
    f: u8,
    g: u16,
    h: u32,
    i: u64,
    j: u128,
    k: f64,
    l: f32,
    m: bool,
    n: char,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Node {
    Leaf,
    Int(i64),
    Text(String),
    Pair(Box<Node>, Box<Node>),
    Rec {
        name: String,
        children: Vec<Node>,
        tag: Option<u8>,
    },
    Map(BTreeMap<String, Node>),
    Keyed(HashMap<i32, Option<Node>>),
    Tup((u8, Option<String>, Vec<u16>)),
}

fn finite_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN never equals itself", |x| !x.is_nan())
}

fn ints() -> impl Strategy<Value = Ints> {
    (
        (
            any::<i8>(),
            any::<i16>(),
            any::<i32>(),
            any::<i64>(),
            any::<i128>(),
            any::<u8>(),
            any::<u16>(),
        ),
        (
            any::<u32>(),
            any::<u64>(),
            any::<u128>(),
            finite_f64(),
            any::<f32>().prop_filter("NaN", |x| !x.is_nan()),
            any::<bool>(),
            any::<char>(),
        ),
    )
        .prop_map(|((a, b, c, d, e, f, g), (h, i, j, k, l, m, n))| Ints {
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            i,
            j,
            k,
            l,
            m,
            n,
        })
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        Just(Node::Leaf),
        any::<i64>().prop_map(Node::Int),
        ".{0,12}".prop_map(Node::Text),
        (
            any::<u8>(),
            proptest::option::of(".{0,5}"),
            proptest::collection::vec(any::<u16>(), 0..4)
        )
            .prop_map(Node::Tup),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Node::Pair(Box::new(a), Box::new(b))),
            (
                "[a-z]{0,8}",
                proptest::collection::vec(inner.clone(), 0..5),
                proptest::option::of(any::<u8>())
            )
                .prop_map(|(name, children, tag)| Node::Rec {
                    name,
                    children,
                    tag
                }),
            proptest::collection::btree_map(".{0,4}", inner.clone(), 0..4).prop_map(Node::Map),
            proptest::collection::hash_map(any::<i32>(), proptest::option::of(inner), 0..4)
                .prop_map(Node::Keyed),
        ]
    })
}

proptest! {
    #[test]
    fn prop_ints_round_trip(v in ints()) {
        let b = etf::to_vec(&v).unwrap();
        prop_assert_eq!(etf::from_slice::<Ints>(&b).unwrap(), v);
    }

    #[test]
    fn prop_nested_round_trip(v in node()) {
        let b = etf::to_vec(&v).unwrap();
        prop_assert_eq!(etf::from_slice::<Node>(&b).unwrap(), v.clone());
        // The typed encoding decodes as a Term and re-encodes to the same term.
        let t = Term::decode(&b).unwrap();
        prop_assert_eq!(etf::from_slice::<Node>(&t.encode()).unwrap(), v);
    }

    #[test]
    fn prop_option_vec_string(v in proptest::collection::vec(proptest::option::of(".{0,8}"), 0..8)) {
        let b = etf::to_vec(&v).unwrap();
        prop_assert_eq!(etf::from_slice::<Vec<Option<String>>>(&b).unwrap(), v);
    }

    #[test]
    fn prop_term_round_trip(t in term()) {
        let bytes = t.encode();
        prop_assert_eq!(&Term::decode(&bytes).unwrap(), &t);
        prop_assert_eq!(&etf::to_vec(&t).unwrap(), &bytes);
        prop_assert_eq!(&etf::from_slice::<Term>(&bytes).unwrap(), &t);
        let shown = etf::display(&bytes);
        prop_assert!(!shown.starts_with("<<undecodable"));
    }
}
