//! The Erlang term-syntax parser (`etf::parse`, `str::parse::<Term>`): every accepted
//! form, rejections with their positions, the depth limit agreeing with the decoder, the
//! printer/parser round trip over Erlang's own fixtures and generated terms, and that no
//! input makes the parser panic.

use std::path::PathBuf;

use plugin_api::etf::{
    self, BigInt, ExternalPid, ExternalPort, ExternalRef, SyntaxError, Term, MAX_DECIMAL_DIGITS,
    MAX_DEPTH,
};
use proptest::prelude::*;

mod common;
use common::{new_fun, term};

fn p(s: &str) -> Term {
    etf::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str) -> SyntaxError {
    match etf::parse(s) {
        Ok(t) => panic!("{s:?} parsed as {t:?}"),
        Err(e) => e,
    }
}

fn int(i: i64) -> Term {
    Term::Integer(i)
}

fn list(items: &[i64]) -> Term {
    Term::List(items.iter().map(|&i| int(i)).collect())
}

fn chars(s: &str) -> Term {
    Term::List(s.chars().map(|c| int(c as i64)).collect())
}

fn atom(s: &str) -> Term {
    Term::atom(s)
}

/// Equality that also holds for NaN (whose Debug form is stable).
fn same(a: &Term, b: &Term) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Printing then parsing gives the term back.
fn round_trips(t: &Term) {
    let s = t.to_string();
    let back = etf::parse(&s).unwrap_or_else(|e| panic!("{t:?} printed as {s:?}: {e}"));
    assert!(same(&back, t), "{t:?} printed as {s:?} parsed as {back:?}");
}

// ---- the forms ----------------------------------------------------------------------

#[test]
fn examples_from_the_cli() {
    assert_eq!(p("{incr, 5}"), Term::Tuple(vec![atom("incr"), int(5)]));
    assert_eq!(
        p("#{amount => 10}"),
        Term::Map(vec![(atom("amount"), int(10))])
    );
    assert_eq!(p("<<\"text\">>"), Term::Binary(b"text".to_vec()));
    assert_eq!(p("\"text\""), chars("text"));
    assert_eq!(p("[1,2]"), list(&[1, 2]));
    assert_eq!(
        "{incr, 5}".parse::<Term>().unwrap(),
        Term::Tuple(vec![atom("incr"), int(5)])
    );
}

#[test]
fn atoms() {
    for (text, a) in [
        ("ok", "ok"),
        ("true", "true"),
        ("false", "false"),
        ("undefined", "undefined"),
        ("nonode@nohost", "nonode@nohost"),
        ("a_B9@x", "a_B9@x"),
        ("héllo", "héllo"),
        ("'Hello world'", "Hello world"),
        ("'it\\'s'", "it's"),
        ("''", ""),
        ("'end'", "end"),
        ("'fun'", "fun"),
        ("'日本'", "日本"),
        ("'a\\nb\\tc\\\\d'", "a\nb\tc\\d"),
        ("'\\x{65E5}\\x41\\101\\s\\^a\\q'", "日AA \u{1}q"),
        ("'multi\nline'", "multi\nline"),
    ] {
        assert_eq!(p(text), atom(a), "{text}");
    }
}

#[test]
fn integers() {
    for (text, v) in [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("- 7", -7),
        ("16#ff", 255),
        ("16#FF", 255),
        ("-16#ff", -255),
        ("2#1010", 10),
        ("36#zz", 1295),
        ("1_000_000", 1_000_000),
        ("16#ff_ff", 65535),
        ("$a", 97),
        ("$\\n", 10),
        ("$ ", 32),
        ("-$a", -97),
        ("$\\x{65E5}", 0x65E5),
        ("$日", 0x65E5),
        ("$\\\\", 92),
        ("$\\'", 39),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
    ] {
        assert_eq!(p(text), int(v), "{text}");
    }
    assert_eq!(
        p("9223372036854775808"),
        Term::BigInt(BigInt::from_i128(1 << 63))
    );
    assert_eq!(
        p("-123456789012345678901234567890"),
        Term::BigInt(BigInt::from_i128(-123456789012345678901234567890))
    );
    assert_eq!(
        p("16#123456789abcdef0123456789abcdef"),
        Term::BigInt(BigInt::from_i128(0x123456789abcdef0123456789abcdef))
    );
    // Beyond i128: decimal and base 16 agree.
    let big = format!("1{}", "0".repeat(60));
    let t = p(&big);
    assert_eq!(t.to_string(), big);
    let Term::BigInt(b) = &t else { panic!("{t:?}") };
    let hex: String = b
        .magnitude
        .iter()
        .rev()
        .map(|d| format!("{d:02x}"))
        .collect();
    assert_eq!(p(&format!("16#{hex}")), t);
    assert_eq!(p(&format!("-{big}")).to_string(), format!("-{big}"));
    // Base 36 beyond u128 (not a power of two: the limb path).
    let z = p(&format!("36#{}", "z".repeat(30)));
    assert!(matches!(z, Term::BigInt(_)), "{z:?}");
    round_trips(&z);
}

