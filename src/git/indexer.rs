//! The pack of a fresh clone is indexed by gitoxide's `gix-pack` instead of libgit2's indexer.
//! libgit2 inflates, hashes and resolves every delta on one thread, and only after the last byte
//! arrived; on real histories (long delta chains) that is most of a full clone. gix-pack reads
//! entries while the pack streams in and resolves the deltas on every core, hashing with SHA-1
//! collision detection as git does (`sha1dc`): 3x less time to index serde's or tokio's
//! history here. Its `.idx` is the file git writes, byte for byte, so libgit2 reads it like its
//! own.
//!
//! How: libgit2 hands a fetch's pack to the first object-database backend, by priority, that
//! offers a `writepack`. [`arm`] adds one such backend to the repository's database, above
//! libgit2's own. Armed, it takes the pack; disarmed (the guard dropped), it passes, and
//! libgit2's indexer takes it. A pack whose header counts fewer than [`SMALL_PACK`] objects is
//! handed to libgit2's indexer all the same, from the backend. It is armed only when the
//! repository has no refs, so the fetch sends no `have` and the pack cannot be thin (deltas
//! against objects we hold: libgit2 completes those from its database, which gix-pack here
//! cannot see); reruns and deepening keep libgit2.
//!
//! The bytes go through a bounded channel to a worker thread: a server faster than the indexer
//! waits on the socket, as with git. The worker writes the pack to a temporary file as gix-pack
//! reads it, maps it to resolve the deltas (dropping the pages it read as it goes, so that the
//! pack does not count whole in the peak RSS), and moves pack and index into place. Nothing
//! outside `objects/pack` is written; the temporaries there (`.tmp-gitinit-*`) are removed on
//! failure and swept by [`crate::dest`] after a kill.

use std::ffi::{c_int, c_uint, c_void, CString};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use git2::{Binding, Repository};
use gix_utils::progress::{
    prodash::messages::MessageLevel, Count, Id, NestedProgress, Progress, Step, StepShared, Unit,
};
use libgit2_sys as raw;
use tracing::debug;

/// Chunks (up to 64 KiB each, libgit2's pkt-lines) between the socket and the indexer: enough
/// to ride out a pause of the worker, small enough that a fast server waits rather than fills
/// memory.
const CHANNEL_CHUNKS: usize = 64;

/// Above libgit2's loose (1) and packed (2) backends: libgit2 asks backends in this order.
const PRIORITY: c_int = 100;

