//! Arbitrary bytes (lossily made text) into the host configuration parser, then
//! everything the host does with a parsed configuration before starting actors. Must
//! return `Ok` or an error naming the file, never panic.

#![no_main]

use std::path::Path;

use host::config::Config;
use libfuzzer_sys::fuzz_target;
use plugin_api::etf::Term;

const ORIGIN: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let cfg = match Config::parse(&text, ORIGIN, Path::new("/base")) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(e.0.starts_with(ORIGIN), "error does not name the file: {e}");
            return;
        }
    };
    let _ = cfg.watch_config();
    for a in &cfg.actors {
        if let Ok(args) = a.args_etf() {
            if let Err(e) = Term::decode(&args) {
                panic!("accepted args of `{}` do not decode: {e}", a.behaviour);
            }
        }
    }
    if let Some(tree) = &cfg.supervisor {
        let _ = tree.to_spec();
    }
});
