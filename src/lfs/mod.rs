//! Git LFS after the checkout (SPEC §10): every LFS pointer of the checked-out tree (a path
//! with `filter=lfs` in the `.gitattributes`, whose blob is a pointer) is replaced by its
//! object, downloaded through the batch API, verified (size and SHA-256) and kept under
//! `.git/lfs/objects/` as git-lfs keeps it, so a rerun downloads nothing. No git-lfs binary.
//!
//! The files are replaced atomically (a temporary file renamed over the pointer), so after any
//! failure a path holds its pointer or its whole object. The index keeps the pointer's blob
//! with the new file's stat data, and the file's time is set two seconds back: git then sees
//! the file as unchanged without re-reading it, with or without git-lfs installed (git re-hashes
//! a file written in the same second as the index, and without the LFS filter that hash is not
//! the pointer's).

mod batch;
mod filter;
mod pointer;
mod ssh;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use git2::{AttrCheckFlags, Repository};
use serde::Serialize;
use tracing::{debug, info};

pub use filter::Filter;
use pointer::{Pointer, MAX_POINTER_SIZE};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::git::checkout::sparse::SKIP_WORKTREE;
use crate::git::Session;

/// How many objects download at once (git-lfs's `lfs.concurrenttransfers` default).
const PARALLEL: usize = 8;

/// What the stage is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--lfs auto` (and no `GIT_LFS_SKIP_SMUDGE=1`): replace the pointers.
    pub enabled: bool,
    pub filter: Filter,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            enabled: true,
            filter: Filter::all(),
        }
    }
}

/// The report's `lfs` field: the files of the tree now holding their LFS contents, their
/// total size, and what this run downloaded.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub objects: u64,
    pub bytes: u64,
    pub downloaded_bytes: u64,
}

/// One LFS file of the tree.
struct Item {
    path: String,
    pointer: Pointer,
    /// The pointer blob as it is in the tree (and so in a file not yet replaced).
    blob: Vec<u8>,
    executable: bool,
}

/// Replaces the LFS pointers of `repo`'s working tree by their objects. `cfg` is the
/// configuration of this repository (a submodule's own, for a submodule).
pub fn pull(repo: &Repository, s: &Session, cfg: &Config) -> Result<Summary> {
    if !cfg.lfs.enabled {
        return Ok(Summary::default());
    }
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(Summary::default());
    };
    let items = find(repo, &cfg.lfs.filter)?;
    if items.is_empty() {
        return Ok(Summary::default());
    }
    let store = repo.path().join("lfs/objects");
    let have = |p: &Pointer| {
        std::fs::metadata(store.join(p.store_path()))
            .is_ok_and(|m| m.is_file() && m.len() == p.size)
    };
    let mut seen = HashSet::new();
    let missing: Vec<&Pointer> = items
        .iter()
        .map(|i| &i.pointer)
        .filter(|p| seen.insert(p.oid.clone()) && !have(p))
        .collect();
    let downloaded = if missing.is_empty() {
        0
    } else {
        fetch(repo, s, cfg, &items, &missing)?
    };
    let summary = place(repo, &workdir, &store, &items, downloaded)?;
    info!(
        lfs_objects = summary.objects,
        lfs_bytes = summary.bytes,
        downloaded_bytes = summary.downloaded_bytes,
        "LFS: {} file(s) hold their contents ({} downloaded)",
        summary.objects,
        crate::progress::human_bytes(summary.downloaded_bytes)
    );
    Ok(summary)
}

/// The LFS files of the index: `filter=lfs` by git's attribute rules (nested
/// `.gitattributes` apply), a blob that is a pointer, and a path the filter wants.
fn find(repo: &Repository, filter: &Filter) -> Result<Vec<Item>> {
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let index = repo.index().map_err(|e| internal("opening the index", e))?;
    let odb = repo
        .odb()
        .map_err(|e| internal("opening the object database", e))?;
    // Most trees have no LFS at all: look at the attributes files before asking about each path.
    // A sparse checkout's entries outside the cone are not in the working tree (and, in a
    // partial clone, their blobs may not be here): not ours to replace.
    let skipped = |e: &git2::IndexEntry| e.flags_extended & SKIP_WORKTREE != 0;
    let mentions_lfs = index.iter().filter(|e| !skipped(e)).any(|e| {
        let path = &e.path;
        (path == b".gitattributes" || path.ends_with(b"/.gitattributes"))
            && odb
                .read(e.id)
                .is_ok_and(|o| o.data().windows(3).any(|w| w == b"lfs"))
    });
    if !mentions_lfs {
        return Ok(vec![]);
    }
    let mut items = vec![];
    for e in index.iter().filter(|e| !skipped(e)) {
        let mode = e.mode;
        if mode != 0o100644 && mode != 0o100755 {
            continue;
        }
        let Ok(path) = String::from_utf8(e.path.clone()) else {
            continue;
        };
        let lfs = repo
            .get_attr(Path::new(&path), "filter", AttrCheckFlags::INDEX_ONLY)
            .ok()
            .flatten()
            == Some("lfs");
        if !lfs || !filter.wants(&path) {
            continue;
        }
        let small = odb
            .read_header(e.id)
            .is_ok_and(|(size, _)| size <= MAX_POINTER_SIZE);
        if !small {
            continue; // committed without git-lfs: the file is its own contents
        }
        let blob = odb
            .read(e.id)
            .map_err(|err| internal("reading a pointer", err))?
            .data()
            .to_vec();
        if let Some(pointer) = Pointer::parse(&blob) {
            items.push(Item {
                path,
                pointer,
                blob,
                executable: mode == 0o100755,
            });
        }
    }
    Ok(items)
}

