//! A local source (a path or `file://`) is read directly, as `git clone --local` does: its refs
//! are read from the repository and its object files hard-linked (copied across filesystems)
//! into the destination. libgit2's local transport instead re-packs every object in-process,
//! recomputing deltas: 5-30x slower than git and several times its memory (perf-notes).

use std::fs;
use std::path::Path;

use git2::{ObjectType, Oid, Repository};
use tracing::{debug, info};

use super::{Fetched, Session};
use crate::error::{Error, Result};
use crate::revision::{Advertisement, RemoteRef, Target};

pub fn fetch(repo: &Repository, s: &Session) -> Result<Fetched> {
    let url = s.remote.url.to_string();
    let src = Repository::open(&s.remote.url.path).map_err(|e| Error::RepoNotFound {
        url: url.clone(),
        detail: e.message().to_string(),
    })?;
    let adv = advertisement(&src).map_err(|e| internal("reading the source's refs", e))?;
    let target = adv.resolve(&s.want.revision, &url)?;
    debug!(?target, "resolved the revision in the local repository");
    let linked = link_objects(&src.path().join("objects"), &repo.path().join("objects")).map_err(
        |e| match e {
            LinkError::Refused(Refused(detail)) => Error::UnsafeRepository {
                url: url.clone(),
                detail,
            },
            LinkError::Io(e) => {
                Error::destination(repo.path(), format!("cannot copy objects from {url}: {e}"))
            }
        },
    )?;
    s.received_bytes.set(s.received_bytes.get() + linked);
    info!(bytes = linked, "linked the objects of {url}");

    let set = |name: &str, oid: Oid| {
        repo.reference(name, oid, true, "gitinit: local clone")
            .map(|_| ())
            .map_err(|e| internal("writing a ref", e))
    };
    let commit = match &target {
        Target::ShortCommit(prefix) => match src.revparse_single(prefix) {
            Ok(obj) => obj
                .peel_to_commit()
                .map(|c| c.id())
                .map_err(|_| not_found(prefix, &url))?,
            Err(e) if e.code() == git2::ErrorCode::Ambiguous => {
                return Err(Error::AmbiguousRevision {
                    prefix: prefix.clone(),
                    url,
                })
            }
            Err(_) => return Err(not_found(prefix, &url)),
        },
        Target::Commit { oid, .. } => {
            src.find_commit(*oid)
                .map_err(|_| not_found(&oid.to_string(), &url))?;
            *oid
        }
        named => {
            let name = named.ref_name().expect("named targets have a ref");
            let oid = adv.peeled(&name).ok_or_else(|| not_found(&name, &url))?;
            let direct = adv
                .refs
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.oid)
                .unwrap_or(oid);
            set(
                &named.local_ref().expect("named targets have a local ref"),
                direct,
            )?;
            oid
        }
    };
    for r in adv.refs.iter().filter(|r| !r.name.ends_with("^{}")) {
        if let Some(b) = r
            .name
            .strip_prefix("refs/heads/")
            .filter(|_| s.want.all_branches)
        {
            set(&format!("refs/remotes/origin/{b}"), r.oid)?;
        }
        if r.name.starts_with("refs/tags/") && !s.want.no_tags {
            set(&r.name, r.oid)?;
        }
    }
    Ok(Fetched { target, commit })
}

fn advertisement(src: &Repository) -> std::result::Result<Advertisement, git2::Error> {
    let mut refs = vec![];
    for r in src.references()? {
        let r = r?;
        let (Ok(name), Ok(resolved)) = (r.name().map(str::to_string), r.resolve()) else {
            continue;
        };
        let Some(oid) = resolved.target() else {
            continue;
        };
        if let Ok(obj) = src.find_object(oid, None) {
            if obj.kind() == Some(ObjectType::Tag) {
                if let Ok(c) = obj.peel(ObjectType::Commit) {
                    refs.push(RemoteRef {
                        name: format!("{name}^{{}}"),
                        oid: c.id(),
                    });
                }
            }
        }
        refs.push(RemoteRef { name, oid });
    }
    let head = src.find_reference("HEAD").ok();
    let head_target = head
        .as_ref()
        .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string));
    if let Some(oid) = head.and_then(|h| h.resolve().ok()).and_then(|h| h.target()) {
        refs.push(RemoteRef {
            name: "HEAD".into(),
            oid,
        });
    }
    Ok(Advertisement { refs, head_target })
}

