//! The first checkout of a new destination, with the files written on every core. libgit2
//! writes one file after another on one thread; here each worker has its own handle on the
//! repository (libgit2 objects are not shared between threads), inflates blobs and writes
//! files, and the index is then built from the files' stat data, as libgit2's checkout would
//! have left it. Anything this path does not handle exactly like libgit2 (attributes, which
//! may ask for end-of-line or filter conversion; a path git would refuse) goes to libgit2.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use git2::{FileMode, IndexEntry, IndexTime, Oid, Repository, Tree, TreeWalkMode, TreeWalkResult};
use tracing::debug;

use super::super::tree::{Entry, Scan, MODE_GITLINK};
use super::{cannot_write, Session};
use crate::dest::is_lost_found;
use crate::error::{Error, Result};
use crate::sparse::Cone;

/// Below this, threads cost more than they save.
const MIN_FILES: usize = 64;

/// A new destination: nothing checked out yet, nothing in the working tree but `.git`
/// (and a volume's `lost+found`), and more than one core.
pub fn applies(repo: &Repository) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Some(workdir) = repo.workdir() else {
        return false;
    };
    cores > 1
        && repo.index().map(|i| i.is_empty()).unwrap_or(false)
        && std::fs::read_dir(workdir).is_ok_and(|mut d| {
            d.all(|e| e.is_ok_and(|e| e.file_name() == ".git" || is_lost_found(&e)))
        })
}

/// Removes everything of the working tree but `.git`.
pub fn empty_work_tree(repo: &Repository) -> std::io::Result<()> {
    let Some(workdir) = repo.workdir() else {
        return Ok(());
    };
    for e in std::fs::read_dir(workdir)? {
        let e = e?;
        if e.file_name() == ".git" || is_lost_found(&e) {
            continue;
        }
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(e.path())?;
        } else {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// The `.gitattributes` files of the (old, already checked) tree, by path, sorted as
/// [`Scan::attributes`] is.
pub fn attributes(tree: &Tree<'_>) -> Vec<(String, Oid)> {
    let mut found = vec![];
    let _ = tree.walk(TreeWalkMode::PreOrder, |parent, e| {
        if e.name_bytes() == b".gitattributes" {
            found.push((parent.to_string(), e.id()));
        }
        TreeWalkResult::Ok
    });
    found.sort();
    found
}

/// Writes the tree and the index; `false` when the tree needs libgit2's own checkout.
/// The tree was checked ([`super::super::tree::scan`]) and the working tree holds nothing
/// but `.git`: every directory is created here, one component at a time and never through
/// a symlink, and every file and link with `O_EXCL | O_NOFOLLOW`.
/// With a `cone`, only its entries are written; the others go to the index marked
/// skip-worktree, as `git sparse-checkout set` leaves them.
pub fn write(repo: &Repository, scan: &Scan, cone: Option<&Cone>, s: &Session) -> Result<bool> {
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(false);
    };
    let (entries, skipped): (Vec<&Entry>, Vec<&Entry>) = scan
        .entries
        .iter()
        .partition(|e| cone.is_none_or(|c| c.contains(&e.path)));
    // Attributes outside the cone apply to nothing that is written.
    let attributes = scan
        .attributes
        .iter()
        .any(|(dir, _)| cone.is_none_or(|c| c.contains(format!("{dir}.gitattributes").as_bytes())));
    if !scan.plain_modes || attributes || entries.len() < MIN_FILES {
        return Ok(false);
    }
    let entries = &entries;
    let at = |p: &[u8]| workdir.join(OsStr::from_bytes(p));
    let gitlinks = entries.iter().filter(|e| e.mode == MODE_GITLINK);
    // A submodule's directory is created too; `--recurse-submodules` fills it. In a sparse
    // checkout, only the directories that hold something of the cone.
    let needed = super::sparse::needed_dirs(entries.iter().copied(), cone);
    for d in scan
        .dirs
        .iter()
        .filter(|d| needed.as_ref().is_none_or(|n| n.contains(d.as_slice())))
        .chain(gitlinks.map(|e| &e.path))
    {
        make_dir(&at(d)).map_err(|e| cannot_write(repo, e))?;
    }

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let done = AtomicUsize::new(0);
    let gitdir = repo.path().to_path_buf();
    let url = s.remote.url.to_string();
    debug!(
        files = entries.len(),
        workers, "writing a fresh checkout in parallel"
    );
    let written = crate::parallel::run(
        entries.len(),
        workers,
        || Repository::open(&gitdir).map_err(|e| internal("opening the repository", e)),
        |repo, i| {
            let meta = write_one(repo, entries[i], &at(&entries[i].path), &url)?;
            done.fetch_add(1, Ordering::Relaxed);
            Ok(meta)
        },
        || {
            s.progress
                .borrow_mut()
                .checkout(done.load(Ordering::Relaxed), entries.len())
        },
        Duration::from_millis(20),
        "a checkout worker",
    )?;
    let mut metas: Vec<Option<std::fs::Metadata>> = entries.iter().map(|_| None).collect();
    for (i, m) in written {
        metas[i] = Some(m);
    }
    s.progress
        .borrow_mut()
        .checkout(entries.len(), entries.len());

    let mut index = repo.index().map_err(|e| internal("opening the index", e))?;
    for (e, meta) in entries.iter().zip(&metas) {
        index
            .add(&index_entry(e, meta.as_ref()))
            .map_err(|err| internal("adding to the index", err))?;
    }
    for e in skipped {
        index
            .add(&super::sparse::skipped_entry(e))
            .map_err(|err| internal("adding to the index", err))?;
    }
    index
        .write()
        .map_err(|e| internal("writing the index", e))?;
    Ok(true)
}

/// Creates one directory of the tree, whose parent this checkout made; an existing one must
/// be a real directory, not a symlink to one.
fn make_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(path)?.is_dir() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "{} exists and is no directory",
                    path.display()
                )))
            }
        }
        r => r,
    }
}

