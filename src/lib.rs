//! gitinit: put a git repository at an exact revision into a directory.
//!
//! Data flows one way: [`cli`] parses, [`config`] resolves and validates, [`git::fetch`] decides
//! the [`revision::Target`] against the remote and fetches it, [`git::checkout`] writes the tree,
//! [`report`] says what happened. [`main`] is the only place where an error becomes an exit code.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod dest;
pub mod error;
pub mod flags;
pub mod git;
pub mod logging;
pub mod progress;
pub mod proxy;
pub mod redact;
pub mod remote_url;
pub mod report;
pub mod revision;
pub mod ssh;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::FromArgMatches;
use tracing::{info, warn};

use crate::cli::{Cli, Command, LogFormat};
use crate::config::{Config, ReportTarget};
use crate::dest::State;
use crate::error::{Error, ExitCode, Result};
use crate::git::Session;
use crate::report::Report;
use crate::revision::Target;

/// `gitinit --version`: our version, libgit2's and libcurl's, and the transports compiled in.
pub fn version() -> String {
    let v = git2::Version::get();
    let (maj, min, rev) = v.libgit2_version();
    let mut transports = vec!["http", "https"];
    transports.extend(["git", "file"]);
    if v.ssh() {
        transports.push("ssh");
    }
    format!(
        "{} (libgit2 {maj}.{min}.{rev}, libcurl {}; transports: {})",
        env!("CARGO_PKG_VERSION"),
        git::http::curl_version(),
        transports.join(", ")
    )
}

pub fn main() -> std::process::ExitCode {
    install_panic_hook();
    let matches = cli::command(version()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let conn = cli.command.conn();
    let format = conn.log_format;
    logging::init(format, conn.verbose, conn.quiet);
    handle_signals(format);
    let code = match run(&cli) {
        Ok(()) => ExitCode::Success,
        Err(e) => {
            fail(&e, format);
            e.exit_code()
        }
    };
    std::process::ExitCode::from(code as u8)
}

/// Prints the one failure line (SPEC §3), and writes it to the termination log.
fn fail(e: &Error, format: LogFormat) {
    let line = format!("error: {e}");
    match format {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => tracing::error!(exit_code = e.exit_code() as u8, "{e}"),
    }
    write_termination_log(&line);
}

/// Kubernetes shows this file in `kubectl describe pod`. The default path is written only when
/// it exists (the kubelet mounts it); `GITINIT_TERMINATION_LOG` points elsewhere (tests, other
/// platforms).
fn write_termination_log(line: &str) {
    let (path, create) = match std::env::var_os("GITINIT_TERMINATION_LOG") {
        Some(p) if !p.is_empty() => (p.into(), true),
        _ => (std::path::PathBuf::from("/dev/termination-log"), false),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(create)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// A panic is a bug: exit 1 with a short line. The payload is not printed, since it could
/// quote data that holds a secret.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let line = format!("error: internal error: gitinit crashed{at}. This is a bug: please report it with the log above");
        eprintln!("{line}");
        write_termination_log(&line);
        std::process::exit(ExitCode::Internal as i32);
    }));
}

/// SIGTERM (pod deletion) and SIGINT stop the run at once with 143/130. Whatever was half
/// written stays marked incomplete in `.git`, so the next run recovers it; the destination
/// lock goes with the process.
fn handle_signals(format: LogFormat) {
    // A file-size limit (`ulimit -f`) must fail a write with EFBIG, reported as a destination
    // problem, instead of killing the process.
    // SAFETY: setting a signal's disposition to ignore is async-signal-safe and done once.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
            let line =
                format!("error: interrupted by {name}; a rerun resumes from what was fetched");
            match format {
                LogFormat::Text => eprintln!("{line}"),
                LogFormat::Json => tracing::error!(signal = name, "interrupted by {name}"),
            }
            write_termination_log(&line);
            dest::clean_on_stop();
            std::process::exit(128 + sig);
        }
    });
}

fn run(cli: &Cli) -> Result<()> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Internal(format!("no current directory: {e}")))?;
    let cfg = config::resolve(&cli.command, &cwd, &|k| std::env::var(k).ok())?;
    for w in &cfg.warnings {
        warn!("{w}");
    }
    setup_libgit2(&cfg)?;
    if let Some(t) = cfg.timeout {
        start_watchdog(t, cli.command.conn().log_format);
    }
    let conn = cli.command.conn();
    let quiet = conn.quiet || cfg.flags.quiet;
    let session = Session::new(&cfg, quiet);
    let started = Instant::now();
    let report = match &cli.command {
        Command::Clone(_) | Command::Initializer(_) => clone(&cfg, &session, started)?,
        Command::Check(_) => {
            let r = check(&cfg, &session, started)?;
            let mut out = std::io::stdout().lock();
            let _ = match &r.reference {
                Some(name) => writeln!(out, "{}\t{name}", r.commit),
                None => writeln!(out, "{}", r.commit),
            };
            r
        }
    };
    deliver_report(&report, &cfg, conn.verbose > 0 || cfg.flags.verbose)
}

