//! Fixture repositories and TLS files: built once per test process by `fixtures.sh`, cached on
//! disk under the script's hash, shared safely between processes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::{clean_env, scratch_home};

pub struct Fixtures {
    /// Bare repositories: basic.git, nosha.git, empty.git, deep.git.
    pub repos: PathBuf,
    commits: HashMap<String, String>,
    /// 7 hex digits shared by two blobs of basic.git: an ambiguous short SHA.
    pub ambiguous_prefix: String,
    /// The harness CA (signed the HTTPS server's certificate) and one that did not.
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl Fixtures {
    pub fn repo(&self, name: &str) -> PathBuf {
        self.repos.join(name)
    }
    /// Commits by label: c0..c6 (see the script), deep0..deep39.
    pub fn sha(&self, key: &str) -> &str {
        self.commits
            .get(key)
            .unwrap_or_else(|| panic!("no fixture commit {key}"))
    }
}

/// The script that builds the fixtures (what each repository holds is described at its top).
const FIXTURE_SCRIPT: &str = include_str!("fixtures.sh");

pub fn fixtures() -> &'static Fixtures {
    static FX: OnceLock<Fixtures> = OnceLock::new();
    FX.get_or_init(build_fixtures)
}

fn build_fixtures() -> Fixtures {
    // Keyed by the script's hash: a changed script builds anew; processes share a finished one.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in FIXTURE_SCRIPT.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let root = base.join(format!("fixtures-{h:016x}"));
    if !root.join("shas.txt").exists() {
        let tmp = base.join(format!("fixtures-{h:016x}.tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let out = {
            let mut cmd = Command::new("bash");
            clean_env(&mut cmd, &scratch_home());
            cmd.arg("-c")
                .arg(FIXTURE_SCRIPT)
                .env("ROOT", &tmp)
                .output()
                .unwrap()
        };
        assert!(
            out.status.success(),
            "building fixtures failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another process may have won the race: then ours is thrown away.
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let commits = std::fs::read_to_string(root.join("shas.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Fixtures {
        repos: root.join("repos"),
        commits,
        ambiguous_prefix: "b2664c8".into(),
        ca: root.join("tls/ca.pem"),
        other_ca: root.join("tls/other-ca.pem"),
        server_cert: root.join("tls/server.pem"),
        server_key: root.join("tls/server.key"),
    }
}

pub fn ca_file() -> PathBuf {
    fixtures().ca.clone()
}

pub fn other_ca_file() -> PathBuf {
    fixtures().other_ca.clone()
}
