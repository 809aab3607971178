//! The hot swap: OTP's suspend / change_code / resume, all or nothing.
//!
//! 1. Check the new library still exports every behaviour the old one did (actors running
//!    a dropped behaviour would be orphaned), else reject with nothing touched.
//! 2. Take the behaviour table for writing (no spawn can start on the old version now) and
//!    suspend every actor of the library's behaviours at a message boundary. Their
//!    mailboxes keep filling, in order.
//! 3. Export each actor's state (ETF) and build a new state from it through the new
//!    version's `code_change`. Going up, the running (older) version exports its state as
//!    it is; going down (a rollback), the running version is the *newer* one, which knows
//!    both shapes, so it writes the state down with its `downgrade` and the older version's
//!    `code_change` receives that with `{down, Vsn}` — OTP's order, with both versions
//!    having a say. The old states stay untouched.
//! 4. All succeeded: install the new states and version, resume, then free the old states
//!    through the old code. Anything failed or panicked: free the new states through the
//!    new code, resume on the old version and old states, report `rolled_back`.
//!
//! The pause — from the first suspend to the last resume — is what `pause_us` reports.

use std::sync::Arc;
use std::time::Instant;

use abi_stable::std_types::{RSlice, RStr};
use plugin_api::abi::{OutcomeCode, StatePtr};

use super::loader::LoadedLibrary;
use super::Code;
use crate::observe::events::{HostEvent, ReloadOutcome, ReloadReport, VersionChange};
use crate::system::{Actor, BehaviourVersion};

/// `extra` passed to `code_change` when the operator gives none: the empty list `[]`.
pub(crate) const EXTRA_NIL: [u8; 2] = [131, 106];

/// One actor being migrated.
struct Migration {
    actor: Arc<Actor>,
    to: Arc<BehaviourVersion>,
    new_state: Option<StatePtr>,
}

/// Which way a swap goes: to a new build, or back to a retained older version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// A new version replaces the running one; `code_change` gets `Vsn`.
    Up,
    /// A rollback to a retained version; `code_change` gets `{down, Vsn}`.
    Down,
}

