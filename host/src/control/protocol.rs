//! The control protocol: one JSON request per line from the client, then one JSON
//! response line (or, for `trace`, one line per traced message until the client hangs up).
//!
//! ```text
//! -> {"op":"call","to":"counter","etf":[131,104,2,...],"timeout_ms":5000}
//! <- {"ok":{"reply":"{count,3}"}}
//! <- {"error":"noproc: no actor counter"}
//! ```
//!
//! Terms travel as ETF bytes (the client parses Erlang syntax, so a malformed term is
//! refused before the host is contacted) and come back already printed in Erlang syntax.

use serde::{Deserialize, Serialize};

/// A request from `host ctl` or `host top`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Every actor.
    List,
    /// Send a message (an info message, like Erlang's `!`).
    Send {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
        /// The message, ETF.
        etf: Vec<u8>,
    },
    /// Cast a message (`gen_server:cast`: handled by `handle_cast`).
    Cast {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
        /// The message, ETF.
        etf: Vec<u8>,
    },
    /// Call and wait for the reply.
    Call {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
        /// The request, ETF.
        etf: Vec<u8>,
        /// How long to wait for the reply.
        timeout_ms: u64,
    },
    /// An actor's state, exported through its version.
    State {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// Every loaded version.
    Versions,
    /// The connected nodes (distribution).
    Nodes,
    /// Load a behaviour's library now, from its watched file or another one.
    Reload {
        /// A behaviour of the library.
        behaviour: String,
        /// The file to load instead of the watched one.
        path: Option<String>,
        /// `Extra` for every `code_change`, ETF (default `[]`).
        #[serde(default)]
        extra: Option<Vec<u8>>,
        /// Then push the same bytes to every connected node (OTP's `nl/1`); answers one
        /// `NodeSwap` per node.
        #[serde(default)]
        all_nodes: bool,
    },
    /// Swap a behaviour's library back to its previous retained version.
    Rollback {
        /// A behaviour of the library.
        behaviour: String,
        /// `Extra` for `downgrade` and `code_change`, ETF (default `[]`).
        #[serde(default)]
        extra: Option<Vec<u8>>,
        /// Then roll back on every connected node too.
        #[serde(default)]
        all_nodes: bool,
    },
    /// Hold an actor at its next message boundary (`sys:suspend`).
    Suspend {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// Let a suspended actor run again (`sys:resume`).
    Resume {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// One actor in detail (`sys:get_status`).
    Status {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// The supervision trees.
    Tree,
    /// Follow an actor's messages.
    Trace {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// Host-wide counters and rates.
    Stats,
    /// Everything `host top` shows.
    Snapshot,
    /// `request`, answered by another host of the cluster (`host ctl --node N ...`):
    /// carried over the distribution connection, so no second socket is needed.
    Forward {
        /// The node, `name@host`.
        node: String,
        /// What to ask it (anything but `Trace`).
        request: Box<Request>,
    },
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// It worked; the value depends on the request.
    Ok(serde_json::Value),
    /// It did not; one line saying why.
    Error(String),
    /// One traced message (a `trace` request gets these until the client hangs up).
    Trace(crate::observe::model::TraceEvent),
}

/// What a reload or rollback did, as `host ctl` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapOutcome {
    /// `ok`, `rolled_back`, `rejected`, `loaded` or `unchanged`.
    pub outcome: String,
    /// Behaviour, versions and actors migrated, one per behaviour of the library.
    pub behaviours: Vec<SwapRow>,
    /// How long the actors were suspended.
    pub pause_us: u64,
    /// Why it did not succeed.
    pub reason: Option<String>,
}

/// One behaviour's part in a swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapRow {
    /// Behaviour name.
    pub behaviour: String,
    /// Version before.
    pub from: String,
    /// Version after (or offered).
    pub to: String,
    /// Actors migrated.
    pub actors: usize,
}

impl SwapOutcome {
    /// The report of a host event from a reload or load.
    pub fn from_event(ev: &crate::HostEvent) -> SwapOutcome {
        use crate::observe::events::LoadOutcome;
        match ev {
            crate::HostEvent::Reload(r) => SwapOutcome {
                outcome: r.outcome.as_str().into(),
                behaviours: r
                    .behaviours
                    .iter()
                    .map(|b| SwapRow {
                        behaviour: b.behaviour.clone(),
                        from: b.from.clone(),
                        to: b.to.clone(),
                        actors: b.actors,
                    })
                    .collect(),
                pause_us: r.pause_us,
                reason: r.reason.clone(),
            },
            crate::HostEvent::Load {
                outcome,
                behaviours,
                reason,
                ..
            } => SwapOutcome {
                outcome: match outcome {
                    LoadOutcome::Loaded { .. } => "loaded",
                    LoadOutcome::Unchanged => "unchanged",
                    LoadOutcome::Rejected => "rejected",
                }
                .into(),
                behaviours: behaviours
                    .iter()
                    .map(|b| SwapRow {
                        behaviour: b.clone(),
                        from: String::new(),
                        to: String::new(),
                        actors: 0,
                    })
                    .collect(),
                pause_us: 0,
                reason: reason.clone(),
            },
            other => SwapOutcome {
                outcome: "rejected".into(),
                behaviours: Vec::new(),
                pause_us: 0,
                reason: Some(format!("unexpected event {other:?}")),
            },
        }
    }

    /// Whether the swap (or first load) happened.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome.as_str(), "ok" | "loaded" | "unchanged")
    }
}

/// The first bytes of the answer `{"ok":"TEXT"}`, in which the host streams a printed
/// term (`state`, `call`) instead of building the line in memory.
pub const TEXT_ANSWER_START: &[u8] = b"{\"ok\":\"";
/// The bytes after TEXT (then the newline).
pub const TEXT_ANSWER_END: &[u8] = b"\"}";

/// Writes the contents of a JSON string (without the quotes): whatever is written to it
/// comes out escaped exactly as `serde_json` escapes a string — `"`, `\` and the control
/// characters below U+0020, nothing else — so a streamed answer is byte for byte the line
/// `serde_json` would have written. The text must be UTF-8 (escaping looks only at ASCII
/// bytes, so a character split between two writes is passed on intact).
pub struct JsonStr<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for JsonStr<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0..=0x1f => b"",
                _ => continue,
            };
            self.0.write_all(&buf[start..i])?;
            start = i + 1;
            if esc.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.0.write_all(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ])?;
            } else {
                self.0.write_all(esc)?;
            }
        }
        self.0.write_all(&buf[start..])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Reads the contents of a JSON string as it arrives, piece by piece, and writes the text
