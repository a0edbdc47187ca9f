//! How every loop here tells a slow peer from a broken one: both processes
//! spin, and a loop that moves nothing for [`STALL_LIMIT`], or whose peer
//! exited with a failure, ends with an error instead of hanging.

use std::time::{Duration, Instant};

/// How long a loop may make no progress before it reports the peer stuck.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// Idle turns between two looks at the clock and the peer's health.
const IDLE_CHECK: u32 = 1024;

/// Counts one loop's idle turns.
#[derive(Debug)]
pub(crate) struct Watchdog {
    /// Turns in a row that moved nothing.
    idle: u32,
    /// When the current run of idle turns began.
    idle_since: Instant,
}

impl Watchdog {
    pub(crate) fn new() -> Self {
        Self {
            idle: 0,
            idle_since: Instant::now(),
        }
    }

    /// Notes one turn of the loop, which made `progress` or not. Every
    /// [`IDLE_CHECK`] idle turns in a row it asks `peer_failed` (`Some(why)`
    /// ends the loop with that error) and the clock (idle past
    /// [`STALL_LIMIT`] ends it with `status()`, what the loop has done), and
    /// yields the CPU.
    pub(crate) fn turn(
        &mut self,
        progress: bool,
        peer_failed: &mut impl FnMut() -> Option<String>,
        status: impl FnOnce() -> String,
    ) -> Result<(), String> {
        if progress {
            self.idle = 0;
            return Ok(());
        }
        if self.idle == 0 {
            self.idle_since = Instant::now();
        }
        self.idle += 1;
        if self.idle.is_multiple_of(IDLE_CHECK) {
            if let Some(why) = peer_failed() {
                return Err(why);
            }
            if self.idle_since.elapsed() > STALL_LIMIT {
                return Err(format!("no progress for {STALL_LIMIT:?} ({})", status()));
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}
