//! The shared cache (SPEC §11): many runs, one fetch. A directory shared by runs (a
//! ReadWriteMany volume, a node's hostPath) holds one bare repository per repository, named by a
//! hash of its credential-free URL. Each run lists the remote's refs with its own credentials
//! (the cache never shows a run what its credentials cannot read), then takes its objects from
//! the entry; when the entry lacks them, one run fetches them into it under an exclusive lock
//! while the others wait. The destination gets the entry's object files hard-linked (copied
//! across filesystems): it does not depend on the cache afterwards.
//!
//! Locks are open-file-description locks (`F_OFD_SETLK`), which NFS carries to the server (its
//! byte-range locks), where `flock` alone may stay local to one node. Readers hold a shared lock
//! while they link, a fill an exclusive one; eviction takes an entry only when nobody holds it.
//! A fill writes through libgit2's temporary files and renames, so a killed run leaves only
//! temporaries (removed by the next fill) or a pack without its index (the entry is rebuilt).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use git2::{Oid, Repository};
use tracing::{debug, info, warn};

use crate::config::CacheConfig;
use crate::error::{Error, Result};
use crate::git::{Fetched, Session};
use crate::remote_url::RepoUrl;
use crate::revision::{Advertisement, Target};

/// What the cache did for a run, for the report (`"cache"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// No pack fetched by this run: the entry had the objects (maybe after another run's fill).
    Hit,
    /// This run fetched into the entry (also when it rebuilt a damaged one).
    Filled,
    /// No `--cache`, or the cache could not be used.
    Off,
}

impl Use {
    pub fn as_str(self) -> &'static str {
        match self {
            Use::Hit => "hit",
            Use::Filled => "filled",
            Use::Off => "off",
        }
    }
}

/// The entry's name: a hash of the URL as [`RepoUrl::same_repository`] compares it (scheme,
/// host case, default port, `.git` and a trailing `/` ignored), without credentials.
pub fn entry_name(url: &RepoUrl) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(url.identity_text().as_bytes());
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// One cache entry: its lock file and its bare repository.
struct Entry {
    /// `DIR/<name>.git`
    path: PathBuf,
    /// `DIR/<name>.lock`: shared while a run reads the entry, exclusive while one changes it.
    /// Never removed, so that every run locks the same file.
    lock_path: PathBuf,
    /// `DIR/<name>.fill`: held by the one run that may fill the entry; the others wait on it.
    fill_path: PathBuf,
    dir: PathBuf,
    name: String,
}

