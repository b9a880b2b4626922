//! One run, in one direction: resolve → guard the destination → the stages (fetch, check out,
//! submodules) → report. A stage is a function of [`Work`]: what it reads was left there by
//! the stages before it. A new stage (LFS after the checkout, a signature check before it) is
//! a module of its own and one line in [`STAGES`].

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use git2::Repository;
use tracing::{info, warn};

use crate::cli::{Cli, Command};
use crate::config::{Config, Remote, ReportTarget, Want};
use crate::dest;
use crate::error::{Error, Result};
use crate::git::{self, Fetched, Session};
use crate::report::{Report, Submodule};
use crate::retry::retrying;
use crate::revision::Target;

/// What the stages of one clone share.
pub struct Work<'a> {
    pub cfg: &'a Config,
    pub session: &'a Session<'a>,
    pub repo: &'a Repository,
    /// Set by the fetch.
    pub fetched: Option<Fetched>,
    /// Set by the submodules stage, for the report.
    pub submodules: Vec<Submodule>,
    /// Set by the LFS stage.
    pub lfs: Option<crate::lfs::Summary>,
    /// What the shared cache did for the fetch.
    pub cache: crate::cache::Use,
    /// Set by the verify stage (`--verify-signatures`).
    pub signature: Option<crate::signature::Verified>,
}

impl Work<'_> {
    fn fetched(&self) -> Result<&Fetched> {
        self.fetched
            .as_ref()
            .ok_or_else(|| Error::Internal("a stage ran before the fetch".into()))
    }
}

type Stage = fn(&mut Work<'_>) -> Result<()>;

/// The stages of a clone, in order, by name (the name is the `<name>_ms` of the summary line).
/// Each submodule goes through the same ones but the last ([`each_submodule`]).
const STAGES: [(&str, Stage); 5] = [
    ("fetch", fetch),
    ("verify", verify),
    ("checkout", checkout),
    ("lfs", lfs),
    ("submodules", submodules),
];

/// A submodule's repository, brought to its recorded commit by the stages of [`STAGES`] before
/// `submodules` (which recurses by itself), but `verify`: submodule commits are not verified
/// (SPEC §14).
fn each_submodule(repo: &Repository, cfg: &Config, session: &Session) -> Result<()> {
    let mut work = Work {
        cfg,
        session,
        repo,
        fetched: None,
        submodules: vec![],
        lfs: None,
        cache: crate::cache::Use::Off,
        signature: None,
    };
    for (name, stage) in &STAGES {
        if *name != "submodules" && *name != "verify" {
            stage(&mut work)?;
        }
    }
    Ok(())
}

fn fetch(w: &mut Work<'_>) -> Result<()> {
    let (repo, session, retries) = (w.repo, w.session, w.cfg.retries);
    let plain = || retrying(retries, || git::fetch_into(repo, session));
    let (fetched, cache) = match &w.cfg.cache {
        // A local source is linked already: nothing to share.
        Some(cache) if !session.remote.url.is_local() => {
            crate::cache::fetch_into(repo, session, cache, retries, &plain)?
        }
        _ => (plain()?, crate::cache::Use::Off),
    };
    w.fetched = Some(fetched);
    w.cache = cache;
    Ok(())
}

/// `--verify-signatures`: after the fetch, before anything is written to the working tree.
fn verify(w: &mut Work<'_>) -> Result<()> {
    if let Some(keys) = &w.cfg.verify_signatures {
        let v = crate::signature::verify(w.repo, w.fetched()?, keys)?;
        info!(format = v.format, key = %v.key, signer = %v.signer, "signature verified: {} key {} ({})", v.format, v.key, v.signer);
        w.signature = Some(v);
    }
    Ok(())
}

fn checkout(w: &mut Work<'_>) -> Result<()> {
    git::checkout::checkout(w.repo, w.fetched()?, w.session)
}

fn lfs(w: &mut Work<'_>) -> Result<()> {
    if w.cfg.lfs.enabled {
        w.lfs = Some(retrying(w.cfg.retries, || {
            crate::lfs::pull(w.repo, w.session, w.cfg)
        })?);
    }
    Ok(())
}

fn submodules(w: &mut Work<'_>) -> Result<()> {
    if w.cfg.flags.recurse_submodules {
        // Each stage of each submodule retries on its own.
        let parent = w.cfg;
        // A submodule's run: the top configuration with the submodule's remote and target.
        let each = |repo: &Repository, remote: &Remote, want: &Want, session: &Session| {
            let cfg = Config {
                remote: remote.clone(),
                want: want.clone(),
                ..parent.clone()
            };
            each_submodule(repo, &cfg, session)
        };
        w.submodules = git::submodule::update(
            w.repo,
            &parent.remote,
            &parent.want,
            parent.flags.shallow_submodules,
            w.session,
            "",
            &each,
        )?;
    }
    Ok(())
}

/// Runs the command `cli` asked for; the error is the one failure of the run. With
/// `--report FILE`, a failure is written there too (SPEC §15). Inside a Polyaxon run,
/// `initializer git` then reports what it checked out, or its failure line (SPEC §13); what the
/// API answers never changes the result.
pub fn run(cli: &Cli) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let (polyaxon, notes) = crate::resolve::polyaxon(&cli.command, &env);
    for n in &notes {
        warn!("{n}");
    }
    let mut deadline = None;
    let result = resolve_and_execute(cli, &env, &mut deadline);
    if let Some(run) = &polyaxon {
        match &result {
            Ok(cfg) => {
                if let Some(dest) = &cfg.dest {
                    run.report_success(dest, &cfg.remote.url, cfg.connection.as_deref(), deadline);
                }
            }
            Err(e) => run.report_failure(&crate::process::failure_line(e), deadline),
        }
    }
    result.map(drop)
}

