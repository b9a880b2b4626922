//! `--sparse` in the working tree, the index and `.git`, as `git sparse-checkout set DIRS`
//! leaves them (and as `git sparse-checkout disable` does without it): the entries outside the
//! cone are in the index with git's skip-worktree flag and not on disk; `core.sparseCheckout`
//! and `core.sparseCheckoutCone` in `.git/config.worktree` (with `extensions.worktreeConfig`,
//! where git 2.47 puts them); the patterns in `.git/info/sparse-checkout`.
//!
//! libgit2 knows the flag only to leave such entries alone when it compares the index with the
//! working tree; its checkout would write them. So a checkout by libgit2 is limited to the
//! paths of the cone ([`limit`]) and the index is completed afterwards ([`complete`]).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use git2::build::CheckoutBuilder;
use git2::{IndexEntry, Repository};

use super::super::tree::{Entry, Scan, MODE_GITLINK};
use crate::dest::is_lost_found;
use crate::error::{Error, Result};
use crate::sparse::Cone;

/// git's `CE_SKIP_WORKTREE`, in the index entry's extended flags (which make the index
/// version 3; libgit2 writes that version by itself when an entry has them).
pub const SKIP_WORKTREE: u16 = 1 << 14;

/// The directories that hold an entry of the cone (and the submodules' own), or `None`
/// without a cone: every directory.
pub fn needed_dirs<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    cone: Option<&Cone>,
) -> Option<HashSet<Vec<u8>>> {
    cone?;
    let mut dirs = HashSet::new();
    for e in entries {
        let mut path = e.path.as_slice();
        if e.mode == MODE_GITLINK {
            dirs.insert(path.to_vec());
        }
        while let Some(slash) = path.iter().rposition(|&b| b == b'/') {
            path = &path[..slash];
            if !dirs.insert(path.to_vec()) {
                break;
            }
        }
    }
    Some(dirs)
}

/// An entry outside the cone: in the index, skip-worktree, no stat data (git's own have none
/// either: nothing on disk to describe).
pub fn skipped_entry(e: &Entry) -> IndexEntry {
    let mut entry = super::fresh::index_entry(e, None);
    entry.flags_extended |= SKIP_WORKTREE;
    entry
}

/// Before libgit2's checkout of a tree. The skip-worktree flags of an earlier run are cleared,
/// so that libgit2 writes again what is missing from disk (all of it without a cone). With a
/// cone, what stands outside it goes (an earlier checkout's directories, untracked files in
/// them), and the checkout is limited to the cone: its directories, and the files directly
/// inside the top and each parent, as listed by the new tree, the index and the disk (an
/// untracked one is then removed by libgit2 with the others).
pub fn limit(repo: &Repository, scan: &Scan, cone: Option<&Cone>) -> Result<Limit> {
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let mut index = repo.index().map_err(|e| internal("opening the index", e))?;
    let flagged: Vec<IndexEntry> = index
        .iter()
        .filter(|e| e.flags_extended & SKIP_WORKTREE != 0)
        .collect();
    let skipped = flagged.iter().map(|e| e.path.clone()).collect();
    if !flagged.is_empty() {
        for mut e in flagged {
            e.flags_extended &= !SKIP_WORKTREE;
            index
                .add(&e)
                .map_err(|err| internal("updating the index", err))?;
        }
        index
            .write()
            .map_err(|e| internal("writing the index", e))?;
    }
    let (Some(cone), Some(workdir)) = (cone, repo.workdir()) else {
        return Ok(Limit {
            skipped,
            paths: vec![],
        });
    };
    let mut paths: HashSet<Vec<u8>> = HashSet::new();
    let mut direct = |path: &[u8]| {
        let parent = path
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(&b""[..], |i| &path[..i]);
        if parent.is_empty() || cone.is_parent(parent) {
            paths.insert(path.to_vec());
        }
    };
    for e in &scan.entries {
        direct(&e.path);
    }
    for e in index.iter() {
        direct(&e.path);
    }
    let gitlinks: HashSet<&[u8]> = scan
        .entries
        .iter()
        .filter(|e| e.mode == MODE_GITLINK)
        .map(|e| e.path.as_slice())
        .collect();
    clear_outside(workdir, b"", cone, &gitlinks, &mut direct)
        .map_err(|e| super::cannot_write(repo, e))?;
    for d in cone.listed() {
        paths.insert(d.into_bytes());
    }
    Ok(Limit {
        skipped,
        paths: paths.into_iter().collect(),
    })
}

/// What [`limit`] decided for libgit2's checkout.
pub struct Limit {
    /// The paths that were skip-worktree: missing from disk by design, not by a local change.
    pub skipped: HashSet<Vec<u8>>,
    /// The paths the checkout is limited to (none: the whole tree).
    paths: Vec<Vec<u8>>,
}

impl Limit {
    pub fn apply(&self, cb: &mut CheckoutBuilder<'_>) {
        if self.paths.is_empty() {
            return;
        }
        // Exact paths, and a directory's everything under it: no pattern matching.
        cb.disable_pathspec_match(true);
        for p in &self.paths {
            cb.path(p.as_slice());
        }
    }
}

