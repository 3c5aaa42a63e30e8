//! Where a process manager's "now" comes from: the system clock in production, a clock the
//! test moves by hand in tests, so a 30-day deadline fires in a millisecond.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// A source of the current time.
///
/// # For implementors
///
/// `now` must not go backwards by much: a deadline fires once `now` has passed its due time,
/// and a clock that jumps back only delays deadlines, never fires one twice.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move: clones share one time.
///
/// ```
/// use es_core::process::{Clock, ManualClock};
///
/// let clock = ManualClock::starting_now();
/// let before = clock.now();
/// clock.advance(std::time::Duration::from_secs(30 * 24 * 3600));
/// assert_eq!((clock.now() - before).num_days(), 30);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock showing `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(at)),
        }
    }

    /// A clock showing the system's time now (then standing still).
    pub fn starting_now() -> Self {
        Self::at(Utc::now())
    }

    /// Moves the clock forward by `by` (saturating at the end of `chrono`'s range).
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.lock();
        let step = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        *now = now
            .checked_add_signed(step)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // The guarded value is one `Copy` timestamp, whole after any panic.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}
