//! Progress of a fetch and a checkout, kept apart from logs: a live bar when stderr is a
//! terminal, a log line every few seconds when it is not (an init container's log).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

pub struct Progress {
    bar: Option<ProgressBar>,
    interval: Duration,
    last: Option<Instant>,
    phase: &'static str,
    enabled: bool,
}

impl Progress {
    /// `quiet` silences progress entirely; `interval`: between two log lines off a terminal;
    /// `bar`: a live bar is allowed on a terminal (not with `--log-format json`, whose every
    /// line must be one JSON object).
    pub fn new(quiet: bool, interval: Duration, bar: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        Progress {
            bar: None,
            interval,
            last: None,
            phase: "",
            enabled: !quiet,
        }
        .with_tty(tty && bar && !quiet)
    }

    fn with_tty(mut self, tty: bool) -> Self {
        if tty {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            self.bar = Some(bar);
        }
        self
    }

    fn due(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }

    fn enter(&mut self, phase: &'static str, total: u64) {
        if self.phase != phase {
            self.phase = phase;
            self.last = None;
            if let Some(bar) = &self.bar {
                bar.set_prefix(phase);
                bar.set_length(total);
                bar.set_position(0);
            }
        }
    }

    pub fn transfer(&mut self, p: &git2::Progress<'_>) {
        if !self.enabled {
            return;
        }
        let receiving = p.received_objects() < p.total_objects();
        let (phase, done, total) = if receiving || p.total_deltas() == 0 {
            ("receiving", p.received_objects(), p.total_objects())
        } else {
            ("resolving", p.indexed_deltas(), p.total_deltas())
        };
        self.enter(phase, total as u64);
        let bytes = p.received_bytes() as u64;
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(human_bytes(bytes));
        } else if self.due() {
            match phase {
                "receiving" => info!(
                    phase = "fetch",
                    objects = done,
                    total_objects = total,
                    bytes,
                    "receiving objects: {done}/{total}, {}",
                    human_bytes(bytes)
                ),
                _ => info!(
                    phase = "fetch",
                    deltas = done,
                    total_deltas = total,
                    "resolving deltas: {done}/{total}"
                ),
            }
        }
    }

    /// The last word on a fetch: what arrived (the periodic lines may have stopped short of it).
    pub fn fetched(&mut self, p: &git2::Progress<'_>) {
        if !self.enabled || self.bar.is_some() || p.total_objects() == 0 {
            return;
        }
        let bytes = p.received_bytes() as u64;
        info!(
            phase = "fetch",
            objects = p.received_objects(),
            total_objects = p.total_objects(),
            bytes,
            "received objects: {}/{}, {}",
            p.received_objects(),
            p.total_objects(),
            human_bytes(bytes)
        );
    }

    pub fn checkout(&mut self, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        self.enter("checkout", total as u64);
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message("");
        } else if self.due() || (done == total && total > 0) {
            info!(
                phase = "checkout",
                files = done,
                total_files = total,
                "checking out files: {done}/{total}"
            );
        }
    }

    /// LFS objects: bytes downloaded of the bytes to download.
    pub fn lfs(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        self.enter("lfs", total);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(human_bytes(done));
        } else if self.due() || (done == total && total > 0) {
            info!(
                phase = "lfs",
                bytes = done,
                total_bytes = total,
                "downloading LFS objects: {} of {}",
                human_bytes(done),
                human_bytes(total)
            );
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