/// In the directory `dir` (the top, or a parent of a cone directory): removes the directories
/// that are neither in the cone nor parents of it (never following a symlink), recurses into
/// the parents, and gives every other entry to `direct`.
fn clear_outside(
    workdir: &Path,
    dir: &[u8],
    cone: &Cone,
    gitlinks: &HashSet<&[u8]>,
    direct: &mut dyn FnMut(&[u8]),
) -> std::io::Result<()> {
    let at = workdir.join(OsStr::from_bytes(dir));
    for e in std::fs::read_dir(&at)? {
        let e = e?;
        let name = e.file_name();
        if dir.is_empty() && (name == ".git" || is_lost_found(&e)) {
            continue;
        }
        let mut path = dir.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name.as_bytes());
        if !e.file_type()?.is_dir() || gitlinks.contains(path.as_slice()) {
            direct(&path);
        } else if cone.is_parent(&path) {
            clear_outside(workdir, &path, cone, gitlinks, direct)?;
        } else if !cone.keeps_dir(&path) {
            tracing::debug!(path = %super::super::tree::shown(&path), "removing a directory outside the sparse checkout");
            std::fs::remove_dir_all(e.path())?;
        }
    }
    Ok(())
}

/// After libgit2's checkout limited to the cone: the index gets the new tree's entries outside
/// the cone (skip-worktree) and loses what the tree no longer has; the parents left empty go.
pub fn complete(repo: &Repository, scan: &Scan, cone: &Cone) -> Result<()> {
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let mut index = repo.index().map_err(|e| internal("opening the index", e))?;
    let tree: HashSet<&[u8]> = scan.entries.iter().map(|e| e.path.as_slice()).collect();
    let stale: Vec<Vec<u8>> = index
        .iter()
        .filter(|e| !tree.contains(e.path.as_slice()))
        .map(|e| e.path)
        .collect();
    for p in stale {
        index
            .remove_path(Path::new(OsStr::from_bytes(&p)))
            .map_err(|e| internal("updating the index", e))?;
    }
    for e in scan.entries.iter().filter(|e| !cone.contains(&e.path)) {
        index
            .add(&skipped_entry(e))
            .map_err(|err| internal("updating the index", err))?;
    }
    index
        .write()
        .map_err(|e| internal("writing the index", e))?;
    if let Some(workdir) = repo.workdir() {
        let needed = needed_dirs(
            scan.entries.iter().filter(|e| cone.contains(&e.path)),
            Some(cone),
        )
        .unwrap_or_default();
        let mut parents: Vec<&Vec<u8>> = scan
            .dirs
            .iter()
            .filter(|d| cone.is_parent(d) && !needed.contains(d.as_slice()))
            .collect();
        // Deepest first; a directory that is not empty stays.
        parents.sort_by_key(|d| std::cmp::Reverse(d.len()));
        for d in parents {
            let _ = std::fs::remove_dir(workdir.join(OsStr::from_bytes(d)));
        }
    }
    Ok(())
}

/// Writes (or, without a cone, turns off) the sparse configuration, as `git sparse-checkout
/// set DIRS` (or `disable`) does. A repository that never was sparse is left as it is.
pub fn configure(repo: &Repository, cone: Option<&Cone>) -> Result<()> {
    let gitdir = repo.path();
    let worktree_config = gitdir.join("config.worktree");
    let patterns = gitdir.join("info").join("sparse-checkout");
    let io = |what: &str, e: std::io::Error| Error::destination(gitdir, format!("{what}: {e}"));
    let cfg_err = |e: git2::Error| {
        Error::destination(
            gitdir,
            format!("writing the git configuration: {}", e.message()),
        )
    };
    match cone {
        Some(cone) => {
            let mut config = repo.config().map_err(cfg_err)?;
            config
                .open_level(git2::ConfigLevel::Local)
                .and_then(|mut c| c.set_bool("extensions.worktreeConfig", true))
                .map_err(cfg_err)?;
            config = git2::Config::open(&worktree_config).map_err(cfg_err)?;
            config
                .set_bool("core.sparseCheckout", true)
                .map_err(cfg_err)?;
            config
                .set_bool("core.sparseCheckoutCone", true)
                .map_err(cfg_err)?;
            std::fs::create_dir_all(gitdir.join("info"))
                .map_err(|e| io("creating .git/info", e))?;
            std::fs::write(&patterns, cone.file_text())
                .map_err(|e| io("writing .git/info/sparse-checkout", e))?;
        }
        None if worktree_config.exists() || patterns.exists() => {
            let mut config = git2::Config::open(&worktree_config).map_err(cfg_err)?;
            config
                .set_bool("core.sparseCheckout", false)
                .map_err(cfg_err)?;
            config
                .set_bool("core.sparseCheckoutCone", false)
                .map_err(cfg_err)?;
            config.set_bool("index.sparse", false).map_err(cfg_err)?;
        }
        None => {}
    }
    Ok(())
}