fn deliver_report(report: &Report, cfg: &Config, verbose: bool) -> Result<()> {
    let json = report.to_json();
    match &cfg.report {
        Some(ReportTarget::Stdout) => println!("{json}"),
        Some(ReportTarget::File(p)) => std::fs::write(p, format!("{json}\n")).map_err(|e| {
            Error::invalid(format!("cannot write the report to {}: {e}", p.display()))
        })?,
        None => {}
    }
    if verbose {
        eprintln!("{json}");
    }
    Ok(())
}

/// Process-wide libgit2 settings, before any repository is touched (SPEC §8): no system or
/// global git config (a planted `url.*.insteadOf` or `core.sshCommand` must have no effect), no
/// ownership check (volumes owned by another uid), and our HTTP(S) transport.
fn setup_libgit2(cfg: &Config) -> Result<()> {
    let err = |e: git2::Error| Error::Internal(format!("setting up libgit2: {}", e.message()));
    // SAFETY: called once, before any other libgit2 call of this process and from one thread.
    unsafe {
        for level in [
            git2::ConfigLevel::System,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::Global,
            git2::ConfigLevel::ProgramData,
        ] {
            git2::opts::set_search_path(level, "").map_err(err)?;
        }
        git2::opts::set_verify_owner_validation(false).map_err(err)?;
        // libgit2 hashes every object again each time it reads one (a quarter of a large
        // checkout, measured). The indexer already computed every id of the pack it received
        // and checked the pack's checksum; git does not re-hash on read either.
        git2::opts::strict_hash_verification(false);
        // A server that accepts and then says nothing must not hang the pod: cut the stalled
        // connection so the retry logic sees a transient failure.
        let io_ms = i32::try_from(cfg.io_timeout.as_millis()).unwrap_or(i32::MAX);
        git2::opts::set_server_connect_timeout_in_milliseconds(io_ms.min(30_000)).map_err(err)?;
        git2::opts::set_server_timeout_in_milliseconds(io_ms).map_err(err)?;
        // libgit2 maps packs in 1 GiB windows up to 8 GiB, and every page it touches while
        // indexing and checking out stays resident: a depth-1 clone of a 200 MB tree peaked at
        // 153 MB. Small windows under a small budget read the same pack at the same speed
        // (measured) with 31 MB.
        git2::opts::set_mwindow_size(1 << 20).map_err(err)?;
        git2::opts::set_mwindow_mapped_limit(8 << 20).map_err(err)?;
    }
    git::http::register().map_err(err)?;
    Ok(())
}

fn start_watchdog(limit: Duration, format: LogFormat) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let e = Error::Network {
            url: "the remote".into(),
            detail: format!(
                "the run did not finish within --timeout {}",
                humantime::format_duration(limit)
            ),
        };
        fail(&e, format);
        dest::clean_on_stop();
        std::process::exit(e.exit_code() as i32);
    });
}

/// Longest wait between attempts, whatever the server asks (SPEC §9).
const RETRY_CAP: Duration = Duration::from_secs(10);