/// The shared cache's objects into a destination, as a local source's (the cache is ours, but
/// on a shared volume: no symlink is followed there either).
pub fn link_cached_objects(from: &Path, to: &Path) -> std::io::Result<u64> {
    link_objects(from, to).map_err(|e| match e {
        LinkError::Refused(Refused(detail)) => std::io::Error::other(detail),
        LinkError::Io(e) => e,
    })
}

/// Why a local source is refused: it is the source's fault (exit 4), not the destination's.
struct Refused(String);

/// Hard-links (or copies) every pack and loose object not already present; returns the bytes.
/// Nothing under the source's `objects/` may be a symlink: a hard link or copy through one would
/// carry any file of this machine (a mounted deploy key) into the destination (git refuses the
/// same: "symlink exists, refusing to clone with --local", CVE-2022-39253).
fn link_objects(from: &Path, to: &Path) -> std::result::Result<u64, LinkError> {
    let no_symlink = |p: &Path| -> std::result::Result<fs::FileType, LinkError> {
        let t = fs::symlink_metadata(p)?.file_type();
        if t.is_symlink() {
            let rel = p.strip_prefix(from.parent().unwrap_or(from)).unwrap_or(p);
            return Err(LinkError::Refused(Refused(format!(
                "`{}` in the source is a symlink, and a local clone never follows one (git: \"symlink exists, refusing to clone with --local\")",
                rel.display()
            ))));
        }
        Ok(t)
    };
    no_symlink(from)?;
    let mut bytes = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_fanout = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if name != "pack" && !is_fanout {
            continue;
        }
        if !no_symlink(&entry.path())?.is_dir() {
            continue;
        }
        fs::create_dir_all(to.join(&*name))?;
        for file in fs::read_dir(entry.path())? {
            let file = file?;
            let fname = file.file_name();
            let keep = fname.to_string_lossy();
            let wanted = is_fanout || [".pack", ".idx", ".rev"].iter().any(|e| keep.ends_with(e));
            let dest = to.join(&*name).join(&fname);
            if !wanted || fs::symlink_metadata(&dest).is_ok() {
                continue;
            }
            if !no_symlink(&file.path())?.is_file() {
                continue;
            }
            if fs::hard_link(file.path(), &dest).is_err() {
                fs::copy(file.path(), &dest)?;
            }
            bytes += file.metadata()?.len();
        }
    }
    // Objects the source borrows from elsewhere stay reachable through the same alternates.
    // A relative one is relative to the source's objects: rewritten as an absolute path, as
    // git's clone does, or it would point at nothing (or something else) from the destination.
    let info = from.join("info");
    let alternates = info.join("alternates");
    let has = |p: &Path| fs::symlink_metadata(p).is_ok();
    if has(&info) && no_symlink(&info)?.is_dir() && has(&alternates) {
        no_symlink(&alternates)?;
        let text = fs::read_to_string(&alternates)?;
        let lines: Vec<String> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let p = Path::new(l);
                if p.is_absolute() {
                    l.to_string()
                } else {
                    normalize(&from.join(p)).to_string_lossy().into_owned()
                }
            })
            .collect();
        fs::create_dir_all(to.join("info"))?;
        fs::write(to.join("info/alternates"), lines.join("\n") + "\n")?;
    }
    Ok(bytes)
}

enum LinkError {
    Refused(Refused),
    Io(std::io::Error),
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError::Io(e)
    }
}

/// `a/b/../c` as `a/c`, without asking the filesystem (git's `normalize_path_copy`).
fn normalize(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn internal(what: &str, e: git2::Error) -> Error {
    Error::Internal(format!("{what}: {}", e.message()))
}

fn not_found(rev: &str, url: &str) -> Error {
    Error::RevisionNotFound {
        revision: rev.to_string(),
        url: url.to_string(),
        suggestions: vec![],
    }
}
