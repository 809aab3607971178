//! The watchdog, like OTP's `long_schedule` system monitor: a thread that advances the
//! coarse clock the scheduler publishes with, looks at what every worker runs, logs a
//! `long_callback` once per callback past `warn_after`, and past `kill_after` kills the
//! actor as `exit(Pid, kill)` does to a busy actor (invariant 5 of `actor`): dead to the
//! world at once, its worker replaced, the callback's result discarded when it returns.
//!
//! It also backs what an operator sees of a busy actor (`running handle_info 12.3s`),
//! and a kill of an actor that is inside a callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use plugin_api::Reason;

use super::scheduler::{coarse_ms, tick_coarse_clock};
use super::{Actor, System};
use crate::observe::{Event, HostEvent};
use crate::util::ids::ActorId;
use crate::util::terms;

/// How often the watchdog looks (and the coarse clock's resolution).
const TICK: Duration = Duration::from_millis(10);

/// The watchdog's settings (`[watchdog]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// Publish what each worker runs, and watch it. Off: no `long_callback`, no kill by
    /// the watchdog, and a busy actor shows as `running` without its callback.
    pub enabled: bool,
    /// A callback running this long is logged once as `long_callback`.
    pub warn_after: Duration,
    /// A callback running this long gets its actor killed (`None`: never).
    pub kill_after: Option<Duration>,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            enabled: true,
            warn_after: Duration::from_millis(1000),
            kill_after: Some(Duration::from_secs(60)),
        }
    }
}

/// The callback a worker publishes, by its code.
pub(crate) fn callback_name(code: u8) -> &'static str {
    match code {
        0 => "handle_call",
        1 => "handle_cast",
        2 => "handle_info",
        3 => "terminate",
        _ => "a callback",
    }
}

impl System {
    /// Whether workers publish what they run (the watchdog is on).
    #[inline]
    pub(crate) fn watchdog_on(&self) -> bool {
        self.watchdog_on.load(Ordering::Relaxed)
    }

    /// Turns the watchdog (and what workers publish) on or off while running.
    pub(crate) fn set_watchdog(&self, on: bool) {
        self.watchdog_on.store(on, Ordering::Relaxed);
    }

    /// The callback `actor` is inside, and for how long (`None`: not in one, or the
    /// watchdog is off).
    pub(crate) fn running_for(&self, actor: ActorId) -> Option<(&'static str, Duration)> {
        let now = coarse_ms();
        self.run_queue()
            .running()
            .into_iter()
            .find(|(a, _, _)| *a == actor.0)
            .map(|(_, cb, since)| {
                (
                    callback_name(cb),
                    Duration::from_millis(now.saturating_sub(since)),
                )
            })
    }

    /// Kills an actor that is inside a callback (invariant 5 of `actor`): dead to the
    /// world at once — unregistered (its name free), the calls in its mailbox and the
    /// callers waiting on it failed, links and monitors (a supervisor among them) told —
    /// and the worker running it replaced. False if someone else already did.
    pub(crate) fn kill_running(&self, actor: &Arc<Actor>, reason: &[u8]) -> bool {
        if !actor.abandon() {
            return false;
        }
        self.registry.remove(actor.id);
        self.cancel_timers_of(actor);
        self.observer.actor_stopped(actor.handled());
        let text = plugin_api::etf::display(reason);
        let replaced = self.run_queue().retire_worker_of(actor.id.0);
        let version = actor.running_version();
        if replaced {
            self.observer.emit(Event::WorkerReplaced {
                actor: actor.id,
                behaviour: &version.name,
            });
        }
        // As `stop_actor`: the event before anyone reacts to it.
        self.observer.publish(HostEvent::Stopped {
            actor: actor.id,
            name: actor.name.clone(),
            behaviour: version.name.to_string(),
            version: version.version.to_string(),
            reason: text.clone(),
        });
        self.fail_mailbox(actor, &text);
        self.fail_waiters(actor.id, &text);
        self.notify_links_and_monitors(actor, reason, &text);
        true
    }

    /// One look at every worker (see the module docs); `warned` remembers which
    /// callbacks were logged already, by (actor, since).
    fn watch(&self, warned: &mut Vec<(u64, u64)>) {
        let now = coarse_ms();
        let running = self.run_queue().running();
        warned.retain(|w| running.iter().any(|(a, _, s)| (*a, *s) == *w));
        for (id, cb, since) in running {
            let elapsed = Duration::from_millis(now.saturating_sub(since));
            if elapsed < self.watchdog.warn_after {
                continue;
            }
            let Some(actor) = self.registry.get(ActorId(id)) else {
                continue;
            };
            let version = actor.running_version();
            if !warned.contains(&(id, since)) {
                warned.push((id, since));
                self.observer.emit(Event::LongCallback {
                    actor: actor.id,
                    name: actor.name.as_deref(),
                    behaviour: &version.name,
                    version: &version.version,
                    callback: callback_name(cb),
                    elapsed_ms: elapsed.as_millis() as u64,
                });
            }
            if self.watchdog.kill_after.is_some_and(|k| elapsed >= k) {
                let why = format!(
                    "killed by the watchdog: {} ran {} ms, past [watchdog] kill_after_ms",
                    callback_name(cb),
                    elapsed.as_millis()
                );
                self.kill_running(&actor, &terms::reason(&Reason::error(why)));
            }
        }
    }
}

/// The watchdog thread; dropping the handle stops it.
pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the thread for `system` (it ends when the system does, or on drop).
    pub(crate) fn start(system: Weak<System>) -> std::io::Result<Watchdog> {
        tick_coarse_clock();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut warned = Vec::new();
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    tick_coarse_clock();
                    let Some(system) = system.upgrade() else {
                        return;
                    };
                    if system.watchdog_on() {
                        system.watch(&mut warned);
                    }
                }
            })?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