/// Runs `f` again after transient failures: backoff from 1 s, doubling, capped at 10 s, with up
/// to 25 % jitter so a hundred pods do not come back in step; a server's `Retry-After` replaces
/// the backoff (up to the same cap).
fn with_retry<T>(cfg: &Config, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut backoff = Duration::from_secs(1);
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if e.is_transient() && attempt < cfg.retries => {
                attempt += 1;
                let (wait, why) = match e.retry_after() {
                    Some(asked) => (asked.min(RETRY_CAP), "as the server asked (Retry-After)"),
                    None => (backoff.mul_f64(1.0 + 0.25 * jitter()), "backoff"),
                };
                warn!(
                    attempt,
                    retries = cfg.retries,
                    wait_ms = wait.as_millis() as u64,
                    "{e}; retrying in {:.1}s, {why}",
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
                backoff = (backoff * 2).min(RETRY_CAP);
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

fn clone(cfg: &Config, s: &Session, started: Instant) -> Result<Report> {
    let dest = cfg.dest.as_deref().expect("clone has a destination");
    let existed = dest.exists();
    let _lock = dest::lock(dest)?;
    let state = dest::inspect(dest, &cfg.url)?;
    let repo = match &state {
        State::Empty => dest::init(dest, &cfg.url)?,
        State::Ours => {
            let repo = dest::open(dest)?;
            let stale = dest::remove_leftovers(repo.path())?;
            if stale > 0 {
                warn!(dest = %dest.display(), "removed {stale} stale lock file(s) or temporary file(s) left by an interrupted run");
            }
            if repo.path().join(dest::INCOMPLETE).exists() {
                info!(dest = %dest.display(), "resuming a checkout an earlier run did not finish");
            } else {
                info!(dest = %dest.display(), "updating the existing checkout");
            }
            repo
        }
        State::Foreign(what) if cfg.clean => {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
            dest::guard_clean(dest, home.as_deref().map(Path::new))?;
            warn!(dest = %dest.display(), "--clean: emptying the destination, which holds {what}");
            dest::empty(dest)?;
            dest::init(dest, &cfg.url)?
        }
        State::Foreign(what) => {
            return Err(Error::destination(
                dest,
                format!("holds {what}. Pass --clean to empty it first, or choose an empty --dest"),
            ))
        }
    };
    dest::on_stop_clean(repo.path());
    info!(url = %cfg.url, dest = %dest.display(), revision = cfg.revision_text.as_deref().unwrap_or("(default branch)"), "cloning");
    if state == State::Ours {
        dest::mark_incomplete(&repo)?;
    }
    let env = |k: &str| std::env::var(k).ok();
    let phase = std::cell::Cell::new((Instant::now(), [0u64; 3]));
    let mark = |i: usize| {
        let (t, mut ms) = phase.get();
        ms[i] = t.elapsed().as_millis() as u64;
        phase.set((Instant::now(), ms));
    };
    let result = with_retry(cfg, || git::fetch::fetch(&repo, s))
        .inspect(|_| mark(0))
        .and_then(|fetched| git::checkout::checkout(&repo, &fetched, s).map(|()| fetched))
        .inspect(|_| mark(1))
        .and_then(|fetched| {
            let subs = if cfg.flags.recurse_submodules {
                with_retry(cfg, || git::submodule::update(&repo, cfg, s, "", &env))?
            } else {
                vec![]
            };
            mark(2);
            Ok((fetched, subs))
        });
    let [fetch_ms, checkout_ms, submodules_ms] = phase.get().1;
    let (fetched, submodules) = match result {
        Ok(f) => f,
        Err(e) => {
            // A fresh clone that failed leaves nothing behind; an update keeps its objects
            // (the marker stays, so the next run recovers and reuses them), not its temporaries.
            let _ = dest::remove_leftovers(repo.path());
            if state != State::Ours {
                drop(repo);
                cleanup_fresh(dest, existed);
            }
            return Err(e);
        }
    };
    dest::mark_complete(&repo)?;
    let report = Report {
        url: cfg.url.to_string(),
        revision: cfg.revision_text.clone(),
        commit: fetched.commit.to_string(),
        reference: fetched.target.ref_name(),
        shallow: repo.is_shallow(),
        depth: if repo.is_shallow() { cfg.depth } else { None },
        submodules,
        duration_ms: started.elapsed().as_millis() as u64,
        received_bytes: s.received_bytes.get(),
        connection: cfg.connection.clone(),
    };
    info!(
        commit = %report.commit,
        reference = report.reference.as_deref().unwrap_or("(detached)"),
        received_bytes = report.received_bytes,
        duration_ms = report.duration_ms,
        fetch_ms,
        checkout_ms,
        submodules_ms,
        "done: {} at {}",
        dest.display(),
        report.commit
    );
    Ok(report)
}

fn cleanup_fresh(dest: &Path, existed: bool) {
    let _ = dest::empty(dest);
    if !existed {
        let _ = std::fs::remove_dir(dest);
    }
}

/// Proves URL, credentials, trust and revision; writes nothing to any destination. A commit
/// that is no branch or tag tip can only be proven by fetching it, into a temporary repository
/// that is removed afterwards.
fn check(cfg: &Config, s: &Session, started: Instant) -> Result<Report> {
    let shown = cfg.url.to_string();
    let adv = with_retry(cfg, || git::fetch::ls_remote(s))?;
    let target = adv.resolve(&cfg.revision, &shown)?;
    let from_adv = match &target {
        Target::Commit { tip: Some(_), oid } => Some(*oid),
        t => t.ref_name().and_then(|name| adv.peeled(&name)),
    };
    let (commit, reference) = match from_adv {
        Some(oid) => (oid, target.ref_name()),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("gitinit-check-")
                .tempdir()
                .map_err(|e| {
                    Error::Internal(format!(
                        "cannot create a temporary directory to look for the commit: {e}"
                    ))
                })?;
            dest::on_stop_clean(tmp.path());
            let repo = git2::Repository::init_bare(tmp.path())
                .map_err(|e| Error::Internal(format!("temporary repository: {}", e.message())))?;
            let fetched = with_retry(cfg, || git::fetch::fetch(&repo, s))?;
            (fetched.commit, fetched.target.ref_name())
        }
    };
    info!(commit = %commit, "{} resolves to {commit}", cfg.revision_text.as_deref().unwrap_or("the default branch"));
    Ok(Report {
        url: shown,
        revision: cfg.revision_text.clone(),
        commit: commit.to_string(),
        reference,
        shallow: false,
        depth: None,
        submodules: vec![],
        duration_ms: started.elapsed().as_millis() as u64,
        received_bytes: s.received_bytes.get(),
        connection: cfg.connection.clone(),
    })
}