/// it stands for: the other half of [`JsonStr`], for a client that prints a streamed answer
/// without holding it. Any JSON escape is understood (`\uXXXX` with surrogate pairs; a
/// lone surrogate becomes U+FFFD).
#[derive(Default)]
pub struct JsonUnescape {
    state: Unescaping,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
}

#[derive(Default, Clone, Copy)]
enum Unescaping {
    #[default]
    Plain,
    /// After a backslash.
    Escape,
    /// Inside `\uXXXX`: digits read so far and their value.
    Hex(u8, u16),
}

impl JsonUnescape {
    /// Feeds the next bytes of the string; writes what they stand for to `out`. Returns
    /// how many bytes of `input` belong to the string when its closing quote is among
    /// them (the quote included), else `None` (all were taken).
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut impl std::io::Write,
    ) -> std::io::Result<Option<usize>> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let mut i = 0;
        while i < input.len() {
            match self.state {
                Unescaping::Plain => {
                    let run = input[i..]
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\')
                        .unwrap_or(input.len() - i);
                    if run > 0 {
                        self.lone_high(out)?;
                        out.write_all(&input[i..i + run])?;
                        i += run;
                        continue;
                    }
                    i += 1;
                    if input[i - 1] == b'"' {
                        self.lone_high(out)?;
                        return Ok(Some(i));
                    }
                    self.state = Unescaping::Escape;
                }
                Unescaping::Escape => {
                    let b = input[i];
                    i += 1;
                    let plain = match b {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            self.state = Unescaping::Hex(0, 0);
                            continue;
                        }
                        _ => return Err(bad("invalid escape in a JSON string")),
                    };
                    self.lone_high(out)?;
                    out.write_all(&[plain])?;
                    self.state = Unescaping::Plain;
                }
                Unescaping::Hex(n, v) => {
                    let d = (input[i] as char)
                        .to_digit(16)
                        .ok_or_else(|| bad("invalid \\u escape in a JSON string"))?;
                    i += 1;
                    let v = (v << 4) | d as u16;
                    if n < 3 {
                        self.state = Unescaping::Hex(n + 1, v);
                        continue;
                    }
                    self.state = Unescaping::Plain;
                    self.code_unit(v, out)?;
                }
            }
        }
        Ok(None)
    }

    fn code_unit(&mut self, v: u16, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let c = match (self.high.take(), v) {
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(v);
                return Ok(());
            }
            (Some(h), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + (((h as u32) - 0xD800) << 10) + (v as u32 - 0xDC00))
            }
            (Some(_), 0xD800..=0xDBFF) => {
                write_char(out, char::REPLACEMENT_CHARACTER)?;
                self.high = Some(v);
                return Ok(());
            }
            (Some(_), _) => {
                write_char(out, char::REPLACEMENT_CHARACTER)?;
                char::from_u32(v as u32)
            }
            (None, _) => char::from_u32(v as u32),
        };
        write_char(out, c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// A high surrogate followed by anything but a low one stands alone.
    fn lone_high(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        if self.high.take().is_some() {
            write_char(out, char::REPLACEMENT_CHARACTER)?;
        }
        Ok(())
    }
}

