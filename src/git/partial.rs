//! `--filter`: a partial clone, configured as git 2.47 configures one
//! (`core.repositoryformatversion=1`, `remote.origin.promisor`, `remote.origin.partialclonefilter`,
//! each pack marked `.promisor`), so that git in the job's container fetches the other objects
//! when it needs them. The fetch itself carried the filter ([`super::http::partial`]); here,
//! after it, the objects the checkout needs and does not have yet (the commit's trees with
//! `tree:0`, the blobs of the working tree, or of the cone with `--sparse`) are fetched by id,
//! each kind in one request.

use git2::{Oid, Repository};
use tracing::info;

use super::tree::{self, MODE_GITLINK};
use super::{Fetched, Session};
use crate::error::{Error, Result};

/// The most ids in one request (git's lazy fetch sends them all at once; a bound keeps one
/// request body below a few MB).
const MAX_WANTS: usize = 50_000;

/// Configures the partial clone and fetches what the checkout of `fetched` lacks. Nothing to
/// do for a repository that never was partial and no `--filter`.
pub fn complete(repo: &Repository, fetched: &Fetched, s: &Session) -> Result<()> {
    let promisor = repo
        .config()
        .and_then(|c| c.get_bool("remote.origin.promisor"))
        .unwrap_or(false);
    let Some(filter) = s.want.filter.as_deref().or(promisor.then_some("")) else {
        return Ok(());
    };
    if !filter.is_empty() {
        use crate::remote_url::Scheme;
        if !matches!(s.remote.url.scheme, Scheme::Http | Scheme::Https) {
            tracing::warn!(
                url = %s.remote.url,
                "--filter={filter} is sent only over HTTP(S) by gitinit (libgit2 speaks SSH and git:// itself): every blob was fetched"
            );
        }
        configure(repo, filter)?;
    }
    mark_promisor_packs(repo);
    // The index names blobs outside the cone that are not here (git's own partial clones do
    // too); libgit2 refuses such entries unless told not to check.
    git2::opts::strict_object_creation(false);
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let commit = repo
        .find_commit(fetched.commit)
        .map_err(|e| internal("reading the fetched commit", e))?;
    if repo.find_tree(commit.tree_id()).is_err() {
        // `tree:0`: the trees come as git's lazy fetch brings them, all of them at once.
        info!("fetching the trees of {}", commit.id());
        fetch(repo, s, &[commit.tree_id()], Some("blob:none"))?;
    }
    let tree = commit
        .tree()
        .map_err(|e| internal("reading the fetched tree", e))?;
    let scan = tree::scan(repo, &tree).map_err(|detail| Error::UnsafeRepository {
        url: s.remote.url.to_string(),
        detail,
    })?;
    let odb = repo
        .odb()
        .map_err(|e| internal("opening the object database", e))?;
    let cone = s.want.sparse.as_ref();
    let mut missing: Vec<Oid> = scan
        .entries
        .iter()
        .filter(|e| e.mode != MODE_GITLINK && cone.is_none_or(|c| c.contains(&e.path)))
        .map(|e| e.oid)
        .filter(|oid| !odb.exists(*oid))
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    info!(
        blobs = missing.len(),
        "fetching the {} blob(s) the checkout needs",
        missing.len()
    );
    for chunk in missing.chunks(MAX_WANTS) {
        fetch(repo, s, chunk, None)?;
    }
    if let Some(oid) = missing.iter().find(|o| !odb.exists(**o)) {
        return Err(Error::BrokenRepo {
            url: s.remote.url.to_string(),
            detail: format!("the server did not send the blob {oid} the checkout needs"),
        });
    }
    Ok(())
}

fn fetch(repo: &Repository, s: &Session, wants: &[Oid], filter: Option<&str>) -> Result<()> {
    use crate::remote_url::Scheme;
    if !matches!(s.remote.url.scheme, Scheme::Http | Scheme::Https) {
        return Err(Error::invalid(format!(
            "{} lacks objects the checkout needs, and gitinit fetches objects by id only over HTTP(S): run without --filter, or start afresh with --clean",
            s.remote.url
        )));
    }
    let received = super::http::partial::fetch_objects(
        &s.http,
        &s.remote.url.fetch_url(),
        wants,
        filter,
        repo,
    )?;
    s.received_bytes.set(s.received_bytes.get() + received);
    mark_promisor_packs(repo);
    Ok(())
}

/// What `git clone --filter=SPEC` writes (git 2.47).
fn configure(repo: &Repository, filter: &str) -> Result<()> {
    let cfg_err = |e: git2::Error| {
        Error::destination(
            repo.path(),
            format!("writing the git configuration: {}", e.message()),
        )
    };
    let mut config = repo
        .config()
        .and_then(|c| c.open_level(git2::ConfigLevel::Local))
        .map_err(cfg_err)?;
    config
        .set_i32("core.repositoryformatversion", 1)
        .map_err(cfg_err)?;
    config
        .set_bool("remote.origin.promisor", true)
        .map_err(cfg_err)?;
    config
        .set_str("remote.origin.partialclonefilter", filter)
        .map_err(cfg_err)
}

/// Every pack came from the promisor remote: git marks each with an empty `.promisor` file.
fn mark_promisor_packs(repo: &Repository) {
    let dir = repo.path().join("objects").join("pack");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "pack") {
            let mark = path.with_extension("promisor");
            if !mark.exists() {
                let _ = std::fs::write(mark, "");
            }
        }
    }
}