/// Fetches the run's revision into `repo` through the cache; `fetch` is what a run without the
/// cache does (used when the cache cannot be). The cache's problems never fail the run: they are
/// warnings and the run goes on without it. Problems of the remote (credentials, revision) fail
/// the run as they would without the cache.
pub fn fetch_into(
    repo: &Repository,
    s: &Session,
    cache: &CacheConfig,
    retries: u32,
    fetch: &dyn Fn() -> Result<Fetched>,
) -> Result<(Fetched, Use)> {
    let entry = match Entry::new(&cache.dir, &s.remote.url) {
        Ok(e) => e,
        Err(why) => {
            warn!(cache = %cache.dir.display(), "the cache cannot be used: {why}; going without it");
            return Ok((fetch()?, Use::Off));
        }
    };
    let shown = s.remote.url.to_string();
    // The run's own credentials prove it may read the repository, whatever the cache holds.
    let adv = crate::retry::retrying(retries, || crate::git::fetch::ls_remote(s))?;
    let target = adv.resolve(&s.want.revision, &shown)?;
    let lock = match Lock::open(&entry.lock_path) {
        Ok(l) => l,
        Err(e) => {
            warn!(cache = %cache.dir.display(), "the cache cannot be used: cannot open {}: {e}; going without it", entry.lock_path.display());
            return Ok((fetch()?, Use::Off));
        }
    };
    let started = Instant::now();
    lock.wait(
        Kind::Shared,
        "another run is changing the cache entry: waiting for it",
    )?;
    let mut used = Use::Hit;
    let commit = match entry.lookup(&adv, &target, s) {
        Some(c) => c,
        None => {
            // Would-be fillers queue on the fill lock, not on the entry's: readers keep
            // linking meanwhile, and a reader never waits for the fill lock while it holds the
            // entry's (two readers upgrading would wait for each other forever).
            lock.release();
            let filling = Lock::open(&entry.fill_path).map_err(|e| {
                Error::destination(
                    &entry.fill_path,
                    format!("cannot open the cache's lock: {e}"),
                )
            })?;
            filling.wait(
                Kind::Exclusive,
                "another run is filling the cache entry: waiting for it",
            )?;
            lock.wait(Kind::Shared, "")?;
            match entry.lookup(&adv, &target, s) {
                // Filled by the run this one waited for.
                Some(c) => c,
                None => {
                    lock.release();
                    // Readers still linking finish first; nobody else fills meanwhile.
                    lock.wait(
                        Kind::Exclusive,
                        "runs are taking objects from the cache entry: waiting to fill it",
                    )?;
                    used = Use::Filled;
                    entry.fill(s, retries)?;
                    // Readers may come in while this run links; nobody may evict.
                    lock.wait(Kind::Shared, "")?;
                    drop(filling);
                    match entry.lookup(&adv, &target, s) {
                        Some(c) => c,
                        None => {
                            // The remote moved between this run's listing and the fill's.
                            warn!("the remote's refs changed while the cache was filled: fetching without the cache");
                            drop(lock);
                            return Ok((fetch()?, Use::Off));
                        }
                    }
                }
            }
        }
    };
    let waited = started.elapsed();
    let linked = entry.link_into(repo).map_err(|e| {
        Error::destination(
            repo.path(),
            format!(
                "cannot take the objects from the cache {}: {e}",
                entry.dir.display()
            ),
        )
    })?;
    set_refs(repo, &adv, &target, s).map_err(|e| {
        Error::Internal(format!(
            "writing the refs of the cached objects: {}",
            e.message()
        ))
    })?;
    lock.touch();
    drop(lock);
    match used {
        Use::Hit => info!(
            cache = %entry.path.display(),
            linked_bytes = linked,
            waited_ms = waited.as_millis() as u64,
            "cache hit: {commit} taken from the cache ({linked} bytes linked), nothing fetched"
        ),
        _ => info!(
            cache = %entry.path.display(),
            received_bytes = s.received_bytes.get(),
            linked_bytes = linked,
            "cache filled: fetched {commit} into the cache ({} bytes received)",
            s.received_bytes.get()
        ),
    }
    if used == Use::Filled {
        if let Some(max) = cache.max_size {
            evict(&cache.dir, max, &entry.name);
        }
    }
    Ok((Fetched { target, commit }, used))
}