/// While alive, the next fetches into the repository are indexed by gix-pack.
pub struct Armed {
    armed: Arc<AtomicBool>,
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

/// Arms gix-pack for the packs fetched into `repo` until the guard is dropped; `None` (libgit2
/// indexes) when the repository already has refs (`no_refs`, as the fetch found) or a shallow
/// boundary, so that the pack could be thin. libgit2 offers no way to remove a backend: a
/// disarmed one stays and passes.
pub fn arm(repo: &Repository, no_refs: bool) -> Option<Armed> {
    if !no_refs || repo.is_shallow() {
        return None;
    }
    let odb = repo.odb().ok()?;
    let armed = Arc::new(AtomicBool::new(true));
    let backend = Box::new(Backend {
        // SAFETY: a zeroed backend is what `git_odb_init_backend` expects to fill.
        parent: unsafe { std::mem::zeroed() },
        armed: armed.clone(),
        pack_dir: repo.path().join("objects").join("pack"),
    });
    let backend = Box::into_raw(backend);
    // SAFETY: `backend` is a live, exclusively owned allocation whose first field is the
    // `git_odb_backend` libgit2 sees; ownership passes to the database on success, which calls
    // `free` when it is itself freed.
    unsafe {
        if raw::git_odb_init_backend(&mut (*backend).parent, raw::GIT_ODB_BACKEND_VERSION) < 0 {
            drop(Box::from_raw(backend));
            return None;
        }
        (*backend).parent.writepack = Some(writepack);
        (*backend).parent.foreach = Some(foreach);
        (*backend).parent.free = Some(free_backend);
        if raw::git_odb_add_backend(odb.raw(), &mut (*backend).parent, PRIORITY) < 0 {
            drop(Box::from_raw(backend));
            return None;
        }
    }
    Some(Armed { armed })
}

#[repr(C)]
struct Backend {
    parent: raw::git_odb_backend,
    armed: Arc<AtomicBool>,
    pack_dir: PathBuf,
}

extern "C" fn free_backend(backend: *mut raw::git_odb_backend) {
    // SAFETY: libgit2 frees a backend once, and this one was made by `Box::into_raw` in `arm`.
    drop(unsafe { Box::from_raw(backend as *mut Backend) });
}

/// It holds no objects of its own (they are in the packs libgit2's backend reads).
extern "C" fn foreach(
    _backend: *mut raw::git_odb_backend,
    _cb: raw::git_odb_foreach_cb,
    _payload: *mut c_void,
) -> c_int {
    0
}

extern "C" fn writepack(
    out: *mut *mut raw::git_odb_writepack,
    backend: *mut raw::git_odb_backend,
    odb: *mut raw::git_odb,
    progress_cb: raw::git_indexer_progress_cb,
    payload: *mut c_void,
) -> c_int {
    // SAFETY: libgit2 passes the backend `arm` registered, alive as long as the database.
    let backend = unsafe { &*(backend as *const Backend) };
    if !backend.armed.load(Ordering::SeqCst) {
        return raw::GIT_PASSTHROUGH as c_int;
    }
    let writer = Writer::new(backend.pack_dir.clone(), odb, progress_cb, payload);
    let mut writer = Box::new(writer);
    writer.parent.backend = &backend.parent as *const _ as *mut _;
    // SAFETY: `out` is libgit2's out-pointer; it calls `free` on what we put there.
    unsafe { *out = Box::into_raw(writer) as *mut raw::git_odb_writepack };
    0
}

/// The counters libgit2's progress shows, fed by gix-pack's progress tree: entries read from
/// the stream (`received_objects`) and objects resolved (`indexed_objects`).
#[derive(Default)]
struct Counts {
    read: StepShared,
    resolved: StepShared,
}

/// Packs of fewer objects go to libgit2's indexer: it finishes them within milliseconds of the
/// last byte, and gix-pack's threads and code would add about a megabyte to the peak RSS of a
/// run that small (measured: a 2,556-object clone, 15.0 MB against 16.1 MB; serde's depth-1
/// clone, 399 objects). Above it, resolving on every core pays (a 4,010-file depth-1 clone,
/// ~4,100 objects: 0.78x to 0.73x git's time).
const SMALL_PACK: u32 = 3_000;

/// Who indexes the pack: decided by the object count of its header.
enum Engine {
    /// Fewer bytes than a pack header so far.
    Undecided,
    Libgit2(*mut raw::git_indexer),
    Gix {
        chunks: Option<SyncSender<Vec<u8>>>,
        done: Receiver<Result<Written, (c_int, String)>>,
        worker: Option<JoinHandle<()>>,
    },
}

#[repr(C)]
struct Writer {
    parent: raw::git_odb_writepack,
    engine: Engine,
    pack_dir: PathBuf,
    interrupt: Arc<AtomicBool>,
    counts: Arc<Counts>,
    header: Vec<u8>,
    total_objects: c_uint,
    /// The bytes handed to gix-pack's worker.
    forwarded: u64,
    odb: *mut raw::git_odb,
    progress_cb: raw::git_indexer_progress_cb,
    payload: *mut c_void,
    /// The first failure, reported again by every later call.
    failed: Option<(c_int, String)>,
}

impl Writer {
    fn new(
        pack_dir: PathBuf,
        odb: *mut raw::git_odb,
        progress_cb: raw::git_indexer_progress_cb,
        payload: *mut c_void,
    ) -> Writer {
        Writer {
            parent: raw::git_odb_writepack {
                backend: std::ptr::null_mut(),
                append: Some(append),
                commit: Some(commit),
                free: Some(free_writer),
            },
            engine: Engine::Undecided,
            pack_dir,
            interrupt: Arc::new(AtomicBool::new(false)),
            counts: Arc::new(Counts::default()),
            header: Vec::with_capacity(12),
            total_objects: 0,
            forwarded: 0,
            odb,
            progress_cb,
            payload,
            failed: None,
        }
    }

