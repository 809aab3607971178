//! The supervisor's decisions, as pure functions over plain data: no threads, no actors,
//! no clock of their own (the caller passes `now`). The supervision thread carries them
//! out; the tests below check them exhaustively enough to trust the thread's plumbing.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::{Restart, Strategy};

/// What a supervisor does after child `i` of `n` exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Leave it stopped (a `temporary` child, or a `transient` one that exited normally).
    LeaveStopped,
    /// Leave it stopped and drop its record (a dynamic child of `simple_one_for_one`).
    Forget,
    /// Past the restart intensity: stop every child and exit with `shutdown`.
    GiveUp,
    /// Stop the other children of the range (last first), then start the whole range in
    /// order.
    Restart(Range<usize>),
}

/// The restart rule of one exit: OTP's restart types, intensity and strategies.
///
/// `history` holds the times of this supervisor's recent restarts; a restart is recorded
/// in it (and entries older than `period` dropped) before intensity is checked, so the
/// `intensity + 1`-th restart within `period` gives up — OTP's rule.
#[allow(clippy::too_many_arguments)] // each is one fact of the decision
pub(super) fn after_exit(
    strategy: Strategy,
    restart: Restart,
    abnormal: bool,
    i: usize,
    n: usize,
    history: &mut VecDeque<Instant>,
    intensity: u32,
    period: Duration,
    now: Instant,
) -> Decision {
    let restart = match restart {
        Restart::Permanent => true,
        Restart::Transient => abnormal,
        Restart::Temporary => false,
    };
    if !restart {
        return if strategy == Strategy::SimpleOneForOne {
            Decision::Forget
        } else {
            Decision::LeaveStopped
        };
    }
    history.push_back(now);
    while history
        .front()
        .is_some_and(|t| now.duration_since(*t) > period)
    {
        history.pop_front();
    }
    if history.len() > intensity as usize {
        return Decision::GiveUp;
    }
    Decision::Restart(match strategy {
        Strategy::OneForOne | Strategy::SimpleOneForOne => i..i + 1,
        Strategy::OneForAll => 0..n,
        Strategy::RestForOne => i..n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_secs(5);

    fn once(strategy: Strategy, restart: Restart, abnormal: bool, i: usize, n: usize) -> Decision {
        after_exit(
            strategy,
            restart,
            abnormal,
            i,
            n,
            &mut VecDeque::new(),
            1,
            P,
            Instant::now(),
        )
    }

    #[test]
    fn each_strategy_restarts_its_range() {
        use Strategy::*;
        assert_eq!(
            once(OneForOne, Restart::Permanent, true, 1, 3),
            Decision::Restart(1..2)
        );
        assert_eq!(
            once(OneForAll, Restart::Permanent, true, 1, 3),
            Decision::Restart(0..3)
        );
        assert_eq!(
            once(RestForOne, Restart::Permanent, true, 1, 3),
            Decision::Restart(1..3)
        );
        assert_eq!(
            once(RestForOne, Restart::Permanent, true, 2, 3),
            Decision::Restart(2..3)
        );
        assert_eq!(
            once(SimpleOneForOne, Restart::Permanent, true, 4, 9),
            Decision::Restart(4..5)
        );
    }

    #[test]
    fn restart_types_follow_otp() {
        use Strategy::*;
        for abnormal in [false, true] {
            assert_eq!(
                once(OneForAll, Restart::Permanent, abnormal, 0, 2),
                Decision::Restart(0..2),
                "permanent always restarts"
            );
            assert_eq!(
                once(OneForAll, Restart::Temporary, abnormal, 0, 2),
                Decision::LeaveStopped,
                "temporary never restarts"
            );
            assert_eq!(
                once(SimpleOneForOne, Restart::Temporary, abnormal, 0, 2),
                Decision::Forget,
                "a dynamic child that stays down is forgotten"
            );
        }
        assert_eq!(
            once(OneForOne, Restart::Transient, false, 0, 1),
            Decision::LeaveStopped
        );
        assert_eq!(
            once(OneForOne, Restart::Transient, true, 0, 1),
            Decision::Restart(0..1)
        );
    }

    #[test]
    fn intensity_counts_restarts_within_the_period_only() {
        let t0 = Instant::now();
        let mut h = VecDeque::new();
        let step = |h: &mut VecDeque<Instant>, at: Duration| {
            after_exit(
                Strategy::OneForOne,
                Restart::Permanent,
                true,
                0,
                1,
                h,
                2,
                P,
                t0 + at,
            )
        };
        assert_eq!(step(&mut h, Duration::ZERO), Decision::Restart(0..1));
        assert_eq!(
            step(&mut h, Duration::from_secs(1)),
            Decision::Restart(0..1)
        );
        // The third restart within 5 s is one too many for intensity 2.
        assert_eq!(step(&mut h, Duration::from_secs(2)), Decision::GiveUp);
        // Long after, the window has emptied.
        let mut h2 = VecDeque::from([t0, t0 + Duration::from_secs(1)]);
        assert_eq!(
            step(&mut h2, Duration::from_secs(7)),
            Decision::Restart(0..1)
        );
        assert_eq!(h2.len(), 1, "old restarts leave the window");
    }

    #[test]
    fn a_child_that_stays_down_does_not_count_against_intensity() {
        let mut h = VecDeque::new();
        for _ in 0..10 {
            let d = after_exit(
                Strategy::OneForOne,
                Restart::Temporary,
                true,
                0,
                1,
                &mut h,
                0,
                P,
                Instant::now(),
            );
            assert_eq!(d, Decision::LeaveStopped);
        }
        assert!(h.is_empty());
    }
}