fn write_char(out: &mut impl std::io::Write, c: char) -> std::io::Result<()> {
    out.write_all(c.encode_utf8(&mut [0; 4]).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn texts() -> Vec<String> {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é€𝄞\u{FFFD}\u{7ff}\u{800}");
        vec![
            String::new(),
            all,
            "<<\"item \\\"7\\\"\\n\">>".into(),
            "#{a => \"x\\ty\"}\u{1b}[31m".into(),
        ]
    }

    #[test]
    fn json_str_escapes_as_serde_json_does() {
        for t in texts() {
            let mut out = JsonStr(Vec::new());
            // In pieces of every size, splitting characters too.
            for piece in t.as_bytes().chunks(3) {
                out.write_all(piece).unwrap();
            }
            let want = serde_json::to_string(&t).unwrap();
            assert_eq!(
                String::from_utf8(out.0).unwrap(),
                want[1..want.len() - 1],
                "{t:?}"
            );
        }
    }

    #[test]
    fn json_unescape_reads_what_json_str_and_serde_json_write() {
        for t in texts() {
            let line = format!("{}rest", serde_json::to_string(&t).unwrap());
            for size in [1, 2, 5, 1000] {
                let mut u = JsonUnescape::default();
                let mut out = Vec::new();
                let mut end = None;
                let mut at = 1;
                for piece in line.as_bytes()[1..].chunks(size) {
                    if let Some(n) = u.feed(piece, &mut out).unwrap() {
                        end = Some(at + n);
                        break;
                    }
                    at += piece.len();
                }
                assert_eq!(String::from_utf8(out).unwrap(), t, "pieces of {size}");
                assert_eq!(&line[end.unwrap()..], "rest");
            }
        }
        // Every escape, surrogate pairs, lone surrogates.
        let mut u = JsonUnescape::default();
        let mut out = Vec::new();
        let all = br#"\"\\\/\b\f\n\r\t\u0041\ud834\udd1e\ud800x\udc00\u00e9""#;
        let n = u.feed(&[&all[..], b"}"].concat(), &mut out).unwrap();
        assert_eq!(n, Some(all.len()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"\\/\u{8}\u{c}\n\r\tA𝄞\u{FFFD}x\u{FFFD}é"
        );
        assert!(JsonUnescape::default()
            .feed(b"\\q\"", &mut Vec::new())
            .is_err());
    }
}
