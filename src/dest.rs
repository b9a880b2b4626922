//! The destination directory (SPEC §7): what it holds decides whether we clone, update, or stop.
//! [`Guard`] owns it for one run (lock, marker, leftovers, cleanup); nothing else in the program
//! creates or removes anything in it but the checkout itself.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Repository, RepositoryInitOptions};

use crate::error::{Error, Result};
use crate::remote_url::{redact_input, RepoUrl};

/// Marks a repository as made by gitinit, so a rerun may update it.
const MANAGED_KEY: &str = "gitinit.managed";
/// Present while a run is between init and a finished checkout.
const INCOMPLETE: &str = "gitinit-incomplete";

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Absent, empty, or only `lost+found`.
    Empty,
    /// A checkout made by gitinit of the same repository (finished or interrupted).
    Ours,
    /// Anything else, described for the error message.
    Foreign(String),
}

fn inspect(dest: &Path, url: &RepoUrl) -> Result<State> {
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
            let same = origin.as_deref().is_some_and(|o| {
                o == url.to_string()
                    || RepoUrl::parse(o, dest).is_ok_and(|o| o.same_repository(url))
            });
            if managed && same {
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
    let count = match entries.len() {
        1 => "1 entry".to_string(),
        n => format!("{n} entries"),
    };
    Ok(State::Foreign(format!(
        "{count} that {} not a gitinit checkout (e.g. {})",
        if entries.len() == 1 { "is" } else { "are" },
        names.join(", ")
    )))
}

/// The entries of `dest` except a fresh filesystem's `lost+found`, which counts as empty. Only a
/// real directory of that name is the filesystem's: a symlink or a file called `lost+found` is
/// content like any other (a planted symlink would otherwise be kept and written through).
fn entries(dest: &Path) -> Result<Vec<PathBuf>> {
    let rd =
        fs::read_dir(dest).map_err(|e| Error::destination(dest, format!("cannot list it: {e}")))?;
    let mut out = vec![];
    for entry in rd {
        let entry = entry.map_err(|e| Error::destination(dest, format!("cannot list it: {e}")))?;
        if !is_lost_found(&entry) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// A volume's own `lost+found`: that name, and a directory (`file_type` does not follow
/// symlinks).
pub fn is_lost_found(entry: &fs::DirEntry) -> bool {
    entry.file_name() == "lost+found" && entry.file_type().is_ok_and(|t| t.is_dir())
}

/// Directories a container needs to run. `--clean` refuses to empty them (and `$HOME`, and any
/// directory that holds it), whatever symlink or relative path leads there: a mistyped
/// `--dest` must fail, not wipe the pod's filesystem.
const PROTECTED: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var",
];

/// Fails when `--clean` must not empty `dest`; `home` is the user's home directory, if known.
fn guard_clean(dest: &Path, home: Option<&Path>) -> Result<()> {
    let real = fs::canonicalize(dest)
        .map_err(|e| Error::destination(dest, format!("cannot resolve it: {e}")))?;
    let home = home.and_then(|h| fs::canonicalize(h).ok());
    let why = if PROTECTED.iter().any(|p| real == Path::new(p))
        || real.parent() == Some(Path::new("/")) && real.to_string_lossy().starts_with("/lib")
    {
        Some(format!(
            "{} is a directory the system needs",
            real.display()
        ))
    } else if home.as_deref().is_some_and(|h| h.starts_with(&real)) {
        Some(format!("{} holds the home directory", real.display()))
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::destination(
            dest,
            format!("--clean refuses to empty it: {why}. Give --dest a directory of its own, such as a volume mounted for the code"),
        )),
        None => Ok(()),
    }
}

/// Removes everything in `dest` but `lost+found`; never `dest` itself (it may be a mount point).
fn empty(dest: &Path) -> Result<()> {
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
fn init(dest: &Path, url: &RepoUrl) -> Result<Repository> {
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
struct DestLock {
    _file: fs::File,
}

fn lock(dest: &Path) -> Result<DestLock> {
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

/// Opens the checkout in `dest`. Its working tree must be `dest` itself: a `core.worktree`
/// planted in `.git/config` (the job's container can write the volume) would otherwise send
/// the checkout anywhere.
fn open(dest: &Path) -> Result<Repository> {
    let repo = Repository::open(dest).map_err(|e| {
        Error::destination(
            dest,
            format!("cannot open the checkout there: {}", e.message()),
        )
    })?;
    let same = |a: &Path, b: &Path| match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let real_dir = fs::symlink_metadata(dest.join(".git")).is_ok_and(|m| m.is_dir());
    let git_dir_ok = real_dir && same(repo.path(), &dest.join(".git"));
    let workdir_ok = repo.workdir().is_some_and(|w| same(w, dest));
    if !(git_dir_ok && workdir_ok) {
        return Err(Error::destination(
            dest,
            "its .git points somewhere else (a gitdir file or core.worktree): gitinit writes only \
             inside --dest. Pass --clean to start afresh",
        ));
    }
    Ok(repo)
}

/// What a killed or stopped run leaves in `.git` (its submodules' too): `*.lock` files
/// (index.lock, refs, config, shallow), which make libgit2 refuse to write, and the temporary
/// files of a fetch: the partial pack (`objects/pack/pack_git2_*` from libgit2's indexer,
/// `objects/pack/.tmp-gitinit-*` from `git::indexer`, as large as what arrived), loose-object
/// temporaries and partial LFS downloads (`lfs/tmp/`). We hold the destination lock, so no
/// other gitinit is writing: every one of them is stale. Returns how many were removed.
pub fn remove_leftovers(git_dir: &Path) -> Result<usize> {
    fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let ft = entry.file_type()?;
            if ft.is_dir() && entry.file_name() == "objects" {
                // Temporaries are only ever at the top and in `pack/`: skip the fan-out.
                sweep(&path, removed, false)?;
                if path.join("pack").is_dir() {
                    sweep(&path.join("pack"), removed, true)?;
                }
            } else if ft.is_dir() && entry.file_name() == "tmp" && dir.ends_with("lfs") {
                // Partial LFS downloads.
                for part in fs::read_dir(&path)? {
                    let part = part?;
                    if part.file_type()?.is_file() {
                        fs::remove_file(part.path())?;
                        *removed += 1;
                    }
                }
            } else if ft.is_dir() {
                walk(&path, removed)?;
            } else if path.extension().is_some_and(|e| e == "lock") {
                fs::remove_file(&path)?;
                *removed += 1;
            }
        }
        Ok(())
    }
    fn sweep(dir: &Path, removed: &mut usize, pack: bool) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let temporary = name.ends_with(".lock")
                || name.starts_with("tmp_object_git2_")
                || (pack
                    && (name.starts_with("pack_git2_")
                        || name.starts_with("tmp_")
                        || name.starts_with(".tmp")));
            if temporary && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                *removed += 1;
            }
        }
        Ok(())
    }
    let mut removed = 0;
    match walk(git_dir, &mut removed) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::destination(
            git_dir,
            format!("cannot remove what an interrupted run left: {e}"),
        )),
        _ => Ok(removed),
    }
}