impl Entry {
    /// Creates the cache directory when missing and proves it writable.
    fn new(dir: &Path, url: &RepoUrl) -> std::result::Result<Entry, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create it: {e}"))?;
        let entry = Entry::at(dir, entry_name(url));
        Lock::open(&entry.lock_path).map_err(|e| format!("cannot write there: {e}"))?;
        Ok(entry)
    }

    /// The entry `name` of the cache `dir` and its lock files, whether they exist or not.
    fn at(dir: &Path, name: String) -> Entry {
        Entry {
            path: dir.join(format!("{name}.git")),
            lock_path: dir.join(format!("{name}.lock")),
            fill_path: dir.join(format!("{name}.fill")),
            dir: dir.to_path_buf(),
            name,
        }
    }

    /// The commit the run wants, when the entry holds it with all the run needs: its history
    /// (to the depth asked), the advertised ref objects, and undamaged packs.
    fn lookup(&self, adv: &Advertisement, target: &Target, s: &Session) -> Option<Oid> {
        if !self.is_real_dir() {
            return None;
        }
        let repo = Repository::open_bare(&self.path).ok()?;
        if !packs_sound(&self.path.join("objects/pack")) {
            debug!("the cache entry has a damaged pack");
            return None;
        }
        let commit = match target {
            Target::Commit { oid, .. } => *oid,
            Target::ShortCommit(prefix) => {
                let obj = repo.revparse_single(prefix).ok()?;
                obj.peel_to_commit().ok()?.id()
            }
            t => adv.peeled(&t.ref_name()?)?,
        };
        repo.find_commit(commit).ok()?;
        // The ref's own object (an annotated tag) must be there too.
        let direct = match target {
            Target::Commit { tip: Some(tip), .. } => adv.get(tip),
            t => t.ref_name().and_then(|n| adv.get(&n)),
        };
        if let Some(d) = direct {
            repo.find_object(d, None).ok()?;
        }
        if s.want.all_branches {
            for r in adv
                .refs
                .iter()
                .filter(|r| r.name.starts_with("refs/heads/"))
            {
                repo.find_commit(r.oid).ok()?;
            }
        }
        enough_history(&repo, commit, s.want.depth).then_some(commit)
    }

    /// Fetches the run's revision from the remote into the entry (exclusive lock held): what
    /// a killed fill left is removed first, and a damaged entry is made anew.
    fn fill(&self, s: &Session, retries: u32) -> Result<()> {
        let repo = self.open_for_fill().map_err(|e| {
            Error::destination(&self.path, format!("cannot prepare the cache entry: {e}"))
        })?;
        // Full history wanted from a shallow entry: deepen it to the whole history.
        let depth = match s.want.depth {
            Some(d) => Some(d as i32),
            None if repo.is_shallow() => Some(crate::git::fetch::UNSHALLOW),
            None => None,
        };
        info!(cache = %self.path.display(), "filling the cache entry from the remote");
        crate::retry::retrying(retries, || crate::git::fetch::fetch_at(&repo, s, depth))?;
        Ok(())
    }

    /// The entry's repository, ready for a fetch: leftovers of a killed fill removed; a
    /// damaged or unreadable entry moved away and created anew (in a temporary directory that
    /// is renamed into place, so there is never a half-made entry).
    fn open_for_fill(&self) -> std::io::Result<Repository> {
        // What a run killed while making or discarding this entry left (we hold its lock).
        for e in fs::read_dir(&self.dir)?.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().into_owned();
            let ours = [".tmp-", ".trash-"]
                .iter()
                .any(|p| n.strip_prefix(p).is_some_and(|r| r.starts_with(&self.name)));
            if ours {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        if fs::symlink_metadata(&self.path).is_ok() && !self.is_real_dir() {
            // Not ours (a symlink, a file): moved away as it is, never walked through.
            warn!(cache = %self.path.display(), "the cache entry is not a directory: making it anew");
            self.discard()?;
        }
        if self.path.exists() {
            let _ = crate::dest::remove_leftovers(&self.path);
            let sound = packs_sound(&self.path.join("objects/pack"));
            match Repository::open_bare(&self.path) {
                Ok(repo) if sound => return Ok(repo),
                _ => {
                    warn!(cache = %self.path.display(), "the cache entry is damaged: making it anew");
                    self.discard()?;
                }
            }
        }
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}-{}",
            self.name,
            std::process::id(),
            nanos()
        ));
        let repo = Repository::init_bare(&tmp).map_err(io_err)?;
        drop(repo);
        fs::rename(&tmp, &self.path)?;
        Repository::open_bare(&self.path).map_err(io_err)
    }

    /// The entry is a directory of its own, not a symlink to one.
    fn is_real_dir(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok_and(|m| m.is_dir())
    }

    /// Moves the entry out of the way (one rename, never half-removed under its name) and
    /// removes it.
    fn discard(&self) -> std::io::Result<()> {
        let trash = self.dir.join(format!(
            ".trash-{}-{}-{}",
            self.name,
            std::process::id(),
            nanos()
        ));
        fs::rename(&self.path, &trash)?;
        if fs::symlink_metadata(&trash)?.is_dir() {
            fs::remove_dir_all(&trash)
        } else {
            fs::remove_file(&trash)
        }
    }

    /// Hard-links (or copies) the entry's object files into `repo`, and its shallow
    /// boundary; returns the bytes of the files taken.
    fn link_into(&self, repo: &Repository) -> std::io::Result<u64> {
        let bytes = crate::git::local::link_cached_objects(
            &self.path.join("objects"),
            &repo.path().join("objects"),
        )?;
        let theirs = fs::read_to_string(self.path.join("shallow")).unwrap_or_default();
        if !theirs.trim().is_empty() {
            let ours_path = repo.path().join("shallow");
            let ours = fs::read_to_string(&ours_path).unwrap_or_default();
            let mut lines: Vec<&str> = ours.lines().chain(theirs.lines()).collect();
            lines.retain(|l| !l.trim().is_empty());
            lines.sort_unstable();
            lines.dedup();
            let tmp = repo.path().join("shallow.gitinit-tmp");
            fs::write(&tmp, lines.join("\n") + "\n")?;
            fs::rename(&tmp, &ours_path)?;
        }
        Ok(bytes)
    }
}

