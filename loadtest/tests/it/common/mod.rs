//! Helpers shared by the load test's integration tests.

use std::time::{Duration, Instant};

/// How often [`poll_until`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Waits until `condition` holds, looking every few milliseconds, for at most `limit`; panics
/// naming `awaited` (what the test was waiting for) when it still does not hold by then. Tests
/// wait for a state this way instead of sleeping for a guessed time: as short as the state
/// allows, and a clear failure when it never comes.
pub(crate) fn poll_until(limit: Duration, awaited: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for: {awaited}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}