    /// libgit2's own indexer, as its pack backend would have made it.
    fn libgit2(&self) -> Result<Engine, (c_int, String)> {
        let libgit2_error = || {
            (
                raw::GIT_ERROR_INDEXER as c_int,
                git2::Error::last_error(-1).message().to_string(),
            )
        };
        let path = CString::new(self.pack_dir.as_os_str().as_encoded_bytes()).map_err(|_| {
            (
                raw::GIT_ERROR_OS as c_int,
                "the pack directory's path holds a NUL".to_string(),
            )
        })?;
        // SAFETY: zeroed options are what `git_indexer_options_init` fills; the path, database
        // and progress payload outlive the indexer (freed in `Drop`).
        unsafe {
            let mut opts: raw::git_indexer_options = std::mem::zeroed();
            if raw::git_indexer_options_init(&mut opts, raw::GIT_INDEXER_OPTIONS_VERSION) < 0 {
                return Err(libgit2_error());
            }
            opts.progress_cb = self.progress_cb;
            opts.progress_cb_payload = self.payload;
            let mut idx = std::ptr::null_mut();
            if raw::git_indexer_new(&mut idx, path.as_ptr(), 0, self.odb, &mut opts) < 0 {
                return Err(libgit2_error());
            }
            Ok(Engine::Libgit2(idx))
        }
    }

    fn gix(&self) -> Result<Engine, (c_int, String)> {
        let (chunks, rx) = mpsc::sync_channel::<Vec<u8>>(CHANNEL_CHUNKS);
        let (done_tx, done) = mpsc::channel();
        let interrupt = self.interrupt.clone();
        let counts = self.counts.clone();
        let pack_dir = self.pack_dir.clone();
        let worker = std::thread::Builder::new()
            .name("gitinit-index".into())
            .spawn(move || {
                let result = index(rx, &pack_dir, &interrupt, counts);
                let _ = done_tx.send(result);
            })
            .map_err(|e| {
                (
                    raw::GIT_ERROR_OS as c_int,
                    format!("starting the indexer: {e}"),
                )
            })?;
        Ok(Engine::Gix {
            chunks: Some(chunks),
            done,
            worker: Some(worker),
        })
    }

    fn fail(&mut self, class: c_int, message: String) -> c_int {
        self.interrupt.store(true, Ordering::SeqCst);
        self.failed.get_or_insert((class, message));
        report(self.failed.as_ref().expect("just set"))
    }