/// Resolves and runs the command, writing a failure to `--report FILE`; `deadline` is when the
/// `--timeout` watchdog fires, once known.
fn resolve_and_execute(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
    deadline: &mut Option<Instant>,
) -> Result<Config> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Internal(format!("no current directory: {e}")))?;
    let cfg = match crate::resolve::resolve(&cli.command, &cwd, env) {
        Ok(cfg) => cfg,
        Err(e) => {
            let target = crate::resolve::report_target(cli.command.conn(), &cwd);
            report_failure(target.as_ref(), &e, None);
            return Err(e);
        }
    };
    if let Some(ReportTarget::File(p)) = &cfg.report {
        crate::process::set_failure_report(
            p.clone(),
            Some(cfg.remote.url.to_string()),
            cfg.want.revision_text.clone(),
        );
    }
    match execute(cli, &cfg, deadline) {
        Ok(()) => Ok(cfg),
        Err(e) => {
            report_failure(cfg.report.as_ref(), &e, Some(&cfg));
            Err(e)
        }
    }
}

/// `{"error": …, "exit_code": N, …}` in the `--report` file; a file that cannot be written is
/// already the failure being reported.
fn report_failure(target: Option<&ReportTarget>, e: &Error, cfg: Option<&Config>) {
    if let Some(ReportTarget::File(p)) = target {
        let failure = crate::report::Failure {
            error: crate::process::failure_line(e),
            exit_code: e.exit_code() as u8,
            url: cfg.map(|c| c.remote.url.to_string()),
            revision: cfg.and_then(|c| c.want.revision_text.clone()),
        };
        let _ = std::fs::write(p, format!("{}\n", failure.to_json()));
    }
}

