//! Fuzz-style property tests of the configuration parser (the in-CI counterpart of the
//! `config_parse` cargo-fuzz target in `tests/fuzz`): arbitrary text and bytes, and
//! generated configurations mixing valid keys with hostile values, go through
//! `Config::parse`, `SupervisorConfig::to_spec` and `ActorSpec::args_etf`. Each gives
//! `Ok` or an error naming where the problem is — never a panic.

use std::path::Path;

use host::config::{Config, MAX_THREADS};
use host::supervisor::{ChildSpec, SupervisorSpec};
use plugin_api::etf::{self, Term};
use proptest::prelude::*;

const ORIGIN: &str = "fuzz/host.toml";

/// Everything a host does with a configuration before starting actors. Returns the
/// parse error text, if any, for tests that look at it.
fn check(text: &str) -> Result<(), String> {
    let cfg = match Config::parse(text, ORIGIN, Path::new("/base")) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(e.0.starts_with(ORIGIN), "error does not name the file: {e}");
            return Err(e.0);
        }
    };
    for d in &cfg.plugin_dirs {
        assert!(d.is_absolute(), "{d:?} was not resolved against the base");
    }
    assert!(cfg.threads <= MAX_THREADS);
    let _ = cfg.watch_config();
    for a in &cfg.actors {
        assert!(!a.behaviour.is_empty());
        match a.args_etf() {
            Ok(bytes) => {
                Term::decode(&bytes).expect("accepted args decode");
            }
            Err(e) => assert!(
                e.0.contains(&format!("actor `{}`", a.behaviour)),
                "error does not name the actor: {e}"
            ),
        }
    }
    if let Some(tree) = &cfg.supervisor {
        match tree.to_spec() {
            Ok(spec) => check_spec(&spec),
            Err(e) => assert!(
                e.contains(".children[") && e.contains("]: "),
                "error does not name the child: {e}"
            ),
        }
    }
    Ok(())
}

fn check_spec(spec: &SupervisorSpec) {
    for c in &spec.children {
        match c {
            ChildSpec::Worker(w) => {
                Term::decode(&w.args).expect("accepted args decode");
            }
            ChildSpec::Supervisor(s) => check_spec(s),
        }
    }
}

// ---- unstructured input -------------------------------------------------------------------

/// Characters TOML gives meaning to, so random text is not only bare-word garbage.
const TOML_CHARS: &str = "[\\[\\]{}=\"'.,#\\n\\r\\t a-z0-9_+\\-:\\\\éT]{0,160}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = check(&text);
    }

    #[test]
    fn toml_like_text_never_panics(text in TOML_CHARS) {
        let _ = check(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn corrupted_demo_config_never_panics(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = host::config::DEMO_CONFIG.as_bytes().to_vec();
        for (at, b, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        let _ = check(&String::from_utf8_lossy(&bytes));
    }
}

// ---- structure-aware generation --------------------------------------------------------------

/// A TOML value in inline syntax, with the extremes that break naive code.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => proptest::sample::select(vec![
            "0", "1", "-1", "5000", "255", "256", "65535", "65536", "4294967295", "4294967296",
            "9223372036854775807", "-9223372036854775808", "9223372036854775808",
            "18446744073709551616", "0x7fffffffffffffff", "0o777", "0b1", "1_000",
            "1e400", "-0.0", "nan", "inf", "-inf", "3.5", "true", "false",
            "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27",
            "\"\"", "\"brutal_kill\"", "\"infinity\"", "\"one_for_one\"",
            "\"one_for_all\"", "\"rest_for_one\"", "\"simple_one_for_one\"", "\"permanent\"",
            "\"transient\"", "\"temporary\"", "\"text\"", "\"json\"", "\"counter\"",
            "'lit\\eral'", "\"\\u0000\"", "\"日本\"", "\"a\\\"b\"",
        ]).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => "[a-z_ ]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec((key(), inner), 0..5).prop_map(|kv| {
                let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

/// Keys: the real ones most of the time, sometimes a stranger or a quoted key.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(vec![
            "behaviour", "name", "args", "restart", "shutdown", "strategy", "intensity",
            "period_ms", "children", "plugin_dirs", "threads", "log_format", "watch",
            "enabled", "debounce_ms", "settle_ms", "actors", "supervisor",
            "exit_on_root_failure", "start", "every_ms",
        ]).prop_map(str::to_owned),
        1 => "[a-z]{1,6}",
        1 => "[a-z ]{0,4}".prop_map(|s| format!("{s:?}")),
    ]
}

