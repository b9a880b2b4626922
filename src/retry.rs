//! The one retry policy (SPEC §9): transient failures are tried again after a backoff from
//! 1 s, doubling, capped at 10 s, with up to 25 % jitter so a hundred pods do not come back in
//! step; a server's `Retry-After` replaces the backoff (up to the same cap).

use std::time::Duration;

use tracing::warn;

use crate::error::Result;

/// Longest wait between attempts, whatever the server asks.
pub const CAP: Duration = Duration::from_secs(10);

/// Runs `f`, and again up to `retries` times while it fails with a transient error.
pub fn retrying<T>(retries: u32, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut backoff = Duration::from_secs(1);
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                let (wait, why) = match e.retry_after() {
                    Some(asked) => (asked.min(CAP), "as the server asked (Retry-After)"),
                    None => (backoff.mul_f64(1.0 + 0.25 * jitter()), "backoff"),
                };
                warn!(
                    attempt,
                    retries,
                    wait_ms = wait.as_millis() as u64,
                    "{e}; retrying in {:.1}s, {why}",
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
                backoff = (backoff * 2).min(CAP);
            }
            r => return r,
        }
    }
}

/// A number in [0, 1) that differs between processes and calls.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