/// Where the results go must be writable before anything is fetched: a report that cannot be
/// written after a ten-minute clone is a wasted run.
fn check_outputs(cfg: &Config) -> Result<()> {
    if let Some(ReportTarget::File(p)) = &cfg.report {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .map_err(|e| {
                Error::invalid(format!(
                    "--report {}: cannot write it: {e} (give a writable path, or '-' for stdout)",
                    p.display()
                ))
            })?;
    }
    if let Some(d) = &cfg.results_dir {
        std::fs::create_dir_all(d)
            .and_then(|()| tempfile::tempfile_in(d).map(drop))
            .map_err(|e| {
                Error::invalid(format!(
                    "--results-dir {}: cannot write there: {e} (give a writable directory, e.g. Tekton's /tekton/results)",
                    d.display()
                ))
            })?;
    }
    Ok(())
}

/// Tekton's git-clone results: `commit`, `url`, `committer-date` (`%ct`), no trailing newline.
fn write_results(dir: &Path, report: &Report, committer_secs: i64) -> Result<()> {
    for (name, value) in [
        ("commit", report.commit.clone()),
        ("url", report.url.clone()),
        ("committer-date", committer_secs.to_string()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, value).map_err(|e| {
            Error::invalid(format!(
                "--results-dir: cannot write {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}

fn execute(cli: &Cli, cfg: &Config, deadline: &mut Option<Instant>) -> Result<()> {
    for w in &cfg.warnings {
        warn!("{w}");
    }
    check_outputs(cfg)?;
    git::setup(cfg.remote.io_timeout)?;
    let conn = cli.command.conn();
    if let Some(t) = cfg.timeout {
        *deadline = Some(Instant::now() + t);
        crate::process::start_watchdog(t, conn.log_format);
    }
    // SPEC §14: a GitHub App's installation token becomes the repository's credentials (and,
    // through them, those of the submodules on its host), for this run only.
    let with_app;
    let cfg = match &cfg.github_app {
        Some(app) => {
            let mut c = cfg.clone();
            c.remote.credentials = Some(crate::github_app::credentials(
                app,
                &cfg.remote,
                cfg.retries,
            )?);
            with_app = c;
            &with_app
        }
        None => cfg,
    };
    let quiet = conn.quiet || cfg.flags.quiet;
    let progress = crate::progress::Progress::new(quiet, cfg.progress_interval, cfg.progress_bar);
    let session = Session::new(&cfg.remote, &cfg.want, cfg.dest.as_deref(), progress);
    let started = Instant::now();
    let report = match &cli.command {
        Command::Clone(_) | Command::Initializer(_) => clone(cfg, &session, started)?,
        Command::Check(_) => {
            let r = check(cfg, &session, started)?;
            let mut out = std::io::stdout().lock();
            let _ = match &r.reference {
                Some(name) => writeln!(out, "{}\t{name}", r.commit),
                None => writeln!(out, "{}", r.commit),
            };
            r
        }
    };
    deliver_report(&report, cfg, conn.verbose > 0 || cfg.flags.verbose)
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

fn clone(cfg: &Config, s: &Session, started: Instant) -> Result<Report> {
    let dest: &Path = cfg.dest.as_deref().expect("clone has a destination");
    let guard = dest::Guard::take(dest, &cfg.remote.url, cfg.clean, cfg.home.as_deref())?;
    let revision = cfg
        .want
        .revision_text
        .as_deref()
        .unwrap_or("(default branch)");
    let what = if guard.is_update() {
        "updating to"
    } else {
        "cloning"
    };
    info!(url = %cfg.remote.url, dest = %dest.display(), revision, "{what} {revision}");
    let mut work = Work {
        cfg,
        session: s,
        repo: guard.repo(),
        fetched: None,
        submodules: vec![],
        lfs: None,
        cache: crate::cache::Use::Off,
        signature: None,
    };
    let mut ms = [0u64; STAGES.len()];
    let mut result = Ok(());
    for (i, (_, stage)) in STAGES.iter().enumerate() {
        let t = Instant::now();
        result = stage(&mut work);
        ms[i] = t.elapsed().as_millis() as u64;
        if result.is_err() {
            break;
        }
    }
    let Work {
        fetched,
        submodules,
        lfs,
        cache,
        signature,
        ..
    } = work;
    let fetched = match (result, fetched) {
        (Ok(()), Some(f)) => f,
        (Err(e), _) => {
            guard.abandon();
            return Err(e);
        }
        (Ok(()), None) => {
            guard.abandon();
            return Err(Error::Internal("the stages ended without a fetch".into()));
        }
    };
    guard.complete()?;
    let repo = guard.repo();
    let committed = repo
        .find_commit(fetched.commit)
        .map(|c| c.committer().when())
        .map_err(|e| Error::Internal(format!("the commit just checked out: {}", e.message())))?;
    let report = Report {
        url: cfg.remote.url.to_string(),
        revision: cfg.want.revision_text.clone(),
        commit: fetched.commit.to_string(),
        reference: fetched.target.ref_name(),
        shallow: repo.is_shallow(),
        depth: if repo.is_shallow() {
            cfg.want.depth
        } else {
            None
        },
        submodules,
        duration_ms: started.elapsed().as_millis() as u64,
        received_bytes: s.received_bytes.get(),
        lfs,
        cache: Some(cache.as_str()),
        connection: cfg.connection.clone(),
        committer_date: Some(crate::report::iso8601(
            committed.seconds(),
            committed.offset_minutes(),
        )),
        signature,
        sparse: cfg.want.sparse.as_ref().map(|c| c.dirs().to_vec()),
        filter: cfg.want.filter.clone(),
    };
    if let Some(dir) = &cfg.results_dir {
        write_results(dir, &report, committed.seconds())?;
    }
    let stage_ms = |name: &str| {
        STAGES
            .iter()
            .position(|(n, _)| *n == name)
            .map_or(0, |i| ms[i])
    };
    info!(
        commit = %report.commit,
        reference = report.reference.as_deref().unwrap_or("(detached)"),
        received_bytes = report.received_bytes,
        duration_ms = report.duration_ms,
        fetch_ms = stage_ms("fetch"),
        verify_ms = stage_ms("verify"),
        checkout_ms = stage_ms("checkout"),
        lfs_ms = stage_ms("lfs"),
        submodules_ms = stage_ms("submodules"),
        "done: {} at {}",
        dest.display(),
        report.commit
    );
    Ok(report)
}

/// Proves URL, credentials, trust and revision; writes nothing to any destination. A commit
/// that is no branch or tag tip can only be proven by fetching it, into a temporary repository
/// that is removed afterwards.
fn check(cfg: &Config, s: &Session, started: Instant) -> Result<Report> {
    let shown = cfg.remote.url.to_string();
    let adv = retrying(cfg.retries, || git::fetch::ls_remote(s))?;
    let target = adv.resolve(&cfg.want.revision, &shown)?;
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
            let repo = Repository::init_bare(tmp.path())
                .map_err(|e| Error::Internal(format!("temporary repository: {}", e.message())))?;
            let fetched = retrying(cfg.retries, || git::fetch_into(&repo, s))?;
            (fetched.commit, fetched.target.ref_name())
        }
    };
    match cfg.want.revision_text.as_deref() {
        Some(r) if commit.to_string().starts_with(&r.to_ascii_lowercase()) => {
            info!(commit = %commit, "commit {commit} is there")
        }
        r => info!(commit = %commit, "{} resolves to {commit}", r.unwrap_or("the default branch")),
    }
    Ok(Report {
        url: shown,
        revision: cfg.want.revision_text.clone(),
        commit: commit.to_string(),
        reference,
        shallow: false,
        depth: None,
        submodules: vec![],
        duration_ms: started.elapsed().as_millis() as u64,
        received_bytes: s.received_bytes.get(),
        lfs: None,
        cache: None,
        connection: cfg.connection.clone(),
        committer_date: None,
        signature: None,
        sparse: None,
        filter: None,
    })
}
