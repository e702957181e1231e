//! A circuit breaker: after `threshold` failures in a row the shared server is not asked
//! for `cooldown`; then one request (the probe) asks, and its outcome closes the breaker
//! or opens it again. A probe that never reports (its request was dropped) counts as
//! failed after another cooldown.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum State {
    /// Asking; `failures` in a row so far.
    Closed { failures: u32 },
    /// Not asking until the instant.
    Open { until: Instant },
    /// One probe is asking since the instant.
    Probing { since: Instant },
}

/// What [`Breaker::allow`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Ask.
    Ask,
    /// Ask: this request is the probe after a cooldown.
    Probe,
    /// Do not ask.
    Refused,
}

/// The breaker (see the module documentation).
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// Opens after `threshold` failures in a row, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a request may ask now.
    pub fn allow(&self) -> Permit {
        let Ok(mut state) = self.state.lock() else {
            return Permit::Ask;
        };
        let now = Instant::now();
        match *state {
            State::Closed { .. } => Permit::Ask,
            State::Open { until } if now < until => Permit::Refused,
            State::Probing { since } if now < since + self.cooldown => Permit::Refused,
            State::Open { .. } | State::Probing { .. } => {
                *state = State::Probing { since: now };
                Permit::Probe
            }
        }
    }

    /// A request succeeded: the breaker closes. Returns whether it was open.
    pub fn succeeded(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let was_open = !matches!(*state, State::Closed { .. });
        *state = State::Closed { failures: 0 };
        was_open
    }

    /// A request failed. Returns whether the breaker opened because of it.
    pub fn failed(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        match *state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::Closed { .. } | State::Probing { .. } => {
                *state = open;
                true
            }
            // Failures of requests that asked before it opened.
            State::Open { .. } => false,
        }
    }

    /// Whether the breaker is open (or probing): for the metrics gauge.
    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| !matches!(*s, State::Closed { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_probes_after_the_cooldown() {
        let b = Breaker::new(3, Duration::from_millis(100));
        assert!(!b.failed());
        assert!(!b.failed());
        b.succeeded();
        assert!(!b.failed() && !b.failed(), "a success resets the count");
        assert!(b.failed(), "the third failure in a row opens it");
        assert_eq!(b.allow(), Permit::Refused);
        assert!(b.is_open());
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(b.allow(), Permit::Probe);
        assert_eq!(b.allow(), Permit::Refused, "one probe at a time");
        assert!(b.failed(), "a failed probe opens it again");
        assert_eq!(b.allow(), Permit::Refused);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(b.allow(), Permit::Probe);
        assert!(b.succeeded(), "a good probe closes it");
        assert_eq!(b.allow(), Permit::Ask);
        assert!(!b.is_open());
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cooldown() {
        let b = Breaker::new(1, Duration::from_millis(50));
        b.failed();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.allow(), Permit::Probe);
        // The probe's request is dropped and never reports.
        assert_eq!(b.allow(), Permit::Refused);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.allow(), Permit::Probe);
    }
}