/// Whether the history of `commit` in `repo` reaches `depth` commits (all of it for `None`)
/// before a shallow boundary.
fn enough_history(repo: &Repository, commit: Oid, depth: Option<u32>) -> bool {
    if !repo.is_shallow() {
        return true;
    }
    let shallow: std::collections::HashSet<Oid> = fs::read_to_string(repo.path().join("shallow"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Oid::from_str(l.trim()).ok())
        .collect();
    let Some(depth) = depth else {
        return false;
    };
    // Breadth-first to depth - 1 generations: a boundary closer than that cuts what the run
    // asked for.
    let mut frontier = vec![commit];
    let mut seen = std::collections::HashSet::new();
    for generation in 0..depth {
        let mut next = vec![];
        for c in frontier {
            if !seen.insert(c) {
                continue;
            }
            if shallow.contains(&c) {
                if generation + 1 < depth {
                    return false;
                }
                continue;
            }
            match repo.find_commit(c) {
                Ok(commit) => next.extend(commit.parent_ids()),
                Err(_) => return false,
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    true
}

/// Every pack has its index, and its last 20 bytes are the checksum its index records: a pack
/// cut short (a full volume, a killed copy) or without its index is damage.
fn packs_sound(pack_dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(pack_dir) else {
        return true;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        let Some(stem) = name.strip_suffix(".pack").or(name.strip_suffix(".idx")) else {
            continue;
        };
        if !stem.starts_with("pack-") {
            continue;
        }
        let (pack, idx) = (format!("{stem}.pack"), format!("{stem}.idx"));
        if !names.contains(&pack) || !names.contains(&idx) {
            return false;
        }
        if name.ends_with(".pack") {
            let trailer = |p: &Path, from_end: i64| -> std::io::Result<[u8; 20]> {
                let mut f = File::open(p)?;
                f.seek(SeekFrom::End(-from_end))?;
                let mut b = [0u8; 20];
                f.read_exact(&mut b)?;
                Ok(b)
            };
            // The index ends with the pack's checksum, then its own.
            match (
                trailer(&pack_dir.join(&pack), 20),
                trailer(&pack_dir.join(&idx), 40),
            ) {
                (Ok(a), Ok(b)) if a == b => {}
                _ => return false,
            }
        }
    }
    true
}

/// The refs a fetch of the target would have written in the destination, now that the
/// objects are there: the target's ref, every branch with `--no-single-branch`, and the tags
/// whose objects arrived (as libgit2's tag auto-follow), unless `--no-tags`.
fn set_refs(
    repo: &Repository,
    adv: &Advertisement,
    target: &Target,
    s: &Session,
) -> std::result::Result<(), git2::Error> {
    let set = |name: &str, oid: Oid| -> std::result::Result<(), git2::Error> {
        if repo.refname_to_id(name).ok() != Some(oid) {
            repo.reference(name, oid, true, "gitinit: from the cache")?;
        }
        Ok(())
    };
    let named = match target {
        Target::Commit { tip: Some(tip), .. } => Some(Target::from_ref_name(tip)),
        Target::Commit { .. } | Target::ShortCommit(_) => None,
        t => Some(t.clone()),
    };
    if let Some(t) = named {
        if let (Some(name), Some(local)) = (t.ref_name(), t.local_ref()) {
            if let Some(oid) = adv.get(&name) {
                set(&local, oid)?;
            }
        }
    }
    for r in adv.refs.iter().filter(|r| !r.name.ends_with("^{}")) {
        if let Some(b) = r.name.strip_prefix("refs/heads/") {
            if s.want.all_branches {
                set(&format!("refs/remotes/origin/{b}"), r.oid)?;
            }
        } else if r.name.starts_with("refs/tags/")
            && !s.want.no_tags
            && repo.find_object(r.oid, None).is_ok()
            && adv
                .peeled(&r.name)
                .is_some_and(|c| repo.find_commit(c).is_ok())
        {
            set(&r.name, r.oid)?;
        }
    }
    Ok(())
}

/// Removes the least recently used entries until the cache is under `max` bytes; an entry in
/// use (locked by any run) is never taken, nor `keep` (this run's).
fn evict(dir: &Path, max: u64, keep: &str) {
    let mut entries = vec![];
    let Ok(read) = fs::read_dir(dir) else {
        return;
    };
    for e in read.filter_map(|e| e.ok()) {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".git") else {
            continue;
        };
        let used = fs::metadata(dir.join(format!("{name}.lock")))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        entries.push((used, name.to_string(), dir_size(&e.path())));
    }
    let mut total: u64 = entries.iter().map(|e| e.2).sum();
    entries.sort();
    for (_, name, size) in entries {
        if total <= max {
            break;
        }
        if name == keep {
            continue;
        }
        let entry = Entry::at(dir, name.clone());
        let Ok(lock) = Lock::open(&entry.lock_path) else {
            continue;
        };
        if !lock.try_take(Kind::Exclusive) {
            debug!(entry = %name, "in use: not evicted");
            continue;
        }
        match entry.discard() {
            Ok(()) => {
                total = total.saturating_sub(size);
                info!(entry = %name, bytes = size, "evicted a least recently used cache entry");
            }
            Err(e) => warn!(entry = %name, "cannot evict the cache entry: {e}"),
        }
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(read) = fs::read_dir(path) else {
        return 0;
    };
    read.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shared,
    Exclusive,
}

impl Kind {
    fn l_type(self) -> libc::c_int {
        match self {
            Kind::Shared => libc::F_RDLCK,
            Kind::Exclusive => libc::F_WRLCK,
        }
    }
}

/// An open-file-description lock on the whole lock file: released when the file is closed
/// (also by a killed process), and carried to the server on NFS.
struct Lock {
    file: File,
}

impl Lock {
    fn open(path: &Path) -> std::io::Result<Lock> {
        use std::os::unix::fs::OpenOptionsExt;
        // A lock file planted as a symlink would have this run create a file where it points.
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        Ok(Lock { file })
    }

    /// One `fcntl` lock call on the whole file: `F_OFD_SETLK` (try) or `F_OFD_SETLKW` (wait).
    fn set(&self, cmd: libc::c_int, l_type: libc::c_int) -> std::io::Result<()> {
        // SAFETY: a zeroed flock is a valid value of the C struct (start 0, length 0: the whole
        // file); the fields we need are set below.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = l_type as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: the descriptor is open for the lifetime of `self`; `fl` outlives the call.
        match unsafe { libc::fcntl(self.file.as_raw_fd(), cmd, &fl) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    fn try_take(&self, kind: Kind) -> bool {
        self.set(libc::F_OFD_SETLK, kind.l_type()).is_ok()
    }

    /// Takes (or converts to) the lock, waiting as long as it takes, in the kernel (a release
    /// wakes the waiter at once): the run's `--timeout` ends the wait, and a holder that dies
    /// releases the lock.
    fn wait(&self, kind: Kind, waiting: &str) -> Result<()> {
        if self.try_take(kind) {
            return Ok(());
        }
        if !waiting.is_empty() {
            info!("{waiting}");
        }
        loop {
            match self.set(libc::F_OFD_SETLKW, kind.l_type()) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Internal(format!("locking the cache entry: {e}")));
                }
            }
        }
    }

    fn release(&self) {
        let _ = self.set(libc::F_OFD_SETLK, libc::F_UNLCK);
    }

    /// Records this use for least-recently-used eviction.
    fn touch(&self) {
        let _ = self.file.set_modified(SystemTime::now());
    }
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn io_err(e: git2::Error) -> std::io::Error {
    std::io::Error::other(e.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RepoUrl {
        RepoUrl::parse(s, Path::new("/")).unwrap()
    }

    #[test]
    fn one_entry_per_repository_whatever_the_spelling() {
        let a = entry_name(&url("https://GitHub.com/org/repo.git"));
        for same in [
            "https://github.com/org/repo",
            "https://github.com:443/org/repo/",
            "https://user:token@github.com/org/repo.git",
        ] {
            assert_eq!(entry_name(&url(same)), a, "{same}");
        }
        for other in [
            "http://github.com/org/repo",
            "https://github.com/org/other",
            "https://gitlab.com/org/repo",
        ] {
            assert_ne!(entry_name(&url(other)), a, "{other}");
        }
        assert_eq!(
            entry_name(&url("git@github.com:org/repo.git")),
            entry_name(&url("ssh://git@github.com:22/org/repo"))
        );
    }

    #[test]
    fn a_pack_without_its_index_or_cut_short_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert!(packs_sound(p));
        let sum = [7u8; 20];
        let mut pack = b"PACK....".to_vec();
        pack.extend_from_slice(&sum);
        let mut idx = vec![0u8; 100];
        idx.extend_from_slice(&sum);
        idx.extend_from_slice(&[9u8; 20]);
        fs::write(p.join("pack-1.pack"), &pack).unwrap();
        assert!(!packs_sound(p), "no index");
        fs::write(p.join("pack-1.idx"), &idx).unwrap();
        assert!(packs_sound(p));
        fs::write(p.join("pack-1.pack"), &pack[..pack.len() - 5]).unwrap();
        assert!(!packs_sound(p), "cut short");
        fs::remove_file(p.join("pack-1.pack")).unwrap();
        assert!(!packs_sound(p), "index without pack");
    }
}