    fn append(&mut self, mut data: &[u8], stats: &mut raw::git_indexer_progress) -> c_int {
        if let Some(f) = &self.failed {
            return report(f);
        }
        if let Engine::Undecided = self.engine {
            let take = (12 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.header.len() < 12 {
                return 0;
            }
            let claimed = u32::from_be_bytes(self.header[8..12].try_into().unwrap());
            // Refused before anything reserves room for the claimed count (libgit2's indexer
            // would reserve 48 GiB for 2^32-1); the same bound and words as for libgit2's.
            if claimed as usize > super::http::MAX_PACK_OBJECTS {
                return self.fail(raw::GIT_ERROR_INDEXER as c_int, "too many objects".into());
            }
            self.total_objects = claimed;
            let engine = if claimed < SMALL_PACK {
                self.libgit2()
            } else {
                self.gix()
            };
            match engine {
                Ok(e) => self.engine = e,
                Err((class, message)) => return self.fail(class, message),
            }
            let header = std::mem::take(&mut self.header);
            let rc = self.forward(&header, stats);
            if rc != 0 || data.is_empty() {
                return rc;
            }
        }
        self.forward(data, stats)
    }

    fn forward(&mut self, data: &[u8], stats: &mut raw::git_indexer_progress) -> c_int {
        match &mut self.engine {
            Engine::Undecided => unreachable!("forwarded only once decided"),
            // SAFETY: a live indexer; libgit2 reads `data` and updates `stats`.
            Engine::Libgit2(idx) => unsafe {
                raw::git_indexer_append(*idx, data.as_ptr() as *const c_void, data.len(), stats)
            },
            Engine::Gix { chunks, .. } => {
                let sent = chunks
                    .as_ref()
                    .is_some_and(|c| c.send(data.to_vec()).is_ok());
                if !sent {
                    // The worker stopped before the stream ended: it failed, or the pack it
                    // read is complete and more bytes follow it.
                    let (class, message) = match self.finish() {
                        Err(e) => e,
                        Ok(_) => junk_after_the_pack(),
                    };
                    return self.fail(class, message);
                }
                self.forwarded += data.len() as u64;
                self.fill(stats);
                0
            }
        }
    }

    fn fill(&self, stats: &mut raw::git_indexer_progress) {
        let read = self.counts.read.load(Ordering::Relaxed) as c_uint;
        let resolved = self.counts.resolved.load(Ordering::Relaxed) as c_uint;
        stats.total_objects = self.total_objects;
        stats.received_objects = read.min(self.total_objects);
        stats.indexed_objects = resolved.min(self.total_objects);
        // gix-pack does not count deltas apart: once everything has arrived, the progress
        // shows objects resolved out of all objects.
        if stats.received_objects == self.total_objects {
            stats.total_deltas = self.total_objects;
            stats.indexed_deltas = stats.indexed_objects;
        }
    }

    /// Waits for gix-pack's worker, telling libgit2's progress callback how resolution goes.
    fn wait(&mut self, stats: &mut raw::git_indexer_progress) -> Result<Written, (c_int, String)> {
        loop {
            let Engine::Gix { done, .. } = &self.engine else {
                unreachable!("waited for only with gix-pack");
            };
            match done.recv_timeout(Duration::from_millis(100)) {
                Ok(result) => {
                    self.join();
                    return result;
                }
                Err(RecvTimeoutError::Disconnected) => return self.finish(),
                Err(RecvTimeoutError::Timeout) => {
                    self.fill(stats);
                    if let Some(cb) = self.progress_cb {
                        if cb(stats, self.payload) != 0 {
                            self.interrupt.store(true, Ordering::SeqCst);
                            return Err((
                                raw::GIT_ERROR_NONE as c_int,
                                "the fetch was cancelled".into(),
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Ends gix-pack's input and waits for its outcome.
    fn finish(&mut self) -> Result<Written, (c_int, String)> {
        let Engine::Gix { chunks, done, .. } = &mut self.engine else {
            unreachable!("finished only with gix-pack");
        };
        chunks.take();
        let result = done.recv();
        self.join();
        match result {
            Ok(r) => r,
            Err(_) => Err((
                raw::GIT_ERROR_INDEXER as c_int,
                "the indexer stopped unexpectedly".into(),
            )),
        }
    }

    fn join(&mut self) {
        if let Engine::Gix { worker, .. } = &mut self.engine {
            if let Some(w) = worker.take() {
                let _ = w.join();
            }
        }
    }

    fn commit(&mut self, stats: &mut raw::git_indexer_progress) -> c_int {
        if let Some(f) = &self.failed {
            return report(f);
        }
        let written = match &mut self.engine {
            Engine::Undecided => {
                return self.fail(
                    raw::GIT_ERROR_INDEXER as c_int,
                    "invalid pack: it ends before its header".into(),
                )
            }
            // SAFETY: a live indexer; libgit2 sets its error when it fails.
            Engine::Libgit2(idx) => return unsafe { raw::git_indexer_commit(*idx, stats) },
            Engine::Gix { chunks, .. } => {
                chunks.take();
                match self.wait(stats) {
                    // More arrived than the pack it read: what follows its checksum (git's
                    // index-pack: "pack has junk at the end").
                    Ok(w) if w.bytes != self.forwarded => {
                        let (class, message) = junk_after_the_pack();
                        return self.fail(class, message);
                    }
                    Ok(w) => w,
                    Err((class, message)) => return self.fail(class, message),
                }
            }
        };
        let n = written.objects;
        debug!(
            objects = n,
            pack = %written.pack.display(),
            "indexed the pack with gix-pack"
        );
        stats.total_objects = n;
        stats.received_objects = n;
        stats.indexed_objects = n;
        stats.total_deltas = 0;
        stats.indexed_deltas = 0;
        // SAFETY: the database that asked for this writer outlives it.
        if unsafe { raw::git_odb_refresh(self.odb) } < 0 {
            return -1;
        }
        if let Some(cb) = self.progress_cb {
            if cb(stats, self.payload) != 0 {
                return raw::GIT_EUSER as c_int;
            }
        }
        0
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        match &mut self.engine {
            Engine::Undecided => {}
            // SAFETY: made by `git_indexer_new`, freed once; it removes its own temporaries.
            Engine::Libgit2(idx) => unsafe { raw::git_indexer_free(*idx) },
            Engine::Gix { chunks, .. } => {
                // Freed without a commit (the transfer failed or was cancelled): stop the
                // worker; its temporary files go with it.
                self.interrupt.store(true, Ordering::SeqCst);
                chunks.take();
                self.join();
            }
        }
    }
}

/// A whole pack followed by more bytes (git's index-pack: "pack has junk at the end"): seen by
/// the worker when it read them ahead with the checksum, by the writer when they came later.
fn junk_after_the_pack() -> (c_int, String) {
    (
        raw::GIT_ERROR_INDEXER as c_int,
        "invalid pack: the server sent data after the end of the pack".into(),
    )
}

fn report((class, message): &(c_int, String)) -> c_int {
    let text = CString::new(message.replace('\0', " ")).expect("no NUL left");
    // SAFETY: libgit2 copies the string.
    unsafe { raw::git_error_set_str(*class, text.as_ptr()) };
    -1
}

/// Sorts a failure of gix-pack as libgit2's indexer would have reported it, so that
/// [`super::classify`] treats both alike: a failed write is the disk's, anything else a broken
/// pack, a pack that ends early included (libgit2: "missing trailer"). A transfer cut short
/// never gets here: the transport fails first, and the writer is freed without a commit.
fn describe(e: &gix_error::Error) -> (c_int, String) {
    let mut chain: Vec<String> = Vec::new();
    for error in e.iter_errors() {
        let text = error.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
    }
    let chain = chain.join(": ");
    match e.downcast_any_ref::<io::Error>() {
        // An error of the system: the disk (full, a file-size limit, read-only), not the data.
        Some(io) if io.raw_os_error().is_some() => (
            raw::GIT_ERROR_OS as c_int,
            format!("writing the pack: {chain}"),
        ),
        Some(io) if io.kind() == io::ErrorKind::UnexpectedEof => (
            raw::GIT_ERROR_INDEXER as c_int,
            format!("invalid pack: it ends before its last object ({chain})"),
        ),
        _ => (
            raw::GIT_ERROR_INDEXER as c_int,
            format!("invalid pack: {chain}"),
        ),
    }
}

extern "C" fn append(
    w: *mut raw::git_odb_writepack,
    data: *const c_void,
    size: usize,
    stats: *mut raw::git_indexer_progress,
) -> c_int {
    guarded(|| {
        // SAFETY: `w` is the `Writer` made in `writepack` (its first field); libgit2 passes
        // `size` readable bytes at `data` and its progress struct.
        let (w, data, stats) = unsafe {
            (
                &mut *(w as *mut Writer),
                std::slice::from_raw_parts(data as *const u8, size),
                &mut *stats,
            )
        };
        w.append(data, stats)
    })
}

extern "C" fn commit(
    w: *mut raw::git_odb_writepack,
    stats: *mut raw::git_indexer_progress,
) -> c_int {
    guarded(|| {
        // SAFETY: as in `append`.
        let (w, stats) = unsafe { (&mut *(w as *mut Writer), &mut *stats) };
        w.commit(stats)
    })
}

extern "C" fn free_writer(w: *mut raw::git_odb_writepack) {
    if w.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `writepack`; libgit2 frees it once.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        drop(unsafe { Box::from_raw(w as *mut Writer) })
    }));
}

/// A panic must not unwind into C.
fn guarded(f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        report(&(
            raw::GIT_ERROR_INDEXER as c_int,
            "the indexer failed unexpectedly".into(),
        ))
    })
}

/// What the worker wrote: the pack's and its index's final paths and how many objects.
struct Written {
    pack: PathBuf,
    objects: u32,
    /// The bytes of the stream it read, the whole pack.
    bytes: u64,
}

/// How often the pages of the pack that resolution has read are dropped from the process
/// (see [`Trimmer`]).
const TRIM_EVERY: Duration = Duration::from_millis(20);

/// The worker: reads the pack from the channel into a temporary file in `pack_dir` while
/// gix-pack reads its entries, has gix-pack resolve them and write the index, then moves both
/// into place as `pack-<checksum>.{pack,idx}` (the pack first, as git does: an index never
/// names a pack that is not there).
fn index(
    rx: Receiver<Vec<u8>>,
    pack_dir: &Path,
    interrupt: &AtomicBool,
    counts: Arc<Counts>,
) -> Result<Written, (c_int, String)> {
    let os = |what: &str, e: io::Error| (raw::GIT_ERROR_OS as c_int, format!("{what}: {e}"));
    let temporary = || {
        tempfile::Builder::new()
            .prefix(".tmp-gitinit-")
            .tempfile_in(pack_dir)
            .map_err(|e| os("creating a temporary file for the pack", e))
    };
    let pack_file = temporary()?;
    let tee = Tee {
        from: ChannelReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        },
        to: pack_file
            .as_file()
            .try_clone()
            .map_err(|e| os("writing the pack", e))?,
    };
    let mut entries = gix_pack::data::input::BytesToEntriesIter::new_from_header(
        io::BufReader::with_capacity(1 << 16, tee),
        gix_pack::data::input::Mode::Verify,
        gix_pack::data::input::EntryDataMode::Crc32,
        gix_hash::Kind::Sha1,
    )
    .map_err(|e| describe(&e))?;
    let pack_version = entries.version();
    let index_file = temporary()?;
    let mut progress = Tap::new(gix_utils::progress::UNKNOWN, counts);
    let trimmer = Trimmer::start();
    let outcome = {
        let mut out = io::BufWriter::with_capacity(1 << 16, index_file.as_file());
        let slot = trimmer.slot.clone();
        let data = pack_file.as_file();
        let outcome = gix_pack::index::write_data_iter_to_stream(
            gix_pack::index::Version::default(),
            move || {
                // Called once every entry was read: the whole pack is in the file.
                // SAFETY: the file is ours (a fresh temporary) and nothing writes it any more.
                let map = Arc::new(unsafe { memmap2::Mmap::map(data)? });
                if let Ok(mut s) = slot.lock() {
                    *s = Some(map.clone());
                }
                Ok((entry_bytes, map))
            },
            &mut entries,
            None,
            &mut progress,
            &mut out,
            interrupt,
            gix_hash::Kind::Sha1,
            None,
            pack_version,
        );
        drop(trimmer);
        let outcome = outcome.map_err(|e| describe(&e))?;
        out.flush().map_err(|e| os("writing the pack index", e))?;
        outcome
    };
    drop(entries);
    // Bytes after the pack's checksum (read ahead with it) would make the file no pack.
    let len = pack_file
        .as_file()
        .metadata()
        .map_err(|e| os("reading the pack", e))?
        .len();
    let mut tail = [0u8; 20];
    if len < 20
        || std::os::unix::fs::FileExt::read_exact_at(pack_file.as_file(), &mut tail, len - 20)
            .is_err()
        || tail[..] != *outcome.data_hash.as_bytes()
    {
        return Err(junk_after_the_pack());
    }
    let name = format!("pack-{}", outcome.data_hash.to_hex());
    let pack = pack_dir.join(format!("{name}.pack"));
    let idx = pack_dir.join(format!("{name}.idx"));
    // Read-only, as git leaves packs and indexes.
    let read_only = || std::fs::Permissions::from_mode(0o444);
    for (temp, path, what) in [(pack_file, &pack, "pack"), (index_file, &idx, "pack index")] {
        if path.exists() {
            // The same pack is here already (its name is its checksum): keep that one.
            continue;
        }
        temp.as_file()
            .set_permissions(read_only())
            .map_err(|e| os(&format!("writing the {what}"), e))?;
        temp.persist(path)
            .map_err(|e| os(&format!("moving the {what} into place"), e.error))?;
    }
    Ok(Written {
        pack,
        objects: outcome.num_objects,
        bytes: len,
    })
}

/// The bytes of one entry of the mapped pack.
fn entry_bytes(range: gix_pack::data::EntryRange, map: &Arc<memmap2::Mmap>) -> Option<&[u8]> {
    map.get(usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?)
}

/// Drops the pages of the mapped pack from the process every [`TRIM_EVERY`] while deltas are
/// resolved. Resolution reads every entry of the pack through the mapping once or twice; left
/// alone, every page it touched stays resident until the end, so that the peak RSS of a clone
/// grew by the pack's size (13 MB on a 4,000-file depth-1 clone, all of a full history). The
/// mapping is of a file nothing writes any more: a dropped page that is read again comes back
/// from the page cache, unchanged, at the cost of a minor fault. The mapping is held here while
/// it is advised, so it cannot be unmapped (and its addresses reused) under the advice.
struct Trimmer {
    slot: Arc<std::sync::Mutex<Option<Arc<memmap2::Mmap>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Trimmer {
    fn start() -> Trimmer {
        let slot: Arc<std::sync::Mutex<Option<Arc<memmap2::Mmap>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (slot, stop) = (slot.clone(), stop.clone());
            std::thread::Builder::new()
                .name("gitinit-trim".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::park_timeout(TRIM_EVERY);
                        let map = slot.lock().ok().and_then(|s| s.clone());
                        if let Some(map) = map {
                            // SAFETY: a shared read-only mapping of a file no one writes:
                            // dropped pages read back the same bytes (see the type's doc).
                            let _ =
                                unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
                        }
                    }
                })
                .ok()
        };
        Trimmer { slot, stop, thread }
    }
}

/// Stops the thread and lets go of the mapping, whichever way resolution ended.
impl Drop for Trimmer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        if let Ok(mut s) = self.slot.lock() {
            s.take();
        }
    }
}

