//! An exhaustive interleaving test of the claim / release / suspend protocol
//! (invariants 1, 3 and 4 of this module).
//!
//! The protocol is modelled step by step — one atomic operation per step, in the order
//! `Actor::try_claim`, `Actor::release`, `Actor::suspend`/`resume`, the run loop and the
//! swap perform them — and every interleaving of two senders, two scheduler workers and
//! one swap is explored. Each state is checked:
//! - invariant 1: at most one claim is live (the actor is queued or being run once);
//! - invariant 3: once the swap holds the core, no message is handled until it resumes;
//! - invariant 4: when everyone is done, no message is left in the mailbox unclaimed.
//!
//! The mutations at the end remove one of the protocol's steps and check that the
//! explorer then finds the lost message, so the test can fail.

use std::collections::HashSet;

/// Which step of the protocol to leave out, to show the checker catches it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mutation {
    None,
    /// `release` does not look at the mailbox after clearing `queued`.
    NoRecheckOnRelease,
    /// `resume` does not queue an actor that got mail while suspended.
    NoRequeueOnResume,
    /// The run loop does not check `suspended` before each message.
    NoSuspendCheck,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    // Shared.
    queued: bool,
    suspended: bool,
    mailbox: u8,
    run_queue: u8,
    core_held: bool,
    // Program counters.
    senders: [u8; 2],
    runners: [u8; 2],
    swap: u8,
    /// The swap has taken the core and not yet cleared `suspended`.
    swap_holds: bool,
}

const DONE: u8 = 99;

impl State {
    fn start() -> State {
        State {
            queued: false,
            suspended: false,
            mailbox: 0,
            run_queue: 0,
            core_held: false,
            senders: [0, 0],
            runners: [0, 0],
            swap: 0,
            swap_holds: false,
        }
    }

    fn all_done(&self) -> bool {
        self.senders.iter().all(|&p| p == DONE)
            && self.swap == DONE
            && self.runners.iter().all(|&p| p == 0)
            && self.run_queue == 0
    }

    /// Live claims: queued entries plus runners between taking the actor and releasing.
    fn claims(&self) -> usize {
        self.run_queue as usize
            + self
                .runners
                .iter()
                .filter(|&&p| (1..=4).contains(&p))
                .count()
    }
}

/// Every state reachable in one step from `s`.
fn successors(s: &State, m: Mutation) -> Result<Vec<State>, String> {
    let mut out = Vec::new();
    // Senders: `deliver` = push, then `try_claim` (load, then swap), then queue.
    for i in 0..2 {
        let mut n = s.clone();
        match s.senders[i] {
            0 => {
                n.mailbox += 1;
                n.senders[i] = 1;
            }
            1 => n.senders[i] = if s.queued { DONE } else { 2 },
            2 => {
                let won = !s.queued;
                n.queued = true;
                n.senders[i] = if won { 3 } else { DONE };
            }
            3 => {
                n.run_queue += 1;
                n.senders[i] = DONE;
            }
            _ => continue,
        }
        out.push(n);
    }
    // Workers: take from the queue, lock the core, handle messages while not suspended,
    // unlock, then `release`: clear `queued`, check `suspended`, check the mailbox,
    // `try_claim` (load, swap), requeue.
    for i in 0..2 {
        let mut n = s.clone();
        match s.runners[i] {
            0 if s.run_queue > 0 => {
                n.run_queue -= 1;
                n.runners[i] = 1;
            }
            1 if !s.core_held => {
                n.core_held = true;
                n.runners[i] = 2;
            }
            2 => {
                let stop = if m == Mutation::NoSuspendCheck {
                    false
                } else {
                    s.suspended
                };
                if !stop && s.mailbox > 0 {
                    // Invariant 3: the swap holds the actor; nothing may be handled.
                    if s.swap_holds {
                        return Err("a message was handled during a swap".into());
                    }
                    n.mailbox -= 1;
                } else {
                    n.runners[i] = 3;
                }
            }
            3 => {
                n.core_held = false;
                n.runners[i] = 4;
            }
            4 => {
                n.queued = false;
                n.runners[i] = 5;
            }
            5 => n.runners[i] = if s.suspended { 0 } else { 6 },
            6 => {
                n.runners[i] = if s.mailbox == 0 || m == Mutation::NoRecheckOnRelease {
                    0
                } else {
                    7
                }
            }
            7 => n.runners[i] = if s.queued { 0 } else { 8 },
            8 => {
                let won = !s.queued;
                n.queued = true;
                n.runners[i] = if won { 9 } else { 0 };
            }
            9 => {
                n.run_queue += 1;
                n.runners[i] = 0;
            }
            _ => continue,
        }
        out.push(n);
    }
    // The swap: suspend, take the core (waits for a running batch), migrate, let go,
    // resume: clear `suspended`, then queue the actor if it has mail and the claim is won.
    let mut n = s.clone();
    match s.swap {
        0 => {
            n.suspended = true;
            n.swap = 1;
        }
        1 if !s.core_held => {
            n.core_held = true;
            n.swap_holds = true;
            n.swap = 2;
        }
        2 => {
            n.core_held = false;
            n.swap = 3;
        }
        3 => {
            n.suspended = false;
            n.swap_holds = false;
            n.swap = 4;
        }
        4 => {
            n.swap = if s.mailbox == 0 || m == Mutation::NoRequeueOnResume {
                DONE
            } else {
                5
            }
        }
        5 => n.swap = if s.queued { DONE } else { 6 },
        6 => {
            let won = !s.queued;
            n.queued = true;
            n.swap = if won { 7 } else { DONE };
        }
        7 => {
            n.run_queue += 1;
            n.swap = DONE;
        }
        _ => return Ok(out),
    }
    out.push(n);
    Ok(out)
}

/// Explores every interleaving; returns the number of states, or the first violation.
fn explore(m: Mutation) -> Result<usize, String> {
    let mut seen = HashSet::new();
    let mut stack = vec![State::start()];
    while let Some(s) = stack.pop() {
        if !seen.insert(s.clone()) {
            continue;
        }
        if s.claims() > 1 {
            return Err("two live claims: the actor could run on two threads".into());
        }
        let next = successors(&s, m)?;
        if next.is_empty() && !s.all_done() {
            return Err("deadlock: nobody can move".into());
        }
        if s.all_done() && s.mailbox > 0 {
            return Err(format!(
                "{} message(s) stranded: everyone is idle and nobody will run the actor",
                s.mailbox
            ));
        }
        stack.extend(next);
    }
    Ok(seen.len())
}

#[test]
fn every_interleaving_keeps_the_claim_protocol() {
    let states = explore(Mutation::None).unwrap();
    assert!(states > 1000, "explored {states} states");
}

#[test]
fn the_checker_finds_a_missing_recheck_on_release() {
    assert!(explore(Mutation::NoRecheckOnRelease)
        .unwrap_err()
        .contains("stranded"));
}

#[test]
fn the_checker_finds_a_missing_requeue_on_resume() {
    assert!(explore(Mutation::NoRequeueOnResume)
        .unwrap_err()
        .contains("stranded"));
}

#[test]
fn the_checker_finds_a_missing_suspend_check() {
    assert!(explore(Mutation::NoSuspendCheck)
        .unwrap_err()
        .contains("during a swap"));
}
