//! Fetch only what the revision needs: list the remote's refs once, decide the [`Target`], and
//! fetch its one refspec on the same connection. A commit named by SHA is asked for directly;
//! when the server refuses that (no allow-*-sha1-in-want, which libgit2 needs because it only
//! speaks protocol v0/v1), branches and tags are fetched instead, deepening a shallow history
//! until the commit turns up.

use git2::{Direction, ErrorCode, Oid, Remote, Repository};
use tracing::{debug, info, instrument};

use super::{Fetched, Session};
use crate::error::{Error, Result};
use crate::revision::{Advertisement, RemoteRef, Target, ALL_BRANCHES_AND_TAGS, COMMIT_REF};

/// libgit2 depth for "no longer shallow" (GIT_FETCH_DEPTH_UNSHALLOW).
pub const UNSHALLOW: i32 = i32::MAX;

fn advertisement(
    remote: &git2::RemoteConnection<'_, '_, '_>,
) -> Result<Advertisement, git2::Error> {
    let refs = remote
        .list()?
        .iter()
        .map(|h| RemoteRef {
            name: h.name().to_string(),
            oid: h.oid(),
        })
        .collect();
    let head_target = remote
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().map(str::to_string).ok())
        .filter(|b| !b.is_empty());
    Ok(Advertisement { refs, head_target })
}

/// `ls-remote`: the refs of the remote, with no repository needed.
#[instrument(skip_all)]
pub fn ls_remote(s: &Session) -> Result<Advertisement> {
    let url = s.remote.url.fetch_url();
    let mut remote = Remote::create_detached(url.as_str()).map_err(|e| s.classify(e))?;
    s.reset_attempt();
    let _http = s.http_scope();
    let conn = remote
        .connect_auth(Direction::Fetch, Some(s.callbacks()), None)
        .map_err(|e| s.classify(e))?;
    advertisement(&conn).map_err(|e| s.classify(e))
}

/// Fetches the configured revision from a remote into `repo` and returns the commit it
/// resolves to.
pub fn fetch(repo: &Repository, s: &Session) -> Result<Fetched> {
    fetch_at(repo, s, s.want.depth.map(|d| d as i32))
}

/// [`fetch`] at another depth than the run's ([`UNSHALLOW`]: the whole history of a shallow
/// repository), for the shared cache.
#[instrument(skip_all, fields(url = %s.remote.url))]
pub fn fetch_at(repo: &Repository, s: &Session, depth: Option<i32>) -> Result<Fetched> {
    let url = s.remote.url.fetch_url();
    let shown = s.remote.url.to_string();
    let mut remote = repo.remote_anonymous(&url).map_err(|e| s.classify(e))?;
    s.reset_attempt();
    let _http = s.http_scope();
    let mut conn = remote
        .connect_auth(Direction::Fetch, Some(s.callbacks()), None)
        .map_err(|e| s.classify(e))?;
    let adv = advertisement(&conn).map_err(|e| s.classify(e))?;
    let target = adv.resolve(&s.want.revision, &shown)?;
    debug!(?target, "resolved the revision against the remote's refs");

    if let Some(commit) = already_here(repo, s, &adv, &target) {
        info!(commit = %commit, "the destination already has {commit}: nothing to fetch");
        return Ok(Fetched { target, commit });
    }

    let mut refspecs = target.refspecs();
    if s.want.all_branches && !refspecs.iter().any(|r| r == ALL_BRANCHES_AND_TAGS[0]) {
        refspecs.push(ALL_BRANCHES_AND_TAGS[0].to_string());
    }

    let commit = match &target {
        Target::ShortCommit(prefix) => {
            drop(conn);
            info!("`{prefix}` is no branch tip: fetching branches and tags to find it");
            let p = prefix.clone();
            fetch_history(repo, s, depth, &|repo| lookup_prefix(repo, &p, &shown))?
                .ok_or_else(|| not_found(prefix, &shown))?
        }
        Target::Commit { oid, tip: None } => {
            let oid = *oid;
            info!("fetching commit {oid}");
            match fetch_refspecs(repo, conn.remote(), s, &refspecs, depth) {
                Ok(()) => oid,
                Err(e) if is_sha_want_refused(&e) => {
                    drop(conn);
                    info!("the server does not serve commits by SHA ({}): fetching branches and tags to find {oid}", e.message());
                    fetch_history(repo, s, depth, &|repo| {
                        Ok(has_commit(repo, oid).then_some(oid))
                    })?
                    .ok_or_else(|| not_found(&oid.to_string(), &shown))?
                }
                Err(e) => return Err(s.classify(e)),
            }
        }
        _ => {
            info!(refspecs = %refspecs.join(" "), "fetching");
            fetch_refspecs(repo, conn.remote(), s, &refspecs, depth).map_err(|e| s.classify(e))?;
            match &target {
                Target::Commit { oid, .. } => *oid,
                t => {
                    let local = t.local_ref().expect("named targets have a local ref");
                    repo.find_reference(&local)
                        .and_then(|r| r.peel_to_commit())
                        .map_err(|e| {
                            Error::Internal(format!("reading back {local}: {}", e.message()))
                        })?
                        .id()
                }
            }
        }
    };
    if !has_commit(repo, commit) {
        return Err(not_found(&commit.to_string(), &shown));
    }
    Ok(Fetched { target, commit })
}