/// The `.git` directories this process is writing: a stop (signal, `--timeout`) removes their
/// temporary files on the way out, since no destructor runs after `process::exit`.
static WRITING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Registers a directory whose temporaries a stop must remove.
pub fn on_stop_clean(git_dir: &Path) {
    if let Ok(mut w) = WRITING.lock() {
        w.push(git_dir.to_path_buf());
    }
}

/// Removes the temporaries of every registered directory; called just before the process exits.
pub fn clean_on_stop() {
    // try_lock: a stop that lands while the main thread registers must not hang the exit.
    if let Ok(w) = WRITING.try_lock() {
        for dir in w.iter() {
            if dir.file_name().is_some_and(|n| n == ".git") {
                let _ = remove_leftovers(dir);
            } else {
                // A scratch directory of our own (`check`'s temporary repository): all of it.
                let _ = fs::remove_dir_all(dir);
            }
        }
    }
}

fn mark_incomplete(repo: &Repository) -> Result<()> {
    let path = repo.path().join(INCOMPLETE);
    fs::write(&path, b"a gitinit run is in progress or was interrupted\n").map_err(|e| {
        Error::destination(repo.path(), format!("cannot write {}: {e}", path.display()))
    })
}

fn mark_complete(repo: &Repository) -> Result<()> {
    let path = repo.path().join(INCOMPLETE);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::destination(
            repo.path(),
            format!("cannot remove {}: {e}", path.display()),
        )),
        _ => Ok(()),
    }
}

/// The destination of one run, from the lock to the end: locked, inspected, made ready
/// (emptied with `--clean`, initialised, or reopened with the leftovers of a killed run
/// removed), and marked unfinished until [`Guard::complete`]. [`Guard::abandon`] puts a fresh
/// destination back as it was found; an update keeps its objects for the next run.
pub struct Guard {
    path: PathBuf,
    existed: bool,
    fresh: bool,
    repo: Repository,
    _lock: DestLock,
}

impl Guard {
    /// `home`: the user's home directory, which `--clean` never empties.
    pub fn take(dest: &Path, url: &RepoUrl, clean: bool, home: Option<&Path>) -> Result<Guard> {
        let existed = dest.exists();
        let lock = lock(dest)?;
        let state = inspect(dest, url)?;
        let repo = match &state {
            State::Empty => init(dest, url)?,
            State::Ours => {
                let repo = open(dest)?;
                let stale = remove_leftovers(repo.path())?;
                if stale > 0 {
                    tracing::warn!(dest = %dest.display(), "removed {stale} stale lock file(s) or temporary file(s) left by an interrupted run");
                }
                if repo.path().join(INCOMPLETE).exists() {
                    tracing::info!(dest = %dest.display(), "resuming a checkout an earlier run did not finish");
                } else {
                    tracing::info!(dest = %dest.display(), "updating the existing checkout");
                }
                mark_incomplete(&repo)?;
                repo
            }
            State::Foreign(what) if clean => {
                guard_clean(dest, home)?;
                tracing::warn!(dest = %dest.display(), "--clean: emptying the destination, which holds {what}");
                empty(dest)?;
                init(dest, url)?
            }
            State::Foreign(what) => {
                return Err(Error::destination(
                    dest,
                    format!(
                        "holds {what}. Pass --clean to empty it first, or choose an empty --dest"
                    ),
                ))
            }
        };
        on_stop_clean(repo.path());
        Ok(Guard {
            path: dest.to_path_buf(),
            existed,
            fresh: state != State::Ours,
            repo,
            _lock: lock,
        })
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The destination held a checkout of ours: the run updates it.
    pub fn is_update(&self) -> bool {
        !self.fresh
    }

    /// The checkout is whole: a rerun may update it.
    pub fn complete(&self) -> Result<()> {
        mark_complete(&self.repo)
    }

    /// The run failed. A fresh clone leaves nothing behind; an update keeps its objects (the
    /// marker stays, so the next run recovers and reuses them), never its temporaries.
    pub fn abandon(self) {
        let Guard {
            path,
            existed,
            fresh,
            repo,
            _lock,
        } = self;
        let _ = remove_leftovers(repo.path());
        drop(repo);
        if fresh {
            let _ = empty(&path);
            if !existed {
                let _ = fs::remove_dir(&path);
            }
        }
    }
}
