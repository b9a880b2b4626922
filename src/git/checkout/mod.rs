//! Writes the working tree at the fetched commit: a branch becomes a local branch tracking
//! `origin/<branch>`; anything else leaves a detached HEAD (SPEC §4).

mod fresh;
pub mod sparse;

use std::os::unix::ffi::OsStrExt;

use git2::build::CheckoutBuilder;
use git2::{CheckoutNotificationType, Repository};
use tracing::instrument;

use super::fetch::forget_commit_ref;
use super::{Fetched, Session};
use crate::error::{Error, Result};
use crate::revision::Target;

#[instrument(skip_all, fields(commit = %fetched.commit))]
pub fn checkout(repo: &Repository, fetched: &Fetched, s: &Session) -> Result<()> {
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let commit = repo
        .find_commit(fetched.commit)
        .map_err(|e| internal("reading the fetched commit", e))?;
    let old_tree = repo.head().and_then(|h| h.peel_to_tree()).ok();
    // Detach first: libgit2 refuses to force-move the branch HEAD is on (a rerun).
    repo.set_head_detached(commit.id())
        .map_err(|e| internal("detaching HEAD", e))?;
    if let Target::Branch(name) = &fetched.target {
        let mut branch = repo
            .branch(name, &commit, true)
            .map_err(|e| internal("creating the local branch", e))?;
        branch
            .set_upstream(Some(&format!("origin/{name}")))
            .map_err(|e| internal("setting the branch's upstream", e))?;
        repo.set_head(&format!("refs/heads/{name}"))
            .map_err(|e| internal("pointing HEAD at the branch", e))?;
    }
    let tree = commit.tree().map_err(|e| Error::UnsafeRepository {
        url: s.remote.url.to_string(),
        detail: format!(
            "the tree of {} cannot be read: {}",
            commit.id(),
            e.message()
        ),
    })?;
    let scan = super::tree::scan(repo, &tree).map_err(|detail| Error::UnsafeRepository {
        url: s.remote.url.to_string(),
        detail,
    })?;
    // libgit2 rewrites only the files whose content changed; when the attributes changed, the
    // others may need other line ends too: start from an empty tree, as a fresh clone does.
    let old_tree = old_tree.filter(|t| t.id() != tree.id());
    if old_tree
        .as_ref()
        .is_some_and(|t| fresh::attributes(t) != scan.attributes)
    {
        tracing::info!("the .gitattributes changed: writing every file anew");
        fresh::empty_work_tree(repo).map_err(|e| cannot_write(repo, e))?;
        let mut index = repo.index().map_err(|e| internal("opening the index", e))?;
        index
            .clear()
            .map_err(|e| internal("clearing the index", e))?;
        index
            .write()
            .map_err(|e| internal("writing the index", e))?;
    }
    let cone = s.want.sparse.as_ref();
    if fresh::applies(repo) && fresh::write(repo, &scan, cone, s)? {
        sparse::configure(repo, cone)?;
        s.progress.borrow_mut().finish();
        forget_commit_ref(repo);
        return Ok(());
    }
    // What the job left where the tree needs a directory (a symlink, a file) goes first, so
    // that no write below passes through a symlink the tree did not put there.
    clear_blockers(repo, &scan).map_err(|e| cannot_write(repo, e))?;
    // What the job changed goes without asking, as it must; but not silently.
    let (reset, removed) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    let limit = sparse::limit(repo, &scan, cone)?;
    let mut cb = CheckoutBuilder::new();
    // Without a .gitattributes there is nothing to convert (gitinit reads no core.autocrlf), but
    // libgit2 would still look up attributes for every file: ~14 failed readlinks each.
    if scan.attributes.is_empty() {
        cb.disable_filters(true);
    }
    // A rerun over an old tree must end identical to a fresh clone: no leftovers.
    cb.force().remove_untracked(true).remove_ignored(true);
    limit.apply(&mut cb);
    cb.progress(|_path, done, total| s.progress.borrow_mut().checkout(done, total));
    cb.notify_on(
        CheckoutNotificationType::CONFLICT
            | CheckoutNotificationType::DIRTY
            | CheckoutNotificationType::UNTRACKED
            | CheckoutNotificationType::IGNORED,
    );
    cb.notify(|kind, path, _baseline, _target, _workdir| {
        // What an earlier sparse checkout left out is missing by design, not changed.
        if path.is_some_and(|p| limit.skipped.contains(p.as_os_str().as_bytes())) {
            return true;
        }
        // HEAD already points at the new commit, so libgit2 sees a file that only changed
        // upstream (or left the tree) as differing from it: what still holds the old
        // commit's content is no local change.
        if path.is_some_and(|p| as_in(repo, old_tree.as_ref(), p)) {
            return true;
        }
        tracing::debug!(?kind, path = ?path, "a local change the checkout discards");
        let gone = CheckoutNotificationType::UNTRACKED | CheckoutNotificationType::IGNORED;
        let counter = if kind.intersects(gone) {
            &removed
        } else {
            &reset
        };
        counter.set(counter.get() + 1);
        true
    });
    // Not `reset --hard`: libgit2's reset replaces the checkout strategy with plain FORCE,
    // which would keep untracked files.
    repo.checkout_head(Some(&mut cb)).map_err(|e| {
        let m = e.message().to_string();
        if e.class() == git2::ErrorClass::Os
            || m.contains("No space")
            || m.contains("Permission")
            || m.contains("Read-only")
        {
            cannot_write(repo, m)
        } else if let Some(broken) = super::classify::corrupt_object(&e, &s.remote.url.to_string())
        {
            broken
        } else {
            internal("checking out", e)
        }
    })?;
    drop(cb);
    if let Some(cone) = cone {
        sparse::complete(repo, &scan, cone)?;
    }
    sparse::configure(repo, cone)?;
    s.progress.borrow_mut().finish();
    let (reset, removed) = (reset.get(), removed.get());
    if reset + removed > 0 {
        let dir = repo.workdir().unwrap_or(repo.path()).display().to_string();
        tracing::warn!(
            dest = %dir,
            reset,
            removed,
            "discarded local changes in {dir}: {reset} modified file(s) reset and {removed} untracked file(s) or director(ies) removed, so the checkout matches the revision"
        );
    }
    forget_commit_ref(repo);
    Ok(())
}