fn fetch_refspecs(
    repo: &Repository,
    remote: &mut Remote<'_>,
    s: &Session,
    refspecs: &[String],
    depth: Option<i32>,
) -> std::result::Result<(), git2::Error> {
    let _http = s.http_scope();
    let no_refs = repo.references().is_ok_and(|mut r| r.next().is_none());
    s.http.set_nothing_to_negotiate(no_refs);
    let _gix = super::indexer::arm(repo, no_refs);
    let mut fo = s.fetch_options(depth);
    let result = remote.fetch(refspecs, Some(&mut fo), Some("gitinit: fetch"));
    s.received_bytes
        .set(s.received_bytes.get() + remote.stats().received_bytes() as u64);
    if result.is_ok() {
        s.progress.borrow_mut().fetched(&remote.stats());
    }
    result
}

/// Fetches all branches and tags, deepening a shallow history until `found` finds the commit
/// or the history is complete.
fn fetch_history(
    repo: &Repository,
    s: &Session,
    mut depth: Option<i32>,
    found: &dyn Fn(&Repository) -> Result<Option<Oid>>,
) -> Result<Option<Oid>> {
    let url = s.remote.url.fetch_url();
    loop {
        let mut remote = repo.remote_anonymous(&url).map_err(|e| s.classify(e))?;
        s.reset_attempt();
        let refspecs: Vec<String> = ALL_BRANCHES_AND_TAGS
            .iter()
            .map(|r| r.to_string())
            .collect();
        debug!(?depth, "fetching branches and tags");
        fetch_refspecs(repo, &mut remote, s, &refspecs, depth).map_err(|e| s.classify(e))?;
        if let Some(oid) = found(repo)? {
            return Ok(Some(oid));
        }
        depth = match depth {
            Some(d) if d != UNSHALLOW && repo.is_shallow() => {
                let next = if d >= 1000 {
                    UNSHALLOW
                } else {
                    (d * 4).max(50)
                };
                info!("not found in the last {d} commits: deepening");
                Some(next)
            }
            _ => return Ok(None),
        };
    }
}

/// A rerun whose revision the destination already holds (same tip as advertised) needs no
/// fetch: libgit2 would still negotiate (two more requests for a shallow fetch) to receive an
/// empty pack. The local ref is pointed at the advertised object, as the fetch would have.
/// Not when the history must grow: a shallow destination and a request for more than depth 1.
fn already_here(
    repo: &Repository,
    s: &Session,
    adv: &Advertisement,
    target: &Target,
) -> Option<Oid> {
    if s.want.all_branches || (repo.is_shallow() && s.want.depth != Some(1)) {
        return None;
    }
    let (name, commit) = match target {
        Target::Commit { oid, tip: None } => return has_commit(repo, *oid).then_some(*oid),
        Target::Commit {
            oid,
            tip: Some(tip),
        } => (tip.clone(), *oid),
        Target::ShortCommit(_) => return None,
        t => {
            let name = t.ref_name()?;
            let commit = adv.peeled(&name)?;
            (name, commit)
        }
    };
    let advertised = adv.get(&name)?;
    if !has_commit(repo, commit) || repo.find_object(advertised, None).is_err() {
        return None;
    }
    let local = Target::from_ref_name(&name).local_ref()?;
    if repo.refname_to_id(&local).ok() != Some(advertised) {
        repo.reference(&local, advertised, true, "gitinit: already fetched")
            .ok()?;
    }
    Some(commit)
}

fn has_commit(repo: &Repository, oid: Oid) -> bool {
    repo.find_commit(oid).is_ok()
}

fn lookup_prefix(repo: &Repository, prefix: &str, url: &str) -> Result<Option<Oid>> {
    match repo.revparse_single(prefix) {
        Ok(obj) => match obj.peel_to_commit() {
            Ok(c) => Ok(Some(c.id())),
            Err(_) => Err(Error::RevisionNotFound {
                revision: prefix.to_string(),
                url: url.to_string(),
                suggestions: vec![],
            }),
        },
        Err(e) if e.code() == ErrorCode::Ambiguous => Err(Error::AmbiguousRevision {
            prefix: prefix.to_string(),
            url: url.to_string(),
        }),
        Err(_) => Ok(None),
    }
}

fn is_sha_want_refused(e: &git2::Error) -> bool {
    let m = e.message().to_ascii_lowercase();
    // Servers answer an unknown or unadvertised SHA in several ways: libgit2 refusing up front,
    // upload-pack's "not our ref", or a dropped response.
    m.contains("cannot fetch a specific object")
        || m.contains("not our ref")
        || m.contains("want")
        || m.contains("could not read from remote repository")
}

fn not_found(rev: &str, url: &str) -> Error {
    Error::RevisionNotFound {
        revision: rev.to_string(),
        url: url.to_string(),
        suggestions: vec![],
    }
}

/// Drops the temporary ref a fetch by SHA wrote; the checkout now holds the commit.
pub fn forget_commit_ref(repo: &Repository) {
    if let Ok(mut r) = repo.find_reference(COMMIT_REF) {
        let _ = r.delete();
    }
}
