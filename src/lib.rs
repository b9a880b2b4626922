//! gitinit: put a git repository at an exact revision into a directory.
//!
//! Data flows one way: [`cli`] parses, [`config`] resolves and validates, [`job`] guards the
//! destination and runs the stages ([`git::fetch`], [`git::checkout`], submodules), [`report`]
//! says what happened. [`main`] is the only place where an error becomes an exit code;
//! [`process`] owns what belongs to the process (signals, panics, the termination log).
//! ARCHITECTURE.md has the map.

pub mod cache;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod dest;
pub mod error;
pub mod flags;
pub mod git;
pub mod github_app;
pub mod hints;
pub mod job;
pub mod lfs;
pub mod logging;
pub mod parallel;
pub mod polyaxon;
pub mod process;
pub mod progress;
pub mod proxy;
pub mod redact;
pub mod remote_url;
pub mod report;
pub mod resolve;
pub mod retry;
pub mod revision;
pub mod signature;
pub mod sparse;
pub mod ssh;

use clap::FromArgMatches;

use crate::cli::Cli;
use crate::error::ExitCode;

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
    process::install_panic_hook();
    process::set_termination_log(std::env::var_os("GITINIT_TERMINATION_LOG").map(Into::into));
    let matches = cli::command(version()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let conn = cli.command.conn();
    let format = conn.log_format;
    logging::init(format, conn.verbose, conn.quiet);
    process::handle_signals(format);
    let code = match job::run(&cli) {
        Ok(()) => ExitCode::Success,
        Err(e) => {
            process::fail(&e, format);
            e.exit_code()
        }
    };
    std::process::ExitCode::from(code as u8)
}
