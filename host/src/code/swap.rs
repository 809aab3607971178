//! The hot swap: OTP's suspend / change_code / resume, all or nothing, and every wait on
//! plugin code bounded (a stuck callback fails its own swap, never freezes the host).
//!
//! 1. Check the new library still exports every behaviour the old one did (actors running
//!    a dropped behaviour would be orphaned), else reject with nothing touched.
//! 2. Take the behaviour table for writing just long enough to check for a clash and list
//!    the actors of the library's behaviours, then let go: spawns and restarts of every
//!    behaviour go on while the swap waits (one that registers meanwhile is caught in
//!    step 5). Suspend the listed actors at a message boundary; their mailboxes keep
//!    filling, in order.
//! 3. A migrator thread waits for each listed actor to reach its boundary, until
//!    `suspend_timeout` after the suspend; an actor that does not (a callback still
//!    running) rolls the swap back, naming it.
//! 4. The migrator exports each state (ETF) and builds a new state from it through the new
//!    version's `code_change`. Going up, the running (older) version exports its state as
//!    it is; going down (a rollback), the running version is the *newer* one, which knows
//!    both shapes, so it writes the state down with its `downgrade` and the older version's
//!    `code_change` receives that with `{down, Vsn}` — OTP's order, with both versions
//!    having a say. The old states stay untouched. The
//!    swap waits for each actor's result at most `code_change_timeout`: past it the swap
//!    rolls back and abandons the migrator, which from then on touches no actor and frees
//!    whatever it still makes through the version that made it (invariant 2 of `actor`).
//! 5. Take the table for writing again. An actor of these behaviours that registered
//!    since step 2 goes through steps 3–4 in another round (the lock released
//!    meanwhile). When none is left: all succeeded, so install the new states and version
//!    and the table entries while holding the lock (no plugin code runs here), resume,
//!    then free the old states through the old code. Anything failed, panicked or timed
//!    out: free the new states through the new code, resume on the old version and old
//!    states, report `rolled_back` with the reason.
//!
//! The pause — from the first suspend to the last resume — is what `pause_us` reports.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::std_types::{RSlice, RStr};
use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use plugin_api::abi::{OutcomeCode, StatePtr};

use super::loader::LoadedLibrary;
use super::Code;
use crate::observe::events::{HostEvent, ReloadOutcome, ReloadReport, VersionChange};
use crate::system::{Actor, BehaviourVersion};
use crate::util::ids::ActorId;

/// `extra` passed to `code_change` when the operator gives none: the empty list `[]`.
pub(crate) const EXTRA_NIL: [u8; 2] = [131, 106];

/// Rounds of step 5 before a swap gives up on actors that keep being spawned meanwhile.
const MAX_ROUNDS: usize = 16;

/// A state and the version that made it; dropping it frees the state through that
/// version (invariant 2 of `actor`), whichever thread drops it.
struct OwnedState {
    version: Arc<BehaviourVersion>,
    state: Option<StatePtr>,
}

impl OwnedState {
    /// Hands the state over to an actor's core.
    fn into_raw(mut self) -> StatePtr {
        self.state.take().expect("taken once")
    }
}

impl Drop for OwnedState {
    fn drop(&mut self) {
        if let Some(s) = self.state.take() {
            (self.version.desc.drop_state)(s);
        }
    }
}

/// One actor migrated (or found dead meanwhile: `None`).
struct Migration {
    actor: Arc<Actor>,
    new_state: Option<OwnedState>,
}

/// What the migrator thread reports, in order: one `Boundary`, then one `Migrated` per
/// actor that reached it.
enum Step {
    /// Every actor reached its boundary, or the one at this index did not in time.
    Boundary(Result<(), usize>),
    /// The actor at this index: its new state (`None`: it died meanwhile) or why not.
    Migrated(usize, Result<Option<OwnedState>, String>),
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

    // Step 1.
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
    let ours = |a: &Actor| old.behaviours.iter().any(|b| b.name == a.behaviour);

    // Step 2.
    let table = code.behaviours.write();
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
    let mut round = code.system.registry.select(ours);
    drop(table);

