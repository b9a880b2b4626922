//! The destination directory (SPEC §7): what it holds decides whether we clone, update, or stop.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Repository, RepositoryInitOptions};

use crate::error::{Error, Result};
use crate::remote_url::{redact_input, RepoUrl};

/// Marks a repository as made by gitinit, so a rerun may update it.
const MANAGED_KEY: &str = "gitinit.managed";
/// Present while a run is between init and a finished checkout.
pub const INCOMPLETE: &str = "gitinit-incomplete";

#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Absent, empty, or only `lost+found`.
    Empty,
    /// A checkout made by gitinit of the same repository (finished or interrupted).
    Ours,
    /// Anything else, described for the error message.
    Foreign(String),
}

pub fn inspect(dest: &Path, url: &RepoUrl) -> Result<State> {
    let meta = match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::Empty),
        Err(e) => return Err(Error::destination(dest, format!("cannot read it: {e}"))),
        Ok(m) => m,
    };
    if !meta.is_dir() && !fs::metadata(dest).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::destination(
            dest,
            "is a file, not a directory: choose another --dest",
        ));
    }
    let entries = entries(dest)?;
    if entries.is_empty() {
        return Ok(State::Empty);
    }
    let git_dir = dest.join(".git");
    if git_dir.is_dir() {
        let only_git = entries.len() == 1;
        let repo = Repository::open(dest).ok();
        let has_origin = repo
            .as_ref()
            .is_some_and(|r| r.find_remote("origin").is_ok());
        // A run killed inside `init` leaves a lone `.git` with no origin yet: ours, restart it.
        if only_git && !has_origin {
            fs::remove_dir_all(&git_dir).map_err(|e| {
                Error::destination(dest, format!("cannot remove an unfinished .git: {e}"))
            })?;
            return Ok(State::Empty);
        }
        if let Some(repo) = repo {
            let managed = repo
                .config()
                .and_then(|c| c.get_bool(MANAGED_KEY))
                .unwrap_or(false);
            let origin = repo
                .find_remote("origin")
                .ok()
                .and_then(|r| r.url().ok().map(str::to_string));
            if managed && origin.as_deref() == Some(url.to_string().as_str()) {
                return Ok(State::Ours);
            }
            return Ok(State::Foreign(match origin {
                Some(o) => format!("a checkout of another repository ({})", redact_input(&o)),
                None => "a git repository that gitinit did not make".into(),
            }));
        }
    }
    let names: Vec<String> = entries
        .iter()
        .take(3)
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok(State::Foreign(format!(
        "{} entries that are not a gitinit checkout (e.g. {})",
        entries.len(),
        names.join(", ")
    )))
}

/// The entries of `dest` except `lost+found` (a fresh filesystem's; it counts as empty).
fn entries(dest: &Path) -> Result<Vec<PathBuf>> {
    let rd =
        fs::read_dir(dest).map_err(|e| Error::destination(dest, format!("cannot list it: {e}")))?;
    let mut out = vec![];
    for entry in rd {
        let entry = entry.map_err(|e| Error::destination(dest, format!("cannot list it: {e}")))?;
        if entry.file_name() != "lost+found" {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Removes everything in `dest` but `lost+found`; never `dest` itself (it may be a mount point).
pub fn empty(dest: &Path) -> Result<()> {
    for path in entries(dest)? {
        let is_dir = fs::symlink_metadata(&path)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        let r = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        r.map_err(|e| Error::destination(dest, format!("cannot remove {}: {e}", path.display())))?;
    }
    Ok(())
}

/// A new repository in `dest` with `origin` at the (credential-free) URL. No templates: nothing
/// from the machine (hooks) is copied in.
pub fn init(dest: &Path, url: &RepoUrl) -> Result<Repository> {
    let io = |e: git2::Error| {
        Error::destination(
            dest,
            format!("cannot create a repository there: {}", e.message()),
        )
    };
    fs::create_dir_all(dest)
        .map_err(|e| Error::destination(dest, format!("cannot create it: {e}")))?;
    let mut opts = RepositoryInitOptions::new();
    opts.external_template(false).mkpath(true);
    let repo = Repository::init_opts(dest, &opts).map_err(io)?;
    mark_incomplete(&repo)?;
    // The marker before origin: a `.git` with an origin is always a managed one (see inspect).
    repo.config()
        .and_then(|mut c| c.set_bool(MANAGED_KEY, true))
        .map_err(io)?;
    repo.remote("origin", &url.to_string()).map_err(io)?;
    Ok(repo)
}

/// Holds an advisory lock on the destination directory for the whole run, so two pods sharing
/// a ReadWriteMany volume take turns instead of writing one `.git` at once. The kernel drops
/// the lock when the process ends, however it ends.
pub struct DestLock {
    _file: fs::File,
}

pub fn lock(dest: &Path) -> Result<DestLock> {
    fs::create_dir_all(dest)
        .map_err(|e| Error::destination(dest, format!("cannot create it: {e}")))?;
    let file = fs::File::open(dest)
        .map_err(|e| Error::destination(dest, format!("cannot open it: {e}")))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            tracing::info!(dest = %dest.display(), "another gitinit run holds the destination: waiting for it");
            file.lock()
                .map_err(|e| Error::destination(dest, format!("cannot lock it: {e}")))?;
        }
        Err(fs::TryLockError::Error(e)) => {
            // Some network filesystems have no flock: go on unlocked rather than fail.
            tracing::warn!(dest = %dest.display(), "cannot lock the destination ({e}); continuing without a lock");
        }
    }
    Ok(DestLock { _file: file })
}

pub fn open(dest: &Path) -> Result<Repository> {
    Repository::open(dest).map_err(|e| {
        Error::destination(
            dest,
            format!("cannot open the checkout there: {}", e.message()),
        )
    })
}

/// `*.lock` files left in `.git` by a killed run (index.lock, refs, config, shallow). We hold
/// the destination lock, so no other gitinit is writing: every one of them is stale, and
/// libgit2 would refuse to write while they exist.
pub fn remove_stale_locks(git_dir: &Path) -> Result<usize> {
    fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let ft = entry.file_type()?;
            if ft.is_dir() {
                // Objects are written under temporary names, never `.lock`: skip the big tree.
                if entry.file_name() != "objects" {
                    walk(&path, removed)?;
                }
            } else if path.extension().is_some_and(|e| e == "lock") {
                fs::remove_file(&path)?;
                *removed += 1;
            }
        }
        Ok(())
    }
    let mut removed = 0;
    walk(git_dir, &mut removed)
        .map_err(|e| Error::destination(git_dir, format!("cannot remove stale lock files: {e}")))?;
    Ok(removed)
}

pub fn mark_incomplete(repo: &Repository) -> Result<()> {
    let path = repo.path().join(INCOMPLETE);
    fs::write(&path, b"a gitinit run is in progress or was interrupted\n").map_err(|e| {
        Error::destination(repo.path(), format!("cannot write {}: {e}", path.display()))
    })
}

pub fn mark_complete(repo: &Repository) -> Result<()> {
    let path = repo.path().join(INCOMPLETE);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::destination(
            repo.path(),
            format!("cannot remove {}: {e}", path.display()),
        )),
        _ => Ok(()),
    }
}