/// Whether the working tree at `path` is as the previous commit `tree` left it, so the job did
/// not change it: the same file (or symlink) content, or nothing where the previous commit had
/// nothing (a file that only arrives now). Content through filters (line ends) does not
/// compare equal, and counts as changed.
fn as_in(repo: &Repository, tree: Option<&git2::Tree<'_>>, path: &std::path::Path) -> bool {
    let Some(workdir) = repo.workdir() else {
        return false;
    };
    let entry = tree.and_then(|t| t.get_path(path).ok());
    let at = workdir.join(path);
    let meta = match std::fs::symlink_metadata(&at) {
        Ok(m) => m,
        Err(_) => return entry.is_none(),
    };
    let Some(entry) = entry else {
        return false;
    };
    let held = if meta.file_type().is_symlink() {
        std::fs::read_link(&at).ok().and_then(|t| {
            git2::Oid::hash_object(git2::ObjectType::Blob, t.as_os_str().as_bytes()).ok()
        })
    } else if meta.is_file() {
        git2::Oid::hash_file(git2::ObjectType::Blob, &at).ok()
    } else {
        None
    };
    held == Some(entry.id())
}

/// Removes whatever stands where the tree has a directory or a submodule but is no real
/// directory: a symlink (never followed: only the link goes) or a file.
fn clear_blockers(repo: &Repository, scan: &super::tree::Scan) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let Some(workdir) = repo.workdir() else {
        return Ok(());
    };
    let gitlinks = scan
        .entries
        .iter()
        .filter(|e| e.mode == super::tree::MODE_GITLINK)
        .map(|e| &e.path);
    for path in scan.dirs.iter().chain(gitlinks) {
        let at = workdir.join(std::ffi::OsStr::from_bytes(path));
        match std::fs::symlink_metadata(&at) {
            Ok(m) if !m.is_dir() => {
                tracing::debug!(path = %super::tree::shown(path), "removing what stands where the tree has a directory");
                std::fs::remove_file(&at)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn cannot_write(repo: &Repository, detail: impl std::fmt::Display) -> Error {
    Error::destination(
        repo.workdir().unwrap_or(repo.path()),
        format!("cannot write the working tree: {detail}"),
    )
}