/// Swaps every actor of `old`'s behaviours to `new`. Returns the `Reload` event.
pub(crate) fn swap(
    code: &Code,
    old: &Arc<LoadedLibrary>,
    new: &Arc<LoadedLibrary>,
    direction: Direction,
    extra: &[u8],
) -> HostEvent {
    let mut changes: Vec<VersionChange> = old
        .behaviours
        .iter()
        .map(|b| VersionChange {
            behaviour: b.name.to_string(),
            from: b.version.to_string(),
            to: new
                .behaviour(&b.name)
                .map_or("?".into(), |n| n.version.to_string()),
            actors: 0,
        })
        .collect();
    let report = |changes: Vec<VersionChange>, pause_us: u64, outcome, reason: Option<String>| {
        HostEvent::Reload(ReloadReport {
            library: old.source.clone(),
            behaviours: changes,
            pause_us,
            outcome,
            reason,
        })
    };

    if let Some(missing) = old
        .behaviours
        .iter()
        .find(|b| new.behaviour(&b.name).is_none())
    {
        let reason = format!(
            "the new library no longer exports behaviour `{}` (it exports {}); its actors would be orphaned",
            missing.name,
            new.behaviours.iter().map(|b| format!("`{}`", b.name)).collect::<Vec<_>>().join(", ")
        );
        return report(changes, 0, ReloadOutcome::Rejected, Some(reason));
    }
    let mut table = code.behaviours.write();
    if let Some(clash) = new
        .behaviours
        .iter()
        .find(|b| old.behaviour(&b.name).is_none() && table.contains_key(&b.name))
    {
        let reason = format!(
            "the new library adds behaviour `{}`, which another library provides",
            clash.name
        );
        return report(changes, 0, ReloadOutcome::Rejected, Some(reason));
    }

    let actors = code
        .system
        .registry
        .select(|a| old.behaviours.iter().any(|b| b.name == a.behaviour));
    // Every actor of each behaviour is counted, also when a failure stops the migration
    // before it reaches them: the report says how many the reload concerned.
    for a in &actors {
        if let Some(c) = changes.iter_mut().find(|c| *c.behaviour == *a.behaviour) {
            c.actors += 1;
        }
    }
    let started = Instant::now();
    code.system.suspend(&actors);

    let mut migrations: Vec<Migration> = Vec::with_capacity(actors.len());
    let mut failure: Option<String> = None;
    for actor in &actors {
        // Waits for a running batch to end; the runner sees `suspended` before its next
        // message (invariant 3 in `actor`).
        let core = actor.core.lock();
        if !core.alive {
            continue;
        }
        let from = core.version.clone();
        let to = new.behaviour(&from.name).expect("checked above").clone();
        let exported = match direction {
            Direction::Up => (from.desc.export_state)(core.state),
            Direction::Down => (from.desc.downgrade)(
                core.state,
                RStr::from_str(&to.version),
                RSlice::from_slice(extra),
            ),
        };
        drop(core);
        if exported.code != OutcomeCode::Ok {
            let what = match direction {
                Direction::Up => "exporting the state".to_string(),
                Direction::Down => format!("downgrade to {}", to.version),
            };
            failure = Some(format!(
                "{what} of actor {} ({} {}) failed: {}",
                actor.id,
                from.name,
                from.version,
                String::from_utf8_lossy(&exported.detail)
            ));
            break;
        }
        let mut state = StatePtr::NULL;
        let out = (to.desc.code_change)(
            RStr::from_str(&from.version),
            direction == Direction::Down,
            RSlice::from_slice(&exported.detail),
            RSlice::from_slice(extra),
            &mut state,
        );
        drop(exported);
        let ok = out.code == OutcomeCode::Ok;
        if !ok {
            let what = match out.code {
                OutcomeCode::Panic => "panicked",
                _ => "returned an error",
            };
            failure = Some(format!(
                "code_change of {} {} -> {} for actor {} {what}: {}",
                from.name,
                from.version,
                to.version,
                actor.id,
                String::from_utf8_lossy(&out.detail)
            ));
        }
        drop(out);
        migrations.push(Migration {
            actor: actor.clone(),
            to,
            new_state: ok.then_some(state),
        });
        if !ok {
            break;
        }
    }

    let mut old_states: Vec<(Arc<BehaviourVersion>, StatePtr)> = Vec::new();
    if failure.is_none() {
        for m in &mut migrations {
            let mut core = m.actor.core.lock();
            let new_state = m.new_state.take().expect("every migration succeeded");
            // Suspended actors cannot have died in between; keep the check anyway.
            if core.alive {
                old_states.push((
                    core.version.clone(),
                    std::mem::replace(&mut core.state, new_state),
                ));
                core.version = m.to.clone();
            } else {
                (m.to.desc.drop_state)(new_state);
            }
        }
        for b in &new.behaviours {
            table.insert(b.name.clone(), b.clone());
        }
    } else {
        for m in &mut migrations {
            if let Some(s) = m.new_state.take() {
                (m.to.desc.drop_state)(s);
            }
        }
    }
    drop(table);

    // Resume every suspended actor (also those not reached after a failure): clear the
    // flag, then re-queue whoever has mail (invariant 4 in `actor`).
    code.system.resume(&actors);
    let pause_us = started.elapsed().as_micros() as u64;

    // The old states are freed by the code that made them, after the actors are running.
    for (version, state) in old_states {
        (version.desc.drop_state)(state);
    }

    match failure {
        None => report(changes, pause_us, ReloadOutcome::Ok, None),
        Some(reason) => report(changes, pause_us, ReloadOutcome::RolledBack, Some(reason)),
    }
}
