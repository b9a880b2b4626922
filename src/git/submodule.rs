//! `--recurse-submodules`: every submodule, nested ones too, at the commit the superproject
//! records. libgit2's own `submodule.update` clones the default branch and, with a depth, then
//! misses the recorded commit; here each submodule is fetched like the top repository, by that
//! commit (directly, or through its branches and tags when the server refuses SHA wants).

use std::path::{Path, PathBuf};

use git2::Repository;
use tracing::info;

use super::Session;
use crate::config::{CredentialStore, Remote, Want};
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::remote_url::RepoUrl;
use crate::report::Submodule;
use crate::revision::Revision;

/// Brings one submodule's repository to its recorded commit (the same stages as the top
/// repository: fetch, checkout, LFS), given where it is, what to fetch, and its session.
pub type Stages<'a> = &'a dyn Fn(&Repository, &Remote, &Want, &Session) -> Result<()>;

/// Updates the submodules of `repo` (reached through `parent`), recursively; `prefix` is the
/// path of `repo` inside the top checkout; `shallow`: `--shallow-submodules`; `parent_want`
/// gives `--no-tags`. Returns what was
/// checked out, for the report.
pub fn update(
    repo: &Repository,
    parent: &Remote,
    parent_want: &Want,
    shallow: bool,
    s: &Session,
    prefix: &str,
    stages: Stages<'_>,
) -> Result<Vec<Submodule>> {
    let mut done = vec![];
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let submodules = repo
        .submodules()
        .map_err(|e| internal("reading .gitmodules", e))?;
    let index = repo.index().map_err(|e| internal("opening the index", e))?;
    for mut sm in submodules {
        // Outside a sparse checkout's cone: not in the working tree, so not fetched (git too
        // leaves it alone).
        let skipped = index
            .get_path(sm.path(), 0)
            .is_some_and(|e| e.flags_extended & super::checkout::sparse::SKIP_WORKTREE != 0);
        if skipped {
            info!(submodule = %sm.path().display(), "submodule outside the sparse checkout: left out");
            continue;
        }
        let path = format!("{prefix}{}", sm.path().display());
        let wrap = |e: Error| Error::Submodule {
            path: path.clone(),
            source: Box::new(e),
        };
        let Some(commit) = sm.head_id() else {
            continue; // listed in .gitmodules but not recorded in the tree: nothing to check out
        };
        let raw_url = sm.url().ok().flatten().unwrap_or_default().to_string();
        let url_text = resolve_relative(&parent.url.to_string(), &raw_url);
        let cwd = repo.workdir().unwrap_or(Path::new("/"));
        let url = RepoUrl::parse(&url_text, cwd).map_err(wrap)?;
        let refuse = |detail: String| {
            wrap(Error::UnsafeRepository {
                url: parent.url.to_string(),
                detail,
            })
        };
        // git's `protocol.file.allow=user`: what came over the network may not make us read
        // this machine's files (a mounted key, another checkout, a bare repository carried in
        // the superproject's own tree).
        if url.is_local() && !parent.url.is_local() {
            return Err(refuse(format!(
                "its submodule `{path}` has the local URL `{url}`, and a repository fetched over the network may not read files of this machine (git: \"transport 'file' not allowed\")"
            )));
        }
        let name = sm.name_bytes().to_vec();
        if gix_validate::submodule::name(name.as_slice().into()).is_err() {
            return Err(refuse(format!(
                "its submodule `{path}` has the name `{}`, which would place its repository outside .git/modules",
                super::tree::shown(&name)
            )));
        }
        let workdir = repo.workdir().ok_or_else(|| {
            wrap(Error::Internal(
                "a superproject without a working tree".into(),
            ))
        })?;
        let sm_dir = real_dirs(workdir, sm.path(), true).map_err(&refuse)?;
        // libgit2 keeps the submodule's repository under its path (git: under its name).
        let modules_dir = real_dirs(repo.path(), &Path::new("modules").join(sm.path()), false)
            .map_err(&refuse)?;
        let (remote, want) =
            sub_target(parent, parent_want.no_tags, url, commit, shallow).map_err(wrap)?;
        info!(submodule = %path, url = %remote.url, commit = %commit, "updating submodule");
        sm.init(false)
            .map_err(|e| wrap(internal("initialising the submodule", e)))?;
        let sub = match sm.open() {
            Ok(r) => r,
            // Its repository is there but the working tree lost its `.git` file (the directory
            // was replaced, and the checkout made it anew): point them at each other again.
            Err(_) if modules_dir.join("HEAD").is_file() => Repository::open(&modules_dir)
                .and_then(|r| r.set_workdir(&sm_dir, true).map(|()| r))
                .map_err(|e| wrap(internal("reopening the submodule repository", e)))?,
            Err(_) => sm
                .repo_init(true)
                .map_err(|e| wrap(internal("creating the submodule repository", e)))?,
        };
        // A `.git` file left in the submodule's directory (the job's container can write the
        // volume) could point libgit2 at any repository and working tree.
        let same = |a: &Path, b: &Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b);
        if !(same(sub.path(), &modules_dir) && sub.workdir().is_some_and(|w| same(w, &sm_dir))) {
            return Err(wrap(Error::destination(
                &sm_dir,
                format!(
                    "the submodule's .git points outside the destination's .git/modules: {}",
                    crate::hints::START_AFRESH
                ),
            )));
        }
        // libgit2 opens a submodule whose directory lost its `.git` file (a sparse checkout
        // left it out, then took it back) through `.git/modules`, but git needs the file.
        if std::fs::symlink_metadata(sm_dir.join(".git")).is_err() {
            write_gitlink(&sm_dir, &modules_dir).map_err(|e| {
                wrap(Error::destination(
                    &sm_dir,
                    format!("cannot write the submodule's .git file: {e}"),
                ))
            })?;
        }
        if sub.find_remote("origin").is_err() {
            sub.remote("origin", &remote.url.to_string())
                .map_err(|e| wrap(internal("adding the submodule's origin", e)))?;
        }
        let progress = crate::progress::Progress::new(true, Default::default(), false);
        let session = Session::new(&remote, &want, s.dest, progress);
        stages(&sub, &remote, &want, &session).map_err(wrap)?;
        s.received_bytes
            .set(s.received_bytes.get() + session.received_bytes.get());
        done.push(Submodule {
            path: path.clone(),
            url: remote.url.to_string(),
            commit: commit.to_string(),
        });
        done.extend(update(
            &sub,
            &remote,
            &want,
            shallow,
            s,
            &format!("{path}/"),
            stages,
        )?);
    }
    Ok(done)
}