    let started = Instant::now();
    let mut suspended: Vec<Arc<Actor>> = Vec::new();
    let mut seen: HashSet<ActorId> = HashSet::new();
    let mut migrations: Vec<Migration> = Vec::new();
    let mut failure: Option<String> = None;
    let mut rounds = 0;
    let mut table = loop {
        rounds += 1;
        code.system.suspend(&round);
        seen.extend(round.iter().map(|a| a.id));
        suspended.extend(round.iter().cloned());
        // Steps 3 and 4, without any lock.
        match migrate(code, std::mem::take(&mut round), new, direction, extra) {
            Ok(done) => migrations.extend(done),
            Err(reason) => {
                failure = Some(reason);
                break None;
            }
        }
        // Step 5.
        let table = code.behaviours.write();
        round = code
            .system
            .registry
            .select(|a| ours(a) && !seen.contains(&a.id));
        if round.is_empty() {
            break Some(table);
        }
        drop(table);
        if rounds == MAX_ROUNDS {
            failure = Some(format!(
                "actors of {} kept being spawned during {MAX_ROUNDS} rounds of the swap",
                old.behaviours
                    .iter()
                    .map(|b| format!("`{}`", b.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            break None;
        }
    };

    let mut old_states: Vec<OwnedState> = Vec::new();
    if let Some(table) = table.as_mut() {
        for m in &mut migrations {
            let Some(new_state) = m.new_state.take() else {
                continue;
            };
            let mut core = m.actor.core.lock();
            // Suspended actors do not die by themselves; a kill may have ended one.
            if core.alive {
                let to = new_state.version.clone();
                old_states.push(OwnedState {
                    version: core.version.clone(),
                    state: Some(std::mem::replace(&mut core.state, new_state.into_raw())),
                });
                core.version = to.clone();
                drop(core);
                m.actor.publish_version(&to);
            }
        }
        for b in &new.behaviours {
            table.insert(b.name.clone(), b.clone());
        }
    }
    // Rolled back: every new state is freed by the new code when `migrations` drops.
    // Either way the report counts every actor of each behaviour the swap concerned, also
    // those a failure stopped it from reaching.
    for a in &suspended {
        if let Some(c) = changes.iter_mut().find(|c| *c.behaviour == *a.behaviour) {
            c.actors += 1;
        }
    }
    drop(table);
    drop(migrations);

    // Resume every suspended actor (also those not reached after a failure): clear the
    // flag, then re-queue whoever has mail (invariant 4 in `actor`).
    code.system.resume(&suspended);
    let pause_us = started.elapsed().as_micros() as u64;

    // The old states are freed by the code that made them, after the actors are running.
    drop(old_states);

    match failure {
        None => report(changes, pause_us, ReloadOutcome::Ok, None),
        Some(reason) => report(changes, pause_us, ReloadOutcome::RolledBack, Some(reason)),
    }
}

/// Steps 3 and 4 for one round of (already suspended) actors, on a migrator thread the
/// swap can abandon. Returns every actor's new state, or why the swap must roll back.
fn migrate(
    code: &Code,
    actors: Vec<Arc<Actor>>,
    new: &Arc<LoadedLibrary>,
    direction: Direction,
    extra: &[u8],
) -> Result<Vec<Migration>, String> {
    if actors.is_empty() {
        return Ok(Vec::new());
    }
    let limits = code.limits;
    let boundary_deadline = Instant::now() + limits.suspend_timeout;
    let (tx, rx) = channel::unbounded();
    let abandoned = Arc::new(AtomicBool::new(false));
    let job = Job {
        actors: actors.clone(),
        new: new.clone(),
        direction,
        extra: extra.to_vec(),
        boundary_deadline,
        lock_timeout: limits.code_change_timeout,
        abandoned: abandoned.clone(),
    };
    let spawned = std::thread::Builder::new()
        .name("swap-migrator".into())
        .stack_size(limits.stack_size)
        .spawn(move || job.run(&tx));
    if let Err(e) = spawned {
        return Err(format!("could not start the migrator thread: {e}"));
    }
    let result = collect(&rx, &actors, boundary_deadline, limits);
    if result.is_err() {
        // From now on the migrator touches no actor; what it still makes it frees itself
        // (each `OwnedState` it fails to send is dropped through its version).
        abandoned.store(true, Ordering::SeqCst);
    }
    result
}

/// The swap's side of steps 3 and 4: every wait bounded.
fn collect(
    rx: &Receiver<Step>,
    actors: &[Arc<Actor>],
    boundary_deadline: Instant,
    limits: super::Limits,
) -> Result<Vec<Migration>, String> {
    let who = |i: usize| {
        let a = &actors[i];
        match &a.name {
            Some(n) => format!("actor {} ({n}, {})", a.id, a.behaviour),
            None => format!("actor {} ({})", a.id, a.behaviour),
        }
    };
    let not_reached = |i: usize| {
        format!(
            "{} did not reach a message boundary within {} ms (a callback still running; \
             [reload] suspend_timeout_ms)",
            who(i),
            limits.suspend_timeout.as_millis()
        )
    };
    match rx.recv_deadline(boundary_deadline) {
        Ok(Step::Boundary(Ok(()))) => {}
        Ok(Step::Boundary(Err(i))) => return Err(not_reached(i)),
        Ok(Step::Migrated(..)) => unreachable!("the boundary is reported first"),
        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
            // The migrator is still waiting on some core: name the first that is held.
            let i = actors
                .iter()
                .position(|a| a.core.try_lock().is_none_or(|c| c.starting))
                .unwrap_or(0);
            return Err(not_reached(i));
        }
    }
    let mut out = Vec::with_capacity(actors.len());
    for (i, actor) in actors.iter().enumerate() {
        match rx.recv_timeout(limits.code_change_timeout) {
            Ok(Step::Migrated(j, Ok(new_state))) => {
                debug_assert_eq!(i, j);
                out.push(Migration {
                    actor: actor.clone(),
                    new_state,
                });
            }
            Ok(Step::Migrated(_, Err(reason))) => return Err(reason),
            Ok(Step::Boundary(_)) => unreachable!("reported once"),
            Err(_) => {
                return Err(format!(
                    "code_change for {} did not return within {} ms \
                     ([reload] code_change_timeout_ms); the migration was abandoned",
                    who(i),
                    limits.code_change_timeout.as_millis()
                ))
            }
        }
    }
    Ok(out)
}

/// What the migrator thread does (steps 3 and 4).
struct Job {
    actors: Vec<Arc<Actor>>,
    new: Arc<LoadedLibrary>,
    direction: Direction,
    /// `Extra` for `downgrade` and `code_change`.
    extra: Vec<u8>,
    boundary_deadline: Instant,
    lock_timeout: Duration,
    abandoned: Arc<AtomicBool>,
}

impl Job {
    fn run(self, tx: &Sender<Step>) {
        // Step 3: holding a core once proves its actor is at a boundary (invariant 3) —
        // unless it is still starting (invariant 7): then its `init` has yet to run, and
        // we wait for that too, within the same deadline.
        for (i, actor) in self.actors.iter().enumerate() {
            loop {
                match actor.core.try_lock_until(self.boundary_deadline) {
                    Some(core) if !core.starting => break,
                    Some(_) if Instant::now() < self.boundary_deadline => {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    _ => {
                        let _ = tx.send(Step::Boundary(Err(i)));
                        return;
                    }
                }
            }
        }
        if tx.send(Step::Boundary(Ok(()))).is_err() {
            return;
        }
        // Step 4.
        for (i, actor) in self.actors.iter().enumerate() {
            if self.abandoned.load(Ordering::SeqCst) {
                return;
            }
            let result = self.migrate_one(actor);
            if self.abandoned.load(Ordering::SeqCst) {
                // Dropping `result` frees a new state through the new code.
                return;
            }
            if tx.send(Step::Migrated(i, result)).is_err() {
                return;
            }
        }
    }

    fn migrate_one(&self, actor: &Actor) -> Result<Option<OwnedState>, String> {
        let Some(core) = actor.core.try_lock_for(self.lock_timeout) else {
            return Err(format!("actor {} was busy during its migration", actor.id));
        };
        if !core.alive {
            return Ok(None);
        }
        if core.starting {
            // Step 3 saw it started; only a bug gets here.
            return Err(format!("actor {} was still starting", actor.id));
        }
        let from = core.version.clone();
        let to = self
            .new
            .behaviour(&from.name)
            .expect("checked in step 1")
            .clone();
        let exported = match self.direction {
            Direction::Up => (from.desc.export_state)(core.state),
            Direction::Down => (from.desc.downgrade)(
                core.state,
                RStr::from_str(&to.version),
                RSlice::from_slice(&self.extra),
            ),
        };
        drop(core);
        if exported.code != OutcomeCode::Ok {
            let what = match self.direction {
                Direction::Up => "exporting the state".to_string(),
                Direction::Down => format!("downgrade to {}", to.version),
            };
            return Err(format!(
                "{what} of actor {} ({} {}) failed: {}",
                actor.id,
                from.name,
                from.version,
                String::from_utf8_lossy(&exported.detail)
            ));
        }
        let mut state = StatePtr::NULL;
        let out = (to.desc.code_change)(
            RStr::from_str(&from.version),
            self.direction == Direction::Down,
            RSlice::from_slice(&exported.detail),
            RSlice::from_slice(&self.extra),
            &mut state,
        );
        drop(exported);
        if out.code == OutcomeCode::Ok {
            return Ok(Some(OwnedState {
                version: to,
                state: Some(state),
            }));
        }
        let what = match out.code {
            OutcomeCode::Panic => "panicked",
            _ => "returned an error",
        };
        Err(format!(
            "code_change of {} {} -> {} for actor {} {what}: {}",
            from.name,
            from.version,
            to.version,
            actor.id,
            String::from_utf8_lossy(&out.detail)
        ))
    }
}
