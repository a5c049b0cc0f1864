//! Simulated clock: wall-clock time sped up by a scale factor, so that provider timings measured
//! in minutes or days (activation, consumption, expiry) pass within the seconds a test can wait.

use std::time::{Duration as StdDuration, Instant};

use time::OffsetDateTime;

/// Smallest and largest accepted scale; outside this range time either stands still or the
/// arithmetic overflows within a test run.
const MIN_SCALE: f64 = 0.001;
const MAX_SCALE: f64 = 1_000_000.0;

/// A clock that starts at the real time and then runs `scale` times faster than real time.
///
/// Rebasing on every change keeps simulated time continuous: it never jumps back when the
/// scale changes, only forward when a test asks for it with [`SimClock::advance`].
#[derive(Debug, Clone)]
pub struct SimClock {
    anchor_real: Instant,
    anchor_sim: OffsetDateTime,
    scale: f64,
}

impl SimClock {
    /// A clock reading the current UTC time, running `scale` times faster than real time.
    pub fn new(scale: f64) -> Self {
        Self {
            anchor_real: Instant::now(),
            anchor_sim: OffsetDateTime::now_utc(),
            scale: clamp_scale(scale),
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> OffsetDateTime {
        let elapsed = self.anchor_real.elapsed().mul_f64(self.scale);
        self.anchor_sim + elapsed
    }

    /// How many simulated seconds pass per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Changes the speed from now on, keeping the current simulated time.
    pub fn set_scale(&mut self, scale: f64) {
        self.rebase();
        self.scale = clamp_scale(scale);
    }

    /// Moves simulated time forward by `seconds` at once (negative values are ignored).
    pub fn advance(&mut self, seconds: f64) {
        self.rebase();
        if seconds.is_finite() && seconds > 0.0 {
            self.anchor_sim += StdDuration::from_secs_f64(seconds);
        }
    }

    fn rebase(&mut self) {
        self.anchor_sim = self.now();
        self.anchor_real = Instant::now();
    }
}

fn clamp_scale(scale: f64) -> f64 {
    if scale.is_finite() {
        scale.clamp(MIN_SCALE, MAX_SCALE)
    } else {
        1.0
    }
}

/// Adds a number of simulated seconds (possibly fractional) to a timestamp.
pub fn plus_seconds(at: OffsetDateTime, seconds: f64) -> OffsetDateTime {
    if seconds.is_finite() && seconds > 0.0 {
        at + StdDuration::from_secs_f64(seconds)
    } else {
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_time_forward_by_the_requested_amount() {
        let mut clock = SimClock::new(1.0);
        let before = clock.now();

        clock.advance(3600.0);

        let gained = clock.now() - before;
        assert!(gained.whole_seconds() >= 3600);
        assert!(gained.whole_seconds() < 3660);
    }

    #[test]
    fn scale_is_clamped_to_a_usable_range() {
        let mut clock = SimClock::new(0.0);
        assert!(clock.scale() >= MIN_SCALE);

        clock.set_scale(f64::NAN);

        assert_eq!(clock.scale(), 1.0);
    }
}