/// Downloads `missing` into the store, in parallel; returns the bytes downloaded.
fn fetch(
    repo: &Repository,
    s: &Session,
    cfg: &Config,
    items: &[Item],
    missing: &[&Pointer],
) -> Result<u64> {
    let path_of = |oid: &str| {
        items
            .iter()
            .find(|i| i.pointer.oid == oid)
            .map(|i| i.path.clone())
            .unwrap_or_default()
    };
    let lfsconfig = repo
        .head()
        .and_then(|h| h.peel_to_tree())
        .ok()
        .and_then(|t| t.get_path(Path::new(".lfsconfig")).ok().map(|e| e.id()))
        .and_then(|id| repo.find_blob(id).ok())
        .map(|b| String::from_utf8_lossy(b.content()).into_owned());
    if cfg.remote.url.is_local() && lfsconfig.as_deref().and_then(batch::lfs_url).is_none() {
        return copy_local(repo, cfg, missing, &path_of);
    }
    let Some(endpoint) = batch::Endpoint::find(cfg, lfsconfig.as_deref())? else {
        return Err(Error::invalid(format!(
            "{} holds LFS files, and gitinit downloads LFS objects only for http(s), ssh and local remotes: {}",
            cfg.remote.url,
            crate::hints::LFS_OFF
        )));
    };
    let total: u64 = missing.iter().map(|p| p.size).sum();
    info!(
        objects = missing.len(),
        bytes = total,
        endpoint = %crate::redact::url(&endpoint.url),
        "downloading {} LFS object(s), {}",
        missing.len(),
        crate::progress::human_bytes(total)
    );
    let client = batch::Client::new(&endpoint, cfg);
    let answers = client.batch(missing)?;
    let mut plan = vec![];
    for p in missing {
        match answers.get(&p.oid) {
            Some(batch::Answer::Download(d)) => plan.push((*p, d.clone())),
            Some(batch::Answer::Missing) | None => {
                return Err(Error::LfsObjectMissing {
                    url: crate::redact::url(&endpoint.url),
                    path: path_of(&p.oid),
                    oid: p.oid.clone(),
                })
            }
        }
    }
    let store = repo.path().join("lfs/objects");
    let tmp = repo.path().join("lfs/tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::destination(&tmp, format!("cannot create it: {e}")))?;
    let done = AtomicU64::new(0);
    let result = crate::parallel::run(
        plan.len(),
        PARALLEL,
        || Ok(()),
        |(), i| {
            let (pointer, download) = &plan[i];
            one(&client, pointer, download, &store, &tmp, &done).map_err(|e| match e {
                Error::LfsObjectMissing { url, oid, .. } => Error::LfsObjectMissing {
                    url,
                    path: path_of(&oid),
                    oid,
                },
                e => e,
            })
        },
        || {
            s.progress
                .borrow_mut()
                .lfs(done.load(Ordering::Relaxed), total)
        },
        Duration::from_millis(50),
        "an LFS download",
    );
    s.progress
        .borrow_mut()
        .lfs(done.load(Ordering::Relaxed), total);
    result?;
    Ok(total)
}

/// A local source keeps its objects in its own `lfs/objects/` (git-lfs's layout): each is
/// copied into the store, verified as a download would be. Returns the bytes copied.
fn copy_local(
    repo: &Repository,
    cfg: &Config,
    missing: &[&Pointer],
    path_of: &dyn Fn(&str) -> String,
) -> Result<u64> {
    use sha2::{Digest, Sha256};
    let shown = cfg.remote.url.to_string();
    let source = Repository::open(&cfg.remote.url.path)
        .map(|r| r.path().join("lfs/objects"))
        .map_err(|e| Error::RepoNotFound {
            url: shown.clone(),
            detail: e.message().to_string(),
        })?;
    let store = repo.path().join("lfs/objects");
    let mut copied = 0;
    for p in missing {
        let from = source.join(p.store_path());
        // Never through a symlink: a local source is read as git's --local clone reads it.
        let real_file = std::fs::symlink_metadata(&from).is_ok_and(|m| m.file_type().is_file());
        if !real_file {
            return Err(Error::LfsObjectMissing {
                url: shown.clone(),
                path: path_of(&p.oid),
                oid: p.oid.clone(),
            });
        }
        let data = std::fs::read(&from)
            .map_err(|e| Error::destination(&from, format!("cannot read an LFS object: {e}")))?;
        let digest = batch::hex(&Sha256::digest(&data));
        if data.len() as u64 != p.size || digest != p.oid {
            return Err(Error::BrokenRepo {
                url: shown.clone(),
                detail: format!("its LFS object {} does not match its pointer", p.oid),
            });
        }
        let to = store.join(p.store_path());
        let tmp = to.with_extension("part");
        std::fs::create_dir_all(to.parent().unwrap_or(&store))
            .and_then(|()| std::fs::write(&tmp, &data))
            .and_then(|()| std::fs::rename(&tmp, &to))
            .map_err(|e| Error::destination(&to, format!("cannot store an LFS object: {e}")))?;
        copied += p.size;
    }
    Ok(copied)
}

/// Downloads one object to a temporary file and moves it into the store.
fn one(
    client: &batch::Client<'_>,
    pointer: &Pointer,
    download: &batch::Download,
    store: &Path,
    tmp: &Path,
    done: &AtomicU64,
) -> Result<()> {
    let part = tmp.join(format!("{}.part-{}", pointer.oid, std::process::id()));
    let _ = std::fs::remove_file(&part);
    let counted = AtomicU64::new(0);
    let r = client.download(pointer, download, &part, &|n| {
        counted.fetch_add(n, Ordering::Relaxed);
        done.fetch_add(n, Ordering::Relaxed);
    });
    if let Err(e) = r {
        let _ = std::fs::remove_file(&part);
        // What a failed attempt counted is downloaded again by the next.
        done.fetch_sub(counted.load(Ordering::Relaxed), Ordering::Relaxed);
        return Err(e);
    }
    let to = store.join(pointer.store_path());
    let parent = to.parent().unwrap_or(store);
    std::fs::create_dir_all(parent)
        .and_then(|()| std::fs::rename(&part, &to))
        .map_err(|e| Error::destination(&to, format!("cannot store an LFS object: {e}")))?;
    debug!(oid = %pointer.oid, size = pointer.size, "stored LFS object");
    Ok(())
}

/// Puts each object in place of its pointer (a file that holds anything else is left: the
/// checkout already restored what the tree says), then records the files' stat data in the
/// index.
fn place(
    repo: &Repository,
    workdir: &Path,
    store: &Path,
    items: &[Item],
    downloaded: u64,
) -> Result<Summary> {
    let internal = |what: &str, e: git2::Error| Error::Internal(format!("{what}: {}", e.message()));
    let mut summary = Summary {
        downloaded_bytes: downloaded,
        ..Summary::default()
    };
    let back = SystemTime::now() - Duration::from_secs(2);
    let mut replaced: BTreeMap<String, std::fs::Metadata> = BTreeMap::new();
    for item in items {
        let path = workdir.join(&item.path);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => m,
            // Removed by the job, or not a file: the next checkout puts it back.
            _ => continue,
        };
        if meta.len() == item.pointer.size && !holds(&path, &item.blob) {
            summary.objects += 1;
            summary.bytes += item.pointer.size;
            continue; // already the object
        }
        if !holds(&path, &item.blob) {
            continue; // changed by someone else; not ours to overwrite
        }
        let object = store.join(item.pointer.store_path());
        let tmp = path.with_file_name(format!(
            ".{}.gitinit-lfs",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        let write = || -> std::io::Result<std::fs::Metadata> {
            let _ = std::fs::remove_file(&tmp);
            std::fs::copy(&object, &tmp)?;
            let mode = if item.executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
            let f = std::fs::OpenOptions::new().write(true).open(&tmp)?;
            f.set_times(
                std::fs::FileTimes::new()
                    .set_modified(back)
                    .set_accessed(back),
            )?;
            drop(f);
            std::fs::rename(&tmp, &path)?;
            std::fs::symlink_metadata(&path)
        };
        let meta = write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::destination(&path, format!("cannot write the LFS file: {e}"))
        })?;
        summary.objects += 1;
        summary.bytes += item.pointer.size;
        replaced.insert(item.path.clone(), meta);
    }
    if !replaced.is_empty() {
        let mut index = repo.index().map_err(|e| internal("opening the index", e))?;
        for (path, meta) in &replaced {
            let Some(mut entry) = index.get_path(Path::new(path), 0) else {
                continue;
            };
            crate::git::set_stat(&mut entry, meta);
            index
                .add(&entry)
                .map_err(|e| internal("updating the index", e))?;
        }
        index
            .write()
            .map_err(|e| internal("writing the index", e))?;
    }
    Ok(summary)
}

/// Whether the file at `path` holds exactly `blob` (a pointer: small).
fn holds(path: &PathBuf, blob: &[u8]) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = Vec::with_capacity(blob.len() + 1);
    f.take(MAX_POINTER_SIZE as u64 + 1)
        .read_to_end(&mut buf)
        .is_ok_and(|_| buf == blob)
}