#[test]
fn floats() {
    for (text, v) in [
        ("1.5", 1.5),
        ("-2.0e10", -2.0e10),
        ("1.0e-3", 1.0e-3),
        ("1.0E+3", 1000.0),
        ("0.1", 0.1),
        ("1_000.5", 1000.5),
    ] {
        assert_eq!(p(text), Term::Float(v), "{text}");
    }
    let Term::Float(z) = p("-0.0") else { panic!() };
    assert!(z == 0.0 && z.is_sign_negative());
    assert_eq!(p("#Float<inf>"), Term::Float(f64::INFINITY));
    assert_eq!(p("#Float<-inf>"), Term::Float(f64::NEG_INFINITY));
    assert!(matches!(p("#Float< nan >"), Term::Float(x) if x.is_nan()));
    // Exactly the same f64 back for the awkward ones.
    for x in [
        0.1,
        1.0 / 3.0,
        1e21,
        1e-7,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        -1.0e100,
        123456789.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let t = Term::Float(x);
        assert_eq!(p(&t.to_string()), t, "{x:?} printed as {t}");
    }
}

#[test]
fn binaries() {
    assert_eq!(p("<<>>"), Term::Binary(vec![]));
    assert_eq!(p("<< >>"), Term::Binary(vec![]));
    assert_eq!(p("<<1,2,3>>"), Term::Binary(vec![1, 2, 3]));
    assert_eq!(p("<<\"a\", 1, \"bc\">>"), Term::Binary(b"a\x01bc".to_vec()));
    assert_eq!(p("<<\"a\" \"b\">>"), Term::Binary(b"ab".to_vec()));
    assert_eq!(
        p("<<\"héllo\"/utf8>>"),
        Term::Binary("héllo".as_bytes().to_vec())
    );
    assert_eq!(p("<<\"é\">>"), Term::Binary(vec![0xE9]));
    assert_eq!(
        p("<<$a, $é/utf8, 16#ff>>"),
        Term::Binary(vec![b'a', 0xC3, 0xA9, 0xFF])
    );
    assert_eq!(
        p("<<5:3>>"),
        Term::BitBinary {
            bytes: vec![0b1010_0000],
            bits: 3
        }
    );
    assert_eq!(
        p("<<1,2,3:5>>"),
        Term::BitBinary {
            bytes: vec![1, 2, 3 << 3],
            bits: 5
        }
    );
    assert_eq!(p("<<1:4, 2:4>>"), Term::Binary(vec![0x12]));
    assert_eq!(p("<<1:16>>"), Term::Binary(vec![0, 1]));
    assert_eq!(p("<<1:1, \"a\">>").to_string(), "<<176,1:1>>");
    // Bitstrings print and parse back (the unused low bits are zero, as Erlang writes).
    for bits in 1..8u8 {
        let t = Term::BitBinary {
            bytes: vec![7, 0xFFu8 << (8 - bits)],
            bits,
        };
        round_trips(&t);
    }
}

