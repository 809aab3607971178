//! The layering rule of `host/src`, checked: each layer uses only the layers below it,
//! so the dependency graph has no cycle and a reader can start at the bottom.
//!
//! From the bottom: `util` → `observe` → `system` → `code`, `supervisor` → the facade
//! (`facade`, re-exported at the crate root) → the leaves `config`, `control`, `boot`.
//! A file's layer is its top-level module; what it uses is every `crate::NAME` it
//! mentions outside comments (a name re-exported at the root counts as its home layer).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each layer and the layers it may use.
const RULES: &[(&str, &[&str])] = &[
    ("util", &[]),
    ("observe", &["util"]),
    ("system", &["util", "observe"]),
    ("code", &["util", "observe", "system"]),
    ("dist", &["util", "observe", "system"]),
    ("supervisor", &["util", "observe", "system"]),
    (
        "facade",
        &["util", "observe", "system", "code", "supervisor", "dist"],
    ),
    (
        "config",
        &[
            "util",
            "observe",
            "system",
            "code",
            "supervisor",
            "dist",
            "control",
        ],
    ),
    (
        "control",
        &[
            "util",
            "observe",
            "system",
            "code",
            "supervisor",
            "dist",
            "facade",
        ],
    ),
    (
        "boot",
        &[
            "util",
            "observe",
            "system",
            "code",
            "supervisor",
            "dist",
            "facade",
            "config",
            "control",
        ],
    ),
];

/// Where a name re-exported at the crate root comes from.
fn home(name: &str) -> &str {
    match name {
        "Host" | "HostError" | "HostOptions" | "StatsSampler" | "DEFAULT_CALL_TIMEOUT" => "facade",
        "HostEvent" | "ReloadOutcome" | "ReloadReport" => "observe",
        "CallError" | "SpawnError" | "Target" => "system",
        "StartError" => "supervisor",
        "ReloadError" | "VersionFate" | "VersionInfo" | "VersionPolicy" | "VersionReport" => "code",
        "ActorId" => "util",
        other => other,
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `crate::NAME` and `crate::{A, B}` names a source file uses, comments stripped.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        out.insert(name.to_string());
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &all {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let layer = top.trim_end_matches(".rs");
        let Some((_, allowed)) = RULES.iter().find(|(l, _)| *l == layer) else {
            // lib.rs and main.rs assemble everything.
            assert!(
                ["lib", "main"].contains(&layer),
                "{} is in no layer: add it to RULES",
                rel.display()
            );
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for name in uses(&text) {
            let used = home(&name);
            if used != layer && !allowed.contains(&used) {
                broken.push(format!(
                    "{} ({layer}) uses crate::{name} ({used})",
                    rel.display()
                ));
            }
        }
    }
    assert!(checked > 40, "only {checked} files checked");
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_a_use_that_breaks_the_rule() {
    let found = uses(
        "use crate::{facade::Host, util::ids};\nlet x = crate::code::load(); // crate::boot\n",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["code", "facade", "util"]
    );
}
