//! Work spread over threads: items taken in turn from a shared counter, each thread with state
//! of its own (a libgit2 handle is not shared between threads), the first failure stopping the
//! others, and the caller's thread free to report progress while they run. The fresh checkout
//! writes files this way, the LFS stage downloads objects.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// Runs `each(&mut state, i)` for every `i` in `0..n` on up to `workers` threads, each with the
/// state `init` makes for it; calls `tick` every `every` while they run. Returns what each item
/// gave, by index (in no particular order), or the first failure. `what` names a worker in the
/// error a panic becomes.
pub fn run<S, T: Send>(
    n: usize,
    workers: usize,
    init: impl Fn() -> Result<S> + Sync,
    each: impl Fn(&mut S, usize) -> Result<T> + Sync,
    mut tick: impl FnMut(),
    every: Duration,
    what: &str,
) -> Result<Vec<(usize, T)>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Result<Vec<(usize, T)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(n))
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init()?;
                    let mut out = vec![];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n || failed.load(Ordering::Relaxed) {
                            return Ok(out);
                        }
                        match each(&mut state, i) {
                            Ok(t) => out.push((i, t)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            tick();
            std::thread::sleep(every);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal(format!("{what} panicked"))))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(n);
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}