/// A child of a supervisor as an inline table: mostly sensible keys, hostile values.
fn child() -> impl Strategy<Value = String> {
    let worker = (
        proptest::option::of(prop_oneof![
            "[a-z]{0,8}".prop_map(|s| format!("{s:?}")),
            value()
        ]),
        proptest::option::of(prop_oneof![
            Just("\"dup\"".to_owned()),
            Just("\"\"".to_owned()),
            value()
        ]),
        proptest::option::of(value()),
        proptest::option::of(value()),
        proptest::option::of(value()),
    )
        .prop_map(|(behaviour, name, args, restart, shutdown)| {
            let mut kv = Vec::new();
            for (k, v) in [
                ("behaviour", behaviour),
                ("name", name),
                ("args", args),
                ("restart", restart),
                ("shutdown", shutdown),
            ] {
                if let Some(v) = v {
                    kv.push(format!("{k} = {v}"));
                }
            }
            format!("{{ {} }}", kv.join(", "))
        });
    worker.prop_recursive(5, 32, 4, |inner| {
        (
            proptest::collection::vec(inner, 0..4),
            proptest::collection::vec((key(), value()), 0..3),
        )
            .prop_map(|(children, extra)| {
                let mut kv: Vec<String> = extra
                    .into_iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                kv.push(format!("children = [{}]", children.join(", ")));
                format!("{{ {} }}", kv.join(", "))
            })
    })
}

