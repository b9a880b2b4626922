//! What belongs to the process rather than to a run: the panic hook, SIGTERM and SIGINT, the
//! `--timeout` watchdog, and the one failure line with its copy in the termination log. Every
//! way out removes the temporary files of the destinations being written
//! ([`crate::dest::clean_on_stop`]), since no destructor runs after `process::exit`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cli::LogFormat;
use crate::error::{Error, ExitCode};

/// Where the failure line is copied, and whether to create the file (Kubernetes mounts
/// `/dev/termination-log`; another path is created).
static TERMINATION_LOG: OnceLock<(PathBuf, bool)> = OnceLock::new();

/// `custom`: the path `GITINIT_TERMINATION_LOG` names, if any (read by `main`, at the edge).
pub fn set_termination_log(custom: Option<PathBuf>) {
    let choice = match custom {
        Some(p) if !p.as_os_str().is_empty() => (p, true),
        _ => (PathBuf::from("/dev/termination-log"), false),
    };
    let _ = TERMINATION_LOG.set(choice);
}

/// The one failure line (SPEC §3) of `e`, as printed on stderr and in the termination log.
pub fn failure_line(e: &Error) -> String {
    format!("error: {e}")
}

/// `--report FILE` and what the run asked for: a stop (`--timeout`, a signal) writes its failure
/// there too, as the error path does.
static FAILURE_REPORT: OnceLock<(PathBuf, Option<String>, Option<String>)> = OnceLock::new();

/// Set once the options are resolved: the report file, the URL (as printed) and the revision.
pub fn set_failure_report(path: PathBuf, url: Option<String>, revision: Option<String>) {
    let _ = FAILURE_REPORT.set((path, url, revision));
}

/// `{"error": "<the failure line>", "exit_code": N, ...}` in the report file, if there is one.
pub fn write_failure_report(line: &str, exit_code: u8) {
    if let Some((path, url, revision)) = FAILURE_REPORT.get() {
        let failure = crate::report::Failure {
            error: line.to_string(),
            exit_code,
            url: url.clone(),
            revision: revision.clone(),
        };
        let _ = std::fs::write(path, format!("{}\n", failure.to_json()));
    }
}

/// Prints the one failure line (SPEC §3), and writes it to the termination log.
pub fn fail(e: &Error, format: LogFormat) {
    let line = failure_line(e);
    match format {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => tracing::error!(exit_code = e.exit_code() as u8, "{e}"),
    }
    write_termination_log(&line);
}

/// Kubernetes shows this file in `kubectl describe pod`. The default path is written only when
/// it exists (the kubelet mounts it).
fn write_termination_log(line: &str) {
    let Some((path, create)) = TERMINATION_LOG.get() else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(*create)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// A panic is a bug: exit 1 with a short line. The payload is not printed, since it could
/// quote data that holds a secret.
pub fn install_panic_hook() {
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
pub fn handle_signals(format: LogFormat) {
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
            write_failure_report(&line, (128 + sig) as u8);
            crate::dest::clean_on_stop();
            std::process::exit(128 + sig);
        }
    });
}

/// `--timeout`: the whole run, retries included, ends after `limit` with exit 6.
pub fn start_watchdog(limit: Duration, format: LogFormat) {
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
        write_failure_report(&failure_line(&e), e.exit_code() as u8);
        crate::dest::clean_on_stop();
        std::process::exit(e.exit_code() as i32);
    });
}
