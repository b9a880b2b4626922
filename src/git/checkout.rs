//! Writes the working tree at the fetched commit: a branch becomes a local branch tracking
//! `origin/<branch>`; anything else leaves a detached HEAD (SPEC §4).

use git2::build::CheckoutBuilder;
use git2::Repository;
use tracing::instrument;

use super::fetch::{forget_commit_ref, Fetched};
use super::Session;
use crate::error::{Error, Result};
use crate::revision::Target;

#[instrument(skip_all, fields(commit = %fetched.commit))]
pub fn checkout(repo: &Repository, fetched: &Fetched, s: &Session) -> Result<()> {
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let commit = repo
        .find_commit(fetched.commit)
        .map_err(|e| internal("reading the fetched commit", e))?;
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
    let mut cb = CheckoutBuilder::new();
    // A rerun over an old tree must end identical to a fresh clone: no leftovers.
    cb.force().remove_untracked(true).remove_ignored(true);
    cb.progress(|_path, done, total| s.progress.borrow_mut().checkout(done, total));
    // Not `reset --hard`: libgit2's reset replaces the checkout strategy with plain FORCE,
    // which would keep untracked files.
    repo.checkout_head(Some(&mut cb)).map_err(|e| {
        let m = e.message().to_string();
        if e.class() == git2::ErrorClass::Os
            || m.contains("No space")
            || m.contains("Permission")
            || m.contains("Read-only")
        {
            Error::destination(
                repo.workdir().unwrap_or(repo.path()),
                format!("cannot write the working tree: {m}"),
            )
        } else {
            internal("checking out", e)
        }
    })?;
    s.progress.borrow_mut().finish();
    forget_commit_ref(repo);
    Ok(())
}