/// A whole configuration: each section present or not, each value sensible or not.
fn config_text() -> impl Strategy<Value = String> {
    let top = proptest::collection::vec(
        prop_oneof![
            Just("plugin_dirs = [\"plugins\", \"/abs\"]".to_owned()),
            value().prop_map(|v| format!("plugin_dirs = {v}")),
            value().prop_map(|v| format!("threads = {v}")),
            value().prop_map(|v| format!("log_format = {v}")),
            value().prop_map(|v| format!("exit_on_root_failure = {v}")),
            value().prop_map(|v| format!("watch = {v}")),
            (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        ],
        0..5,
    );
    let actor = (
        prop_oneof!["[a-z]{0,6}".prop_map(|s| format!("{s:?}")), value()],
        proptest::option::of(value()),
        proptest::option::of(value()),
        proptest::option::of((key(), value())),
    )
        .prop_map(|(behaviour, name, args, extra)| {
            let mut s = format!("\n[[actors]]\nbehaviour = {behaviour}\n");
            if let Some(n) = name {
                s += &format!("name = {n}\n");
            }
            if let Some(a) = args {
                s += &format!("args = {a}\n");
            }
            if let Some((k, v)) = extra {
                s += &format!("{k} = {v}\n");
            }
            s
        });
    let supervisor = (
        proptest::collection::vec((key(), value()), 0..4),
        proptest::collection::vec(child(), 0..5),
    )
        .prop_map(|(kv, children)| {
            let mut s = "\n[supervisor]\n".to_owned();
            for (k, v) in kv {
                s += &format!("{k} = {v}\n");
            }
            s += &format!("children = [{}]\n", children.join(", "));
            s
        });
    (
        any::<bool>(),
        top,
        proptest::collection::vec(actor, 0..4),
        proptest::option::of(supervisor),
    )
        .prop_map(|(dirs, top, actors, supervisor)| {
            let mut s = String::new();
            if dirs {
                s += "plugin_dirs = [\"target/debug\"]\n";
            }
            for line in top {
                s += &line;
                s.push('\n');
            }
            // Sections must follow the top-level keys.
            for a in actors {
                s += &a;
            }
            if let Some(sup) = supervisor {
                s += &sup;
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn generated_configs_parse_or_fail_clearly(text in config_text()) {
        let _ = check(&text);
    }

    #[test]
    fn generated_supervisor_trees_parse_or_fail_clearly(
        children in proptest::collection::vec(child(), 1..6),
        strategy in value(),
        intensity in value(),
        period in value(),
    ) {
        let text = format!(
            "plugin_dirs = []\n[supervisor]\nstrategy = {strategy}\nintensity = {intensity}\n\
             period_ms = {period}\nchildren = [{}]\n",
            children.join(", ")
        );
        let _ = check(&text);
    }

    #[test]
    fn any_args_value_is_encodable_or_named(args in value()) {
        let text = format!(
            "plugin_dirs = []\n[[actors]]\nbehaviour = \"b\"\nargs = {args}\n\
             [supervisor]\nchildren = [{{ behaviour = \"w\", args = {args} }}]\n"
        );
        if check(&text).is_ok() {
            // What parsed as args encodes to a term that decodes.
            let cfg = Config::parse(&text, ORIGIN, Path::new("/base")).unwrap();
            let bytes = cfg.actors[0].args_etf().unwrap();
            prop_assert!(Term::decode(&bytes).is_ok());
        }
    }
}

// ---- specific hostile values ------------------------------------------------------------------

const DIRS: &str = "plugin_dirs = []\n";

fn parse_err(text: &str) -> String {
    let e = check(text).expect_err(text);
    assert!(e.starts_with(ORIGIN), "{e}");
    e
}

fn tree_err(text: &str) -> String {
    check(text).expect("the tree parses");
    let cfg = Config::parse(text, ORIGIN, Path::new("/base")).unwrap();
    cfg.supervisor.unwrap().to_spec().expect_err(text)
}

#[test]
fn huge_and_negative_numbers_are_errors_naming_the_field() {
    for (text, field) in [
        ("[supervisor]\nintensity = 9223372036854775807\n", "intensity"),
        ("[supervisor]\nintensity = 4294967296\n", "intensity"),
        ("[supervisor]\nintensity = -1\n", "intensity"),
        ("[supervisor]\nperiod_ms = -5\n", "period_ms"),
        (
            "[supervisor]\nchildren = [{ strategy = \"one_for_all\", intensity = -2, children = [] }]\n",
            "intensity",
        ),
        ("[watch]\ndebounce_ms = -1\n", "debounce_ms"),
        // Issue 10: a huge debounce silently disabled reloading.
        ("[watch]\ndebounce_ms = 9223372036854775807\n", "debounce_ms"),
        ("[watch]\nsettle_ms = 60001\n", "settle_ms"),
        ("threads = -1\n", "threads"),
        ("threads = 9223372036854775807\n", "threads"),
        ("threads = 1025\n", "threads"),
    ] {
        let e = parse_err(&format!("{DIRS}{text}"));
        assert!(e.contains(field), "{text}: {e}");
    }
    // 2^63 is not even a TOML integer.
    let e = parse_err(&format!(
        "{DIRS}[supervisor]\nintensity = 9223372036854775808\n"
    ));
    assert!(e.contains("intensity") || e.contains("line 3"), "{e}");
    // The largest values that fit are accepted (the durations are just long).
    check(&format!(
        "{DIRS}threads = {MAX_THREADS}\n[watch]\ndebounce_ms = 60000\n\
         [supervisor]\nintensity = 4294967295\nperiod_ms = 9223372036854775807\n\
         children = [{{ behaviour = \"w\", shutdown = 9223372036854775807 }}]\n"
    ))
    .unwrap();
}

#[test]
fn bad_shutdown_values_name_the_child() {
    for shutdown in [
        "-1",
        "-9223372036854775808",
        "1.5",
        "\"forever\"",
        "[]",
        "{}",
    ] {
        let e = tree_err(&format!(
            "{DIRS}[supervisor]\nname = \"top\"\nchildren = [{{ behaviour = \"w\" }}, \
             {{ behaviour = \"w\", shutdown = {shutdown} }}]\n"
        ));
        assert!(e.starts_with("top.children[1]: shutdown must be"), "{e}");
    }
}

#[test]
fn empty_and_duplicate_names_do_not_panic() {
    // An empty actor behaviour is refused by the parser ...
    let e = parse_err(&format!("{DIRS}[[actors]]\nbehaviour = \"\"\n"));
    assert!(e.contains("actors[0] has an empty behaviour"), "{e}");
    // ... the rest is left to the runtime (which refuses a duplicate registered name).
    check(&format!(
        "{DIRS}[[actors]]\nbehaviour = \"a\"\nname = \"\"\n[[actors]]\nbehaviour = \"a\"\n\
         name = \"\"\n[supervisor]\nname = \"\"\nchildren = [{{ behaviour = \"w\", name = \"x\" }}, \
         {{ behaviour = \"w\", name = \"x\" }}, {{ name = \"\", children = [] }}]\n"
    ))
    .unwrap();
    // A child that is neither or both is an error naming it.
    let e = tree_err(&format!(
        "{DIRS}[supervisor]\nchildren = [{{ name = \"x\" }}]\n"
    ));
    assert!(e.starts_with("root.children[0]: a child needs"), "{e}");
    let e = tree_err(&format!(
        "{DIRS}[supervisor]\nchildren = [{{ behaviour = \"w\", children = [] }}]\n"
    ));
    assert!(
        e.starts_with("root.children[0]: a child is a worker"),
        "{e}"
    );
}

/// TOML limits each kind of nesting to about 80 levels, but table headers and inline
/// values add up, past the ETF decoder's limit: such args are refused at parse time,
/// naming the actor, instead of failing inside its `init`.
#[test]
fn args_nested_deeper_than_an_actor_can_decode_are_refused() {
    let header = ".a".repeat(70);
    let inline = 70;
    let deep = format!("{}1{}", "[".repeat(inline), "]".repeat(inline));
    let text =
        format!("{DIRS}[[actors]]\nbehaviour = \"deep\"\n[actors.args{header}]\nv = {deep}\n");
    let cfg = Config::parse(&text, ORIGIN, Path::new("/base")).unwrap();
    let e = cfg.actors[0].args_etf().unwrap_err().0;
    assert!(
        e.starts_with(
            "args of actor `deep` cannot be decoded by an actor: term nested deeper than"
        ),
        "{e}"
    );
    // The same in a supervision tree.
    let text = format!(
        "{DIRS}[supervisor]\n[[supervisor.children]]\nbehaviour = \"deep\"\n\
         [supervisor.children.args{header}]\nv = {deep}\n"
    );
    let e = tree_err(&text);
    assert!(
        e.starts_with("root.children[0]: args cannot be decoded by an actor"),
        "{e}"
    );
    // Deep but within the limit is fine, and arrives intact.
    let ok = format!(
        "{DIRS}[[actors]]\nbehaviour = \"b\"\n[actors.args{}]\nv = 1\n",
        ".a".repeat(60)
    );
    let cfg = Config::parse(&ok, ORIGIN, Path::new("/base")).unwrap();
    let bytes = cfg.actors[0].args_etf().unwrap();
    assert!(etf::display(&bytes).starts_with("#{<<\"a\">> => #{<<\"a\">>"));
}

/// Nesting that TOML itself refuses is a parse error naming the file, not a stack
/// overflow, however deep; what TOML accepts converts without overflowing either.
#[test]
fn deep_nesting_is_an_error_or_fine() {
    for n in [100, 10_000] {
        for text in [
            format!(
                "{DIRS}[[actors]]\nbehaviour = 'x'\nargs = {}1{}\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
            format!(
                "{DIRS}[[actors]]\nbehaviour = 'x'\nargs = {}1{}\n",
                "{a=".repeat(n),
                "}".repeat(n)
            ),
            format!(
                "{DIRS}[[actors]]\nbehaviour = 'x'\nargs{} = 1\n",
                ".a".repeat(n)
            ),
            format!(
                "{DIRS}[supervisor]\nchildren = {}{{behaviour='w'}}{}\n",
                "[{children=[".repeat(n),
                "]}]".repeat(n)
            ),
        ] {
            parse_err(&text);
        }
    }
    // The deepest supervision tree TOML accepts, as nested tables.
    let mut deepest = None;
    for depth in (1..=100).rev() {
        let mut text = format!("{DIRS}[supervisor]\n");
        let mut path = "supervisor".to_owned();
        for i in 0..depth {
            path += ".children";
            text += &format!("[[{path}]]\nname = \"s{i}\"\n");
        }
        text += "behaviour = \"w\"\n";
        if Config::parse(&text, ORIGIN, Path::new("/base")).is_ok() {
            deepest = Some((depth, text));
            break;
        }
    }
    let (depth, text) = deepest.expect("some depth parses");
    assert!(depth > 10, "{depth}");
    // The innermost is a worker with a name but also an empty `children` chain above it:
    // every level but the last is a supervisor.
    let spec = Config::parse(&text, ORIGIN, Path::new("/base"))
        .unwrap()
        .supervisor
        .unwrap()
        .to_spec();
    let mut s = &spec.expect("the deepest tree converts");
    let mut levels = 0;
    while let Some(ChildSpec::Supervisor(inner)) = s.children.first() {
        s = inner;
        levels += 1;
    }
    assert_eq!(levels, depth - 1);
    assert!(matches!(s.children.first(), Some(ChildSpec::Worker(_))));
}