#[test]
fn strings_are_lists() {
    assert_eq!(p("\"\""), Term::List(vec![]));
    assert_eq!(p("\"ab\" \"cd\""), chars("abcd"));
    assert_eq!(
        p(r#""a\"b\\c\n\t\x41\x{42}\101\e\d\s""#),
        chars("a\"b\\c\n\tABA\u{1b}\u{7f} ")
    );
    assert_eq!(p("\"日本\""), list(&[26085, 26412]));
    // The printer shows a byte list as a string; both forms are the same list.
    assert_eq!(p("\"hi\""), p("[104,105]"));
    assert_eq!(list(&[104, 105]).to_string(), "\"hi\"");
    assert_eq!(p("\"h\\x{80}\""), list(&[104, 128]));
}

#[test]
fn lists() {
    assert_eq!(p("[]"), Term::List(vec![]));
    assert_eq!(p("[ ]"), Term::List(vec![]));
    assert_eq!(p("[1,2]"), list(&[1, 2]));
    let improper = |els: &[i64], tail: Term| Term::ImproperList {
        elements: els.iter().map(|&i| int(i)).collect(),
        tail: Box::new(tail),
    };
    assert_eq!(p("[1|2]"), improper(&[1], int(2)));
    assert_eq!(p("[1,2|t]"), improper(&[1, 2], atom("t")));
    assert_eq!(
        p("[1 , 2 | {t} ]"),
        improper(&[1, 2], Term::Tuple(vec![atom("t")]))
    );
    // A list tail is flattened, as the decoder does.
    assert_eq!(p("[1|[]]"), list(&[1]));
    assert_eq!(p("[1|[2,3]]"), list(&[1, 2, 3]));
    assert_eq!(p("[1|[2|[3|[]]]]"), list(&[1, 2, 3]));
    assert_eq!(p("[1|[2|3]]"), improper(&[1, 2], int(3)));
    assert_eq!(p("[1|\"ab\"]"), list(&[1, 97, 98]));
    assert_eq!(p("[[]]"), Term::List(vec![Term::List(vec![])]));
}

#[test]
fn tuples_and_maps() {
    assert_eq!(p("{}"), Term::Tuple(vec![]));
    assert_eq!(
        p("{a,{b,{c,[1,2]}},#{}}"),
        Term::Tuple(vec![
            atom("a"),
            Term::Tuple(vec![atom("b"), Term::Tuple(vec![atom("c"), list(&[1, 2])])]),
            Term::Map(vec![])
        ])
    );
    assert_eq!(p("#{}"), Term::Map(vec![]));
    assert_eq!(
        p("#{<<\"k\">>=>v, 1 => [x]}"),
        Term::Map(vec![
            (Term::Binary(b"k".to_vec()), atom("v")),
            (int(1), Term::List(vec![atom("x")]))
        ])
    );
    // Pairs stay in order, duplicates included, exactly as a decoded map would.
    assert_eq!(
        p("#{a => 1, a => 2}"),
        Term::Map(vec![(atom("a"), int(1)), (atom("a"), int(2))])
    );
    assert_eq!(
        p("{charge,#{amount => 10,currency => <<\"EUR\">>}}"),
        Term::Tuple(vec![
            atom("charge"),
            Term::Map(vec![
                (atom("amount"), int(10)),
                (atom("currency"), Term::Binary(b"EUR".to_vec()))
            ])
        ])
    );
}

#[test]
fn pids_ports_refs() {
    let pid = |node: &str, id, serial, creation| {
        Term::Pid(ExternalPid {
            node: node.into(),
            id,
            serial,
            creation,
        })
    };
    for (t, s) in [
        (pid("nonode@nohost", 9, 0, 0), "#Pid<nonode@nohost.9.0>"),
        (pid("a@b", 9, 1, 3), "#Pid<a@b:3.9.1>"),
        (pid("a@host.example", 1, 2, 0), "#Pid<'a@host.example'.1.2>"),
        (pid("", 0, 0, u32::MAX), "#Pid<'':4294967295.0.0>"),
        (
            Term::Port(ExternalPort {
                node: "a@b".into(),
                id: u64::MAX,
                creation: 0,
            }),
            "#Port<a@b.18446744073709551615>",
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
        (
            Term::Reference(ExternalRef {
                node: "a@b".into(),
                creation: 0,
                id: vec![],
            }),
            "#Ref<a@b>",
        ),
    ] {
        assert_eq!(t.to_string(), s);
        assert_eq!(p(s), t, "{s}");
    }
    assert_eq!(p("#Pid< a@b : 3 . 9 . 1 >"), pid("a@b", 9, 1, 3));
}

/// `fun m:f/a` is the canonical export-fun encoding; anything else prints (and parses)
/// as its raw bytes.
#[test]
fn funs() {
    let export = fixture("export_fun.v2");
    let t = p("fun lists:map/2");
    assert_eq!(t.encode(), export);
    assert_eq!(t.to_string(), "fun lists:map/2");
    assert_eq!(
        p("fun 'Elixir.Enum':'map?'/0").to_string(),
        "fun 'Elixir.Enum':'map?'/0"
    );
    // The OTP 25 encoding (Latin-1 atom tags) is a different Term: raw form.
    let old = Term::decode(&fixture("export_fun")).unwrap();
    let shown = old.to_string();
    assert!(shown.starts_with("#Fun<lists.<<113,100,0,5,"), "{shown}");
    assert_eq!(p(&shown), old);
    // A closure.
    let closure = Term::Other(new_fun("mod", &[1, 2, 3]));
    let shown = closure.to_string();
    assert!(shown.starts_with("#Fun<mod.<<112,0,0,0,"), "{shown}");
    assert_eq!(p(&shown), closure);
    // Module optional; given, it must be the fun's.
    let bytes = &shown["#Fun<mod.".len()..shown.len() - 1];
    assert_eq!(p(&format!("#Fun<{bytes}>")), closure);
    let e = err(&format!("#Fun<other.{bytes}>"));
    assert_eq!((e.position(), e.found()), (5, "`other`"));
    assert!(e.expected().contains("`mod`"), "{e}");
    // Not a fun at all.
    let e = err("#Fun<<<1,2,3>>>");
    assert_eq!(e.position(), 5);
    assert!(e.expected().contains("one fun"), "{e}");
    let e = err("fun map/2");
    assert_eq!(e.position(), 7, "{e}");
    // Something that is not a fun prints in a form that does not parse.
    assert_eq!(Term::Other(vec![1, 2]).to_string(), "#Term<2 bytes>");
    assert!(etf::parse("#Term<2 bytes>").is_err());
}

#[test]
fn whitespace_comments_and_full_stop() {
    assert_eq!(p("  { incr ,\n\t5 }  "), p("{incr,5}"));
    assert_eq!(p("ok."), atom("ok"));
    assert_eq!(p("ok .\n"), atom("ok"));
    assert_eq!(p("1."), int(1));
    assert_eq!(p("1.5."), Term::Float(1.5));
    assert_eq!(p("% a comment\n{a, % another\n b}. % done"), p("{a,b}"));
    assert_eq!(p("\"a%b\""), chars("a%b"));
}

// ---- rejections -------------------------------------------------------------------------

/// (input, byte position, expected contains, found)
const REJECTIONS: &[(&str, usize, &str, &str)] = &[
    ("{1,2", 4, "`,` or `}`", "end of input"),
    ("[1,,2]", 3, "a term", "`,`"),
    ("#{a => }", 7, "a term", "`}`"),
    (
        "'unterminated",
        13,
        "`'` to close the atom that starts at 1:1",
        "end of input",
    ),
    ("<<300>>", 2, "a byte (0..=255)", "`300`"),
    ("1.5.5", 3, "end of input", "`.`"),
    ("ok ok", 3, "end of input", "`ok`"),
    ("", 0, "a term", "end of input"),
    ("  ", 2, "a term", "end of input"),
    ("{a}}", 3, "end of input", "`}`"),
    ("[1|2,3]", 4, "`]`", "`,`"),
    ("[1,2", 4, "`,`, `|` or `]`", "end of input"),
    ("[1|]", 3, "a term", "`]`"),
    ("[|1]", 1, "a term", "`|`"),
    ("#{a}", 3, "`=>`", "`}`"),
    ("#{a => 1,}", 9, "a term", "`}`"),
    (
        "\"abc",
        4,
        "`\"` to close the string that starts at 1:1",
        "end of input",
    ),
    ("Foo", 0, "variables are not allowed", "`Foo`"),
    ("{ok, _}", 5, "variables are not allowed", "`_`"),
    ("end", 0, "needs no quotes", "`end`"),
    ("日本", 0, "needs no quotes", "`日本`"),
    ("<<-1>>", 2, "a byte (0..=255)", "`-1`"),
    ("<<1.5>>", 2, "an integer or a string", "`1.5`"),
    ("<<8:3>>", 2, "from 0 to 7 (fits in 3 bits)", "`8`"),
    ("<<1:0>>", 4, "a size from 1 to 64 bits", "`0`"),
    ("<<1:65>>", 4, "a size from 1 to 64 bits", "`65`"),
    ("<<\"日本\">>", 2, "/utf8", "`\"日本\"`"),
    ("<<\"a\"/utf16>>", 6, "`utf8`", "`utf16`"),
    ("<<1:8/utf8>>", 5, "a sized segment takes no type", "`/`"),
    ("<<a>>", 2, "a binary segment", "`a`"),
    ("<<1 2>>", 4, "`,` or `>>`", "`2`"),
    ("<<1", 3, "`,` or `>>`", "end of input"),
    ("16#", 3, "a base-16 digit", "end of input"),
    ("16#xyz", 3, "a base-16 digit", "`xyz`"),
    ("37#1", 0, "a base from 2 to 36", "`37`"),
    ("1#1", 0, "a base from 2 to 36", "`1`"),
    ("1.0e", 4, "the digits of the exponent", "end of input"),
    (
        "1.0e400",
        0,
        "within the range of a 64-bit float",
        "`1.0e400`",
    ),
    ("-", 1, "a number after the sign", "end of input"),
    ("-ok", 1, "a number after the sign", "`ok`"),
    ("$", 1, "a character after `$`", "end of input"),
    (
        "\"\\x{110000}\"",
        1,
        "a code point up to 10FFFF",
        "`\\x{110000}`",
    ),
    ("\"\\x{}\"", 4, "a hexadecimal digit", "`}`"),
    ("\"\\xg\"", 3, "a hexadecimal digit", "`g`"),
    ("\"\\x{41\"", 6, "`}` to end", "`\"`"),
    ("'\\x{D800}'", 1, "not a surrogate", "`\\x{D800}`"),
    ("\"\\^1\"", 3, "a letter after `\\^`", "`1`"),
    ("'a\\", 3, "an escape sequence", "end of input"),
    (
        "#Pid<a@host.example.9.0>",
        12,
        "must be quoted",
        "`example`",
    ),
    ("#Pid<a@b.9>", 10, "`.`", "`>`"),
    ("#Pid<a@b.9.0.1>", 12, "`>`", "`.`"),
    (
        "#Pid<a@b.4294967296.0>",
        9,
        "a number from 0 to 4294967295",
        "`4294967296`",
    ),
    ("#Pid<A.1.2>", 5, "needs no quotes", "`A`"),
    ("#Pid<1.2.3>", 5, "a node name", "`1`"),
    ("#Port<a@b:x.1>", 10, "creation", "`x`"),
    ("#Ref<a@b.1.>", 11, "a number", "`>`"),
    ("#Float<zero>", 7, "`nan`, `inf` or `-inf`", "`zero`"),
    ("#foo{}", 0, "`#{` (a map)", "`#foo`"),
    ("#", 0, "`#{` (a map)", "`#`"),
    ("<0.9.0>", 0, "write `#Pid<node.9.0>`", "`<`"),
    ("<a>", 0, "a term", "`<`"),
    ("fun lists:map", 13, "`/` and the arity", "end of input"),
    ("fun lists:map/256", 14, "from 0 to 255", "`256`"),
    ("fun() -> ok end", 3, "a module name", "`(`"),
    ("ok.ok", 2, "end of input", "`.`"),
    ("f(x)", 1, "end of input", "`(`"),
    ("1 + 2", 2, "end of input", "`+`"),
    ("{a,\n  b\n  ]}", 10, "`,` or `}`", "`]`"),
    ("\u{0}", 0, "a term", "`\\0`"),
];

#[test]
fn rejections_name_position_expected_and_found() {
    let wrong: Vec<String> = REJECTIONS
        .iter()
        .filter_map(|&(input, pos, expected, found)| {
            let e = err(input);
            let ok = e.position() == pos && e.expected().contains(expected) && e.found() == found;
            (!ok).then(|| format!("{input:?} at {}: {e}", e.position()))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    for &(input, pos, expected, found) in REJECTIONS {
        let e = err(input);
        assert_eq!(e.position(), pos, "{input:?}: {e}");
        assert!(
            e.expected().contains(expected),
            "{input:?}: expected {expected:?} in: {e}"
        );
        assert_eq!(e.found(), found, "{input:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("expected {}", e.expected())),
            "{e}"
        );
        assert!(e.to_string().ends_with(&format!(", found {found}")), "{e}");
    }
}

#[test]
fn error_messages_and_line_columns() {
    let e = err("{1,2");
    assert_eq!(
        e.to_string(),
        "expected `,` or `}` at 1:5, found end of input"
    );
    let e = err("{a, b]");
    assert_eq!(e.to_string(), "expected `,` or `}` at 1:6, found `]`");
    let e = err("{a,\n  b\n  ]}");
    assert_eq!((e.line(), e.column()), (3, 3));
    assert_eq!(e.to_string(), "expected `,` or `}` at 3:3, found `]`");
    // Columns count characters, positions bytes.
    let e = err("{'日本', ]");
    assert_eq!((e.position(), e.column()), (11, 8));
    let e = err("'unterminated");
    assert_eq!(
        e.to_string(),
        "expected `'` to close the atom that starts at 1:1 at 1:14, found end of input"
    );
    let e = err("<<300>>");
    assert_eq!(
        e.to_string(),
        "expected a byte (0..=255) at 1:3, found `300`"
    );
    // Long excerpts are cut.
    let e = err(&format!("ok {}", "x".repeat(100)));
    assert_eq!(e.found(), format!("`{}…`", "x".repeat(32)));
    // A std::error::Error.
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().contains("end of input"));
}

#[test]
fn atoms_and_integers_have_limits() {
    let long = "a".repeat(65535);
    assert_eq!(p(&long), atom(&long));
    assert_eq!(p(&format!("'{long}'")), atom(&long));
    let e = err(&"a".repeat(65536));
    assert!(e.expected().contains("65535"), "{e}");
    let e = err(&format!("{{'{}'}}", "日".repeat(30000)));
    assert_eq!(e.position(), 1);
    // Latin-1 atoms up to 65535 characters are what the decoder can return (ATOM_EXT).
    let latin1 = "é".repeat(65535);
    assert_eq!(p(&format!("'{latin1}'")), atom(&latin1));
    // Decimal digits are capped (quadratic conversion); base 16 is not.
    let digits = "9".repeat(MAX_DECIMAL_DIGITS);
    assert!(matches!(p(&digits), Term::BigInt(_)));
    let e = err(&format!("[{digits}9]"));
    assert_eq!(e.position(), 1);
    assert!(e.expected().contains("16#"), "{e}");
    let hex = format!("16#{}", "F".repeat(400_000));
    let Term::BigInt(b) = p(&hex) else { panic!() };
    assert_eq!(b.magnitude.len(), 200_000);
    assert!(b.magnitude.iter().all(|&d| d == 0xFF));
}

// ---- depth: exactly where the decoder stops ----------------------------------------------

fn nest(depth: usize, open: &str, close: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn depth_limit_matches_the_decoder() {
    let max = MAX_DEPTH as usize;
    // (open, close, innermost): containers that count, and innermost terms that do or do
    // not count as a level of their own.
    let shapes: &[(&str, &str, &str)] = &[
        ("{", "}", "ok"),
        ("[", "]", "1"),
        ("#{k => ", "}", "v"),
        ("[a|{", "}]", "b"),     // two levels each
        ("{", "}", "\"abc\""),   // STRING_EXT: no level
        ("{", "}", "[1,2]"),     // STRING_EXT too
        ("{", "}", "[1000]"),    // LIST_EXT: a level
        ("{", "}", "\"日本\""),  // LIST_EXT
        ("{", "}", "[]"),        // NIL_EXT: no level
        ("{", "}", "{}"),        // a level
        ("{", "}", "#{}"),       // a level
        ("{", "}", "[1|2]"),     // a level
        ("{", "}", "fun m:f/1"), // EXPORT_EXT is a level for the decoder
        ("[", "]", "[[1]]"),
        ("[1|[", "]]", "\"ab\""),
    ];
    for &(open, close, inner) in shapes {
        for depth in [max - 2, max - 1, max, max + 1] {
            let text = nest(depth, open, close, inner);
            let parsed = etf::parse(&text);
            // What the decoder says about the same term, built from a shallower parse.
            let shallow = p(&nest(1, open, close, inner));
            let mut t = shallow;
            for _ in 1..depth {
                t = wrap(open, t);
            }
            let decoded = Term::decode(&t.encode());
            assert_eq!(
                parsed.is_ok(),
                decoded.is_ok(),
                "{open}{inner}{close} x{depth}: parse {:?}, decode {:?}",
                parsed.as_ref().err().map(|e| e.to_string()),
                decoded.as_ref().err().map(|e| e.to_string())
            );
            match parsed {
                Ok(parsed) => assert_eq!(parsed, t),
                Err(e) => {
                    assert!(e.expected().contains("levels of nested"), "{e}");
                }
            }
        }
    }
}

/// One more level of the shape `open`.
fn wrap(open: &str, t: Term) -> Term {
    match open {
        "{" => Term::Tuple(vec![t]),
        "[" => Term::List(vec![t]),
        "#{k => " => Term::Map(vec![(atom("k"), t)]),
        "[a|{" => Term::ImproperList {
            elements: vec![atom("a")],
            tail: Box::new(Term::Tuple(vec![t])),
        },
        "[1|[" => Term::List(vec![int(1), t]),
        _ => unreachable!(),
    }
}

#[test]
fn deep_and_long_inputs_are_safe_and_linear() {
    // Far too deep: an error at the first level too many, not a stack overflow.
    let max = MAX_DEPTH as usize;
    for (open, at) in [
        ("{", Some(max)),
        ("#{a => ", Some(max * 7)),
        // One level more is allowed for a list in case it is a byte list (STRING_EXT).
        ("[", Some(max + 1)),
        ("[1,", Some((max + 1) * 3)),
        ("[a|", None),
        ("<<", None),
    ] {
        let text = open.repeat(200_000);
        let e = err(&text);
        if let Some(at) = at {
            assert_eq!(e.position(), at, "{open}: {e}");
            assert!(e.expected().contains("levels of nested"), "{e}");
        }
    }
    // A tail chain is one list, read without recursion.
    let n = 100_000;
    let text = format!("{}[]{}", "[1|".repeat(n), "]".repeat(n));
    assert_eq!(p(&text), Term::List(vec![int(1); n]));
    // Long flat inputs.
    let text = format!("[{}0]", "1,".repeat(200_000));
    let Term::List(items) = p(&text) else {
        panic!()
    };
    assert_eq!(items.len(), 200_001);
    let text = format!("\"{}\"", "x\\n".repeat(300_000));
    let Term::List(items) = p(&text) else {
        panic!()
    };
    assert_eq!(items.len(), 600_000);
    let text = format!("<<{}0>>", "255,".repeat(200_000));
    let Term::Binary(b) = p(&text) else { panic!() };
    assert_eq!(b.len(), 200_001);
    let text = format!("#{{{}a => 1}}", "a => 1, ".repeat(100_000));
    let Term::Map(m) = p(&text) else { panic!() };
    assert_eq!(m.len(), 100_001);
    let text = format!("'{}", "x".repeat(1_000_000));
    assert_eq!(err(&text).position(), text.len());
    let text = format!("% {}\nok", "x".repeat(1_000_000));
    assert_eq!(p(&text), atom("ok"));
}

// ---- round trips --------------------------------------------------------------------------

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/etf")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(format!("{name}.etf"))).unwrap()
}

/// Every term a real Erlang wrote, both encodings, prints and parses back.
#[test]
fn erlang_fixtures_round_trip() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "etf") {
            let t = Term::decode(&std::fs::read(&path).unwrap()).unwrap();
            round_trips(&t);
            n += 1;
        }
    }
    assert!(n >= 100, "only {n} fixtures");
}

