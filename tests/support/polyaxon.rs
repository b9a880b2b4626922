//! A real Polyaxon API on 127.0.0.1: `haupt sandbox` (`haupt[sandbox]==2.18.0` from PyPI, in a
//! venv that `.ci/py-venv.sh haupt` builds; the harness runs the script itself when the venv is
//! missing), with a SQLite database under a directory of its own. It takes ~20-30 s to start,
//! so one server serves a whole test process: [`PolyaxonApi::shared`] starts it from a thread
//! that lives as long as the process (a server dies with the thread that started it, see
//! `die_with_parent`), and it is stopped with the process (TERM to haupt's parent stops its
//! workers).
//!
//! Projects and runs are made, and read back, with Polyaxon's own Python client (`RunClient`),
//! as a user would: [`PolyaxonApi::create_runs`], [`PolyaxonApi::read`].
//!
//! Found running it: no authentication (any `Authorization` is accepted, none is needed); right
//! after start, a run creation once answered 405 (the client script retries).

use super::*;

/// Polyaxon's Python client, for the tests' side of the API.
/// `create OWNER PROJECT N`: the project (if new) and N runs, one uuid a line.
/// `read OWNER PROJECT UUID`: `{"lineage": [...], "statuses": [...]}` as the client returns them.
const CLIENT: &str = r#"
import json, sys, time
from polyaxon.client import ProjectClient, RunClient

def retrying(f):
    for attempt in range(10):
        try:
            return f()
        except Exception:
            if attempt == 9:
                raise
            time.sleep(1)

cmd, owner, project = sys.argv[1], sys.argv[2], sys.argv[3]
if cmd == "create":
    def project_exists():
        try:
            ProjectClient(owner=owner, project=project).refresh_data()
            return True
        except Exception:
            return False
    if not project_exists():
        retrying(lambda: ProjectClient(owner=owner).create({"name": project}))
    for i in range(int(sys.argv[4])):
        def create():
            r = RunClient(owner=owner, project=project, is_offline=False)
            r.create(name="gitinit-%d" % i)
            return r.run_uuid
        print(retrying(create))
elif cmd == "read":
    r = RunClient(owner=owner, project=project, run_uuid=sys.argv[4], is_offline=False)
    lineage = r.get_artifacts_lineage(limit=100).results or []
    _, conditions = r.get_statuses()
    print(json.dumps({
        "lineage": [a.to_dict() for a in lineage],
        "statuses": [c.to_dict() for c in conditions or []],
    }, default=str))
"#;

pub struct PolyaxonApi {
    pub port: u16,
    pid: u32,
    dir: PathBuf,
}

impl PolyaxonApi {
    /// The process's one server, started on first use (waits until it answers).
    pub fn shared() -> &'static PolyaxonApi {
        static API: OnceLock<PolyaxonApi> = OnceLock::new();
        API.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            // The server's parent-death signal follows this thread: it must outlive every test.
            std::thread::spawn(move || {
                let started = PolyaxonApi::start();
                tx.send(started).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().expect("the haupt thread answers")
        })
    }

    fn start() -> PolyaxonApi {
        let venv = python_venv("haupt");
        // Under target/ (statics are never dropped): this process's directory, and the ones of
        // earlier processes that are gone.
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(base).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("haupt-run-") {
                if pid.parse().is_ok_and(|p: u32| !alive(p)) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("haupt-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["data", "home"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("client.py"), CLIENT).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("haupt.log")).unwrap();
        let mut cmd = Command::new(venv.join("bin/haupt"));
        clean_env(&mut cmd, &dir.join("home"));
        cmd.current_dir(&dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["sandbox", "start", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--path")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // TERM, not KILL, when this process goes: haupt's parent then stops its workers.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("haupt starts");
        let api = PolyaxonApi {
            port,
            pid: child.id(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if api.get_status("/api/v1/default/projects/list") == Some(200) {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("haupt exited ({st}) before answering: {}", api.log());
            }
            assert!(
                Instant::now() < deadline,
                "haupt did not answer on {port} within 3 minutes: {}",
                api.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        // Reaped by the kernel's init when this process ends; we never wait on it.
        std::mem::forget(child);
        api
    }

    /// `http://127.0.0.1:PORT`, what `POLYAXON_HOST` holds.
    pub fn host(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haupt.log")).unwrap_or_default()
    }

    /// The status of a plain GET, or None when nothing answers.
    fn get_status(&self, path: &str) -> Option<u32> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        use std::io::Write;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut head = [0u8; 16];
        s.read_exact(&mut head).ok()?;
        String::from_utf8_lossy(&head[9..12]).parse().ok()
    }

    fn client(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(python_venv("haupt").join("bin/python"));
        clean_env(&mut cmd, &self.dir.join("home"));
        cmd.env("POLYAXON_HOST", self.host())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(self.dir.join("client.py"))
            .args(args);
        let out = cmd.output().expect("python runs");
        assert!(
            out.status.success(),
            "polyaxon client {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `n` new runs in `owner/project` (created if new), by their uuids.
    pub fn create_runs(&self, owner: &str, project: &str, n: usize) -> Vec<String> {
        let out = self.client(&["create", owner, project, &n.to_string()]);
        let uuids: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(uuids.len(), n, "{out}");
        uuids
    }

    /// A run's lineage and status conditions, as Polyaxon's client reads them.
    pub fn read(&self, owner: &str, project: &str, uuid: &str) -> serde_json::Value {
        let out = self.client(&["read", owner, project, uuid]);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}