/// `dir/.git` pointing at `gitdir` by a relative path, as git writes it (`gitdir: ../../.git/
/// modules/x`), so that the destination may be mounted elsewhere.
fn write_gitlink(dir: &Path, gitdir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (from, to) = (std::fs::canonicalize(dir)?, std::fs::canonicalize(gitdir)?);
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in from.components().skip(common) {
        rel.push("..");
    }
    rel.extend(to.components().skip(common));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(".git"))?
        .write_all(format!("gitdir: {}\n", rel.display()).as_bytes())
}

/// `base/rel`, where every component of `rel` that exists is a real directory, never a symlink
/// (nor a file); the last one is created when `create` is set. Refuses paths with `..`.
fn real_dirs(base: &Path, rel: &Path, create: bool) -> std::result::Result<PathBuf, String> {
    let mut at = base.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let std::path::Component::Normal(name) = part else {
            return Err(format!(
                "the submodule path `{}` leaves its directory",
                rel.display()
            ));
        };
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let what = if m.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "a file"
                };
                return Err(format!(
                    "`{}` is {what}, and a submodule is never written through one",
                    at.strip_prefix(base).unwrap_or(&at).display()
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if create && i + 1 == parts.len() {
                    std::fs::create_dir(&at)
                        .map_err(|e| format!("cannot create `{}`: {e}", at.display()))?;
                }
                if !create {
                    break;
                }
            }
            Err(e) => return Err(format!("cannot read `{}`: {e}", at.display())),
        }
    }
    Ok(base.join(rel))
}

/// Where the submodule is and what to fetch of it: its URL and recorded commit; the parent's credentials
/// when it lives on the same host, else the credentials store's; depth 1 with
/// `--shallow-submodules` (git's rule: `--depth` alone does not make submodules shallow).
fn sub_target(
    parent: &Remote,
    no_tags: bool,
    url: RepoUrl,
    commit: git2::Oid,
    shallow: bool,
) -> Result<(Remote, Want)> {
    let mut remote = parent.clone();
    let same_host = url.scheme == parent.url.scheme
        && url.host_str().eq_ignore_ascii_case(parent.url.host_str())
        && url.port == parent.url.port;
    remote.credentials = match (&url.credentials, same_host) {
        (Some(c), _) => Some(c.clone()),
        (None, true) => parent.credentials.clone(),
        (None, false) => from_store(&url, parent.credentials_store.as_ref()),
    };
    remote.proxy = crate::proxy::choose(&url, &parent.proxy_env)?;
    let want = Want {
        revision: Revision::Commit(commit),
        revision_text: Some(commit.to_string()),
        depth: (shallow && !url.is_local()).then_some(1),
        all_branches: false,
        no_tags,
        sparse: None,
        filter: None,
    };
    remote.url = url;
    Ok((remote, want))
}

fn from_store(url: &RepoUrl, store: Option<&CredentialStore>) -> Option<Credentials> {
    let text = &store?.0;
    let scheme = match url.scheme {
        crate::remote_url::Scheme::Https => "https",
        crate::remote_url::Scheme::Http => "http",
        _ => return None,
    };
    Credentials::from_store(text, scheme, url.host_str(), url.port, &url.path)
}

/// git's rule for `./x` and `../x` submodule URLs: relative to the superproject's URL, each
/// `../` dropping one path component.
pub fn resolve_relative(parent: &str, relative: &str) -> String {
    if !(relative.starts_with("./") || relative.starts_with("../")) {
        return relative.to_string();
    }
    let mut base = parent.trim_end_matches('/').to_string();
    let mut rest = relative;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            // Drop the last component; for scp-like `host:path` the colon also separates.
            match base.rfind(['/', ':']) {
                Some(i) if !base[..i].ends_with('/') || base[..i].ends_with(":/") => {
                    base.truncate(i)
                }
                _ => {}
            }
        } else {
            break;
        }
    }
    let sep = if base.ends_with(':') { "" } else { "/" };
    format!("{base}{sep}{rest}")
}

#[cfg(test)]
mod tests {
    use super::resolve_relative as r;

    #[test]
    fn relative_urls_resolve_like_git() {
        assert_eq!(
            r("https://h/org/super.git", "../sub.git"),
            "https://h/org/sub.git"
        );
        assert_eq!(
            r("https://h/org/super.git/", "../../other/sub.git"),
            "https://h/other/sub.git"
        );
        assert_eq!(
            r("https://h/org/super.git", "./sub.git"),
            "https://h/org/super.git/sub.git"
        );
        assert_eq!(r("git@h:org/super.git", "../sub.git"), "git@h:org/sub.git");
        assert_eq!(
            r("/srv/repos/super.git", "../sub.git"),
            "/srv/repos/sub.git"
        );
        assert_eq!(r("https://h/a.git", "https://x/y.git"), "https://x/y.git");
    }
}