#[test]
fn printed_forms_that_must_read_back() {
    let cases = [
        atom("Hello world"),
        atom("end"),
        atom("fun"),
        atom(""),
        atom("a'b\\c\u{0}\u{85}"),
        atom("日本"),
        atom("ÀB"),
        atom("_x"),
        Term::Binary(vec![]),
        Term::Binary(vec![0xE9, 0x20]),
        Term::Binary("é\n\u{1b}".as_bytes().to_vec()),
        Term::Binary(vec![127]),
        Term::Binary(vec![0xA0]),
        list(&[8, 9, 10, 11, 12, 13, 27, 34, 92, 160, 255]),
        list(&[7]),
        list(&[-1]),
        list(&[0x10FFFF, 0xD800]),
        Term::BigInt(BigInt {
            negative: true,
            magnitude: vec![0xAB; 300],
        }),
        Term::BigInt(BigInt {
            negative: false,
            magnitude: vec![0xFF; 256],
        }),
        Term::Integer(i64::MIN),
        Term::Float(-0.0),
        Term::Other(new_fun("m", &[])),
        Term::Other(new_fun("'quoted'", &[1; 40])),
        Term::Other({
            let mut raw = new_fun("x", &[]);
            raw[30] = 97; // the module slot holds no atom
            raw
        }),
        Term::Other({
            let mut raw = vec![113, 100, 0, 1, b'm', 100, 0, 1, b'f', 97, 3];
            raw.truncate(11);
            raw
        }),
    ];
    for t in &cases {
        round_trips(t);
    }
    assert!(matches!(p("#Float<nan>"), Term::Float(x) if x.is_nan()));
    assert_eq!(Term::Float(f64::NAN).to_string(), "#Float<nan>");
    assert_eq!(Term::Float(-f64::NAN).to_string(), "#Float<nan>");
}