/// Writes one entry; its stat data (not for submodules) goes to the index.
fn write_one(repo: &Repository, e: &Entry, path: &PathBuf, url: &str) -> Result<std::fs::Metadata> {
    let io = |err: std::io::Error| {
        Error::destination(path, format!("cannot write the working tree: {err}"))
    };
    if e.mode == 0o160000 {
        return std::fs::symlink_metadata(path).map_err(io);
    }
    let blob = repo.find_blob(e.oid).map_err(|err| {
        crate::git::classify::corrupt_object(&err, url)
            .unwrap_or_else(|| Error::Internal(format!("reading {}: {}", e.oid, err.message())))
    })?;
    if e.mode == 0o120000 {
        std::os::unix::fs::symlink(OsStr::from_bytes(blob.content()), path).map_err(io)?;
    } else {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(if e.mode == 0o100755 { 0o777 } else { 0o666 })
            .open(path)
            .map_err(io)?;
        f.write_all(blob.content()).map_err(io)?;
    }
    std::fs::symlink_metadata(path).map_err(io)
}

pub(super) fn index_entry(e: &Entry, meta: Option<&std::fs::Metadata>) -> IndexEntry {
    let time = IndexTime::new(0, 0);
    let mode = match e.mode {
        0o100755 => u32::from(FileMode::BlobExecutable),
        0o120000 => u32::from(FileMode::Link),
        0o160000 => u32::from(FileMode::Commit),
        _ => u32::from(FileMode::Blob),
    };
    let mut entry = IndexEntry {
        ctime: time,
        mtime: time,
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: e.oid,
        flags: e.path.len().min(0xfff) as u16,
        flags_extended: 0,
        path: e.path.clone(),
    };
    // A submodule's entry has no stat data.
    if let (false, Some(m)) = (e.mode == 0o160000, meta) {
        crate::git::set_stat(&mut entry, m);
    }
    entry
}