/// Every byte gix-pack reads from the stream also goes to the pack file.
struct Tee {
    from: ChannelReader,
    to: std::fs::File,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.from.read(buf)?;
        self.to.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The pack as libgit2 receives it; the end of the channel (the sender dropped) is the end of
/// the stream.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A node of gix-pack's progress tree. The two nodes libgit2's progress needs share their
/// counters with the writer; every other node counts into its own.
struct Tap {
    id: Id,
    step: StepShared,
    counts: Arc<Counts>,
    name: String,
}

impl Tap {
    fn new(id: Id, counts: Arc<Counts>) -> Tap {
        let step = match &id {
            b"IWIO" => counts.read.clone(),
            b"IWRO" => counts.resolved.clone(),
            _ => Arc::new(AtomicUsize::new(0)),
        };
        Tap {
            id,
            step,
            counts,
            name: String::new(),
        }
    }
}

impl Count for Tap {
    fn set(&self, step: Step) {
        self.step.store(step, Ordering::Relaxed);
    }
    fn step(&self) -> Step {
        self.step.load(Ordering::Relaxed)
    }
    fn inc_by(&self, step: Step) {
        self.step.fetch_add(step, Ordering::Relaxed);
    }
    fn counter(&self) -> StepShared {
        self.step.clone()
    }
}

impl Progress for Tap {
    fn init(&mut self, _max: Option<Step>, _unit: Option<Unit>) {}
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn name(&self) -> Option<String> {
        Some(self.name.clone())
    }
    fn id(&self) -> Id {
        self.id
    }
    fn message(&self, _level: MessageLevel, _message: String) {}
}

impl NestedProgress for Tap {
    type SubProgress = Tap;
    fn add_child(&mut self, name: impl Into<String>) -> Tap {
        self.add_child_with_id(name, gix_utils::progress::UNKNOWN)
    }
    fn add_child_with_id(&mut self, name: impl Into<String>, id: Id) -> Tap {
        let mut child = Tap::new(id, self.counts.clone());
        child.name = name.into();
        child
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident KiB of the mapping that starts at `addr`, from /proc/self/smaps.
    fn resident_kib(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut in_it = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((start, _)) = range.split_once('-') {
                    if let Ok(start) = usize::from_str_radix(start, 16) {
                        in_it = start == addr;
                        continue;
                    }
                }
            }
            if in_it {
                if let Some(kib) = line.strip_prefix("Rss:") {
                    return kib.trim().trim_end_matches(" kB").trim().parse().unwrap();
                }
            }
        }
        panic!("no mapping at {addr:#x}");
    }

    /// Pages of the mapped pack that were read leave the process within a few intervals, and
    /// reading them again gives the same bytes.
    #[test]
    fn the_trimmer_drops_read_pages_and_they_read_back_the_same() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..16u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
        file.write_all(&data).unwrap();
        let map = Arc::new(unsafe { memmap2::Mmap::map(&file).unwrap() });
        let addr = map.as_ptr() as usize;
        let sum = |m: &memmap2::Mmap| m.iter().step_by(4096).map(|&b| b as u64).sum::<u64>();
        let expected = sum(&map);
        assert!(resident_kib(addr) >= 15 << 10, "every page was read");

        let trimmer = Trimmer::start();
        *trimmer.slot.lock().unwrap() = Some(map.clone());
        std::thread::sleep(TRIM_EVERY * 5);
        let after = resident_kib(addr);
        assert!(after < 1024, "{after} KiB still resident");
        assert_eq!(sum(&map), expected);
        assert!(map[..] == data[..]);
        drop(trimmer);
        assert_eq!(
            Arc::strong_count(&map),
            1,
            "the trimmer let go of the mapping"
        );
    }
}