// ---- property tests -----------------------------------------------------------------------

/// Pieces of term syntax, so random concatenations reach deep into the parser.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "|",
    ",",
    "#{",
    "=>",
    "<<",
    ">>",
    "\"",
    "'",
    "$",
    "\\",
    "-",
    "+",
    ".",
    ":",
    "/",
    "#",
    "<",
    ">",
    " ",
    "\n",
    "%",
    "0",
    "1",
    "255",
    "300",
    "16#",
    "ff",
    "1.5",
    "e",
    "e-3",
    "_",
    "ok",
    "Foo",
    "end",
    "fun",
    "utf8",
    "#Pid<",
    "#Port<",
    "#Ref<",
    "#Fun<",
    "#Float<",
    "nan",
    "inf",
    "a@b",
    "\\x{",
    "\\x",
    "\\^",
    "日",
    "é",
    "\u{0}",
    "\u{85}",
    "9999999999999999999999",
    "fun m:f/1",
];

fn fragments() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40)
        .prop_map(|parts| parts.concat())
}

/// What must hold for any input: no panic; an error points inside the input at a
/// character boundary; a success prints and parses back to itself and survives the codec.
fn check_any_input(s: &str) {
    match etf::parse(s) {
        Err(e) => {
            assert!(e.position() <= s.len(), "{s:?}: {e}");
            assert!(s.is_char_boundary(e.position()), "{s:?}: {e}");
            assert!(e.line() >= 1 && e.column() >= 1);
            assert!(!e.expected().is_empty() && !e.found().is_empty());
        }
        Ok(t) => {
            round_trips(&t);
            let back = Term::decode(&t.encode())
                .unwrap_or_else(|e| panic!("{s:?} parsed as {t:?}, which does not decode: {e}"));
            assert!(same(&back, &t), "{s:?}: {t:?} decodes as {back:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_display_then_parse_is_identity(t in term()) {
        let s = t.to_string();
        let back = etf::parse(&s);
        prop_assert!(back.is_ok(), "{:?} printed as {:?}: {}", t, s, back.unwrap_err());
        prop_assert_eq!(back.unwrap(), t.clone());
        prop_assert_eq!(s.parse::<Term>().unwrap(), t.clone());
        // With whitespace and the shell's full stop around it.
        prop_assert_eq!(etf::parse(&format!(" \n{s} .\n")).unwrap(), t);
    }

    #[test]
    fn prop_arbitrary_strings_never_panic(s in any::<String>()) {
        check_any_input(&s);
    }

    #[test]
    fn prop_syntax_fragments_never_panic(s in fragments()) {
        check_any_input(&s);
    }

    #[test]
    fn prop_mutated_printed_terms_never_panic(
        t in term(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<char>(), 0u8..3), 1..4),
    ) {
        let mut s: Vec<char> = t.to_string().chars().collect();
        for (at, c, op) in edits {
            let i = at.index(s.len() + 1);
            match op {
                0 => s.insert(i, c),
                1 if i < s.len() => { s.remove(i); }
                _ => s.truncate(i),
            }
        }
        check_any_input(&s.into_iter().collect::<String>());
    }
}
