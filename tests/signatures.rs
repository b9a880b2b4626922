//! `--verify-signatures FILE` (SPEC §14) end to end: commits and tags signed by git itself
//! (`gpg.format=ssh` with ssh-keygen, OpenPGP with Debian's gnupg in a throwaway GNUPGHOME),
//! served over HTTP by the harness or read from a path; tampered and unsigned commits built with
//! git's plumbing. Where it helps, `git verify-commit` / `git verify-tag` judge the same objects.

#[path = "support/mod.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{git_out, gitinit, ok, run, HttpServer, Output};
use tempfile::TempDir;

/// A signing lab: a work repository, the bare repository it pushes to (`repos/r.git`, served
/// by [`HttpServer::start_at`] as `public/r.git`), SSH keys and a GNUPGHOME of its own.
struct Lab {
    dir: TempDir,
}

/// How a commit or tag is signed.
#[derive(Clone, Copy)]
enum Sign<'a> {
    Unsigned,
    /// With this SSH private key file.
    Ssh(&'a Path),
    /// With this OpenPGP key (fingerprint).
    Pgp(&'a str),
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(lab.path("repos")).unwrap();
        let gnupg = lab.path("gnupg");
        std::fs::create_dir(&gnupg).unwrap();
        std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        git_out(
            lab.dir.path(),
            &["init", "-q", "--bare", "-b", "main", "repos/r.git"],
        );
        git_out(lab.dir.path(), &["init", "-q", "-b", "main", "work"]);
        lab.git(&["config", "user.name", "Signer"]);
        lab.git(&["config", "user.email", "signer@example.com"]);
        lab.git(&["remote", "add", "origin", "../repos/r.git"]);
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The bare repository, as a local source.
    fn local_url(&self) -> String {
        self.path("repos/r.git").display().to_string()
    }

    /// git in the work repository, with this lab's GNUPGHOME.
    fn git_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = common::git(&self.path("work"));
        cmd.env("GNUPGHOME", self.path("gnupg")).args(args);
        cmd
    }

    fn git(&self, args: &[&str]) -> String {
        let out = self.git_cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn gpg(&self, args: &[&str]) -> String {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.path("gnupg"))
            .args(["--batch", "--quiet", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An SSH key pair `name`; returns the private key file, the public key line and its
    /// `SHA256:` fingerprint as ssh-keygen prints it.
    fn ssh_key(&self, name: &str, kind: &str) -> (PathBuf, String, String) {
        let key = self.path(name);
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        let public = std::fs::read_to_string(key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string();
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        let fp = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        assert!(fp.starts_with("SHA256:"), "{fp}");
        (key, public, fp)
    }

    /// A new OpenPGP key of `algo` (gpg's `--quick-gen-key` names: `ed25519`, `rsa2048`) for
    /// `uid`, usable to sign; returns its primary key's fingerprint.
    fn gpg_key(&self, uid: &str, algo: &str) -> String {
        self.gpg(&["--quick-gen-key", uid, algo, "sign", "never"]);
        self.fingerprint(uid)
    }

    fn fingerprint(&self, uid: &str) -> String {
        self.gpg(&["--with-colons", "--list-keys", uid])
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_string())
            .unwrap()
    }

    fn sign_config(sign: Sign<'_>) -> Vec<String> {
        match sign {
            Sign::Unsigned => vec![],
            Sign::Ssh(key) => vec![
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                format!("user.signingkey={}", key.display()),
            ],
            Sign::Pgp(fpr) => vec!["-c".into(), format!("user.signingkey={fpr}")],
        }
    }

    /// A commit adding `file`, signed as asked; returns its id.
    fn commit(&self, file: &str, sign: Sign<'_>) -> String {
        std::fs::write(self.path("work").join(file), format!("{file}\n")).unwrap();
        self.git(&["add", file]);
        let mut args = Self::sign_config(sign);
        args.extend([
            "commit".into(),
            "-q".into(),
            "-m".into(),
            format!("add {file}"),
        ]);
        if !matches!(sign, Sign::Unsigned) {
            args.push("-S".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.git(&args);
        self.git(&["rev-parse", "HEAD"])
    }

    /// An annotated tag of HEAD (signed as asked), or a lightweight one with `None`.
    fn tag(&self, name: &str, sign: Option<Sign<'_>>) {
        let Some(sign) = sign else {
            self.git(&["tag", name]);
            return;
        };
        let mut args = Self::sign_config(sign);
        args.extend(["tag".into(), "-m".into(), format!("release {name}")]);
        if !matches!(sign, Sign::Unsigned) {
            args.push("-s".into());
        }
        args.push(name.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.git(&args);
    }

    fn push(&self) {
        self.git(&["push", "-q", "--force", "origin", "main"]);
        self.git(&["push", "-q", "--force", "--tags", "origin"]);
    }

    /// Writes a commit object from its raw text (`git hash-object -t commit -w`), points `main`
    /// at it and returns its id.
    fn write_commit(&self, raw: &[u8]) -> String {
        let mut child = self
            .git_cmd(&["hash-object", "-t", "commit", "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        self.git(&["update-ref", "refs/heads/main", &id]);
        id
    }

    fn raw_commit(&self, rev: &str) -> String {
        let out = self.git_cmd(&["cat-file", "commit", rev]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// The keys file `name.keys` with these contents.
    fn keys(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(&format!("{name}.keys"));
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `git verify-commit` (or `verify-tag`) with `allowed` as the SSH allowed signers file.
    fn git_verifies(&self, what: &str, rev: &str, allowed: &Path) -> bool {
        self.git_cmd(&[
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
            what,
            rev,
        ])
        .output()
        .unwrap()
        .status
        .success()
    }
}

impl Drop for Lab {
    /// Stops the gpg-agent that signing started for this GNUPGHOME.
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path("gnupg"))
            .args(["--kill", "all"])
            .status();
    }
}

fn clone(url: &str, dest: &Path, keys: &Path, extra: &[&str]) -> Output {
    run(gitinit()
        .args(["clone", "--url", url, "--dest"])
        .arg(dest)
        .arg("--verify-signatures")
        .arg(keys)
        .args(["--report", "-"])
        .args(extra))
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_str(out.stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        )
    })
}

/// Exit 9, one error line naming the commit and the key (or "unsigned").
fn assert_untrusted(out: &Output, commit: &str, key: &str) -> String {
    assert_eq!(
        out.code, 9,
        "expected exit 9:\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    let last = out.stderr.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: signature not trusted"), "{last}");
    assert!(last.contains(&format!("commit {commit}")), "{last}");
    assert!(last.contains(&format!("(key: {key})")), "{last}");
    last
}

fn head(dest: &Path) -> String {
    git_out(dest, &["rev-parse", "HEAD"])
}

fn assert_clean(dest: &Path) {
    assert_eq!(git_out(dest, &["status", "--porcelain", "--ignored"]), "");
}

#[test]
fn a_commit_signed_by_an_allowed_ssh_key_is_checked_out_over_http_and_reported() {
    let lab = Lab::new();
    let (key, public, fp) = lab.ssh_key("alice", "ed25519");
    let (rsa, rsa_public, rsa_fp) = lab.ssh_key("robin", "rsa");
    let (ecdsa, ecdsa_public, ecdsa_fp) = lab.ssh_key("erin", "ecdsa");
    let first = lab.commit("a.txt", Sign::Ssh(&key));
    lab.push();
    let allowed = lab.keys(
        "allowed_signers",
        &format!("# the release team\nalice@example.com,ops@example.com namespaces=\"git\" {public}\n\nrobin@example.com {rsa_public}\nerin@example.com {ecdsa_public}\n"),
    );
    assert!(lab.git_verifies("verify-commit", &first, &allowed));
    let http = HttpServer::start_at(&lab.path("repos"));
    let dest = lab.path("dest");
    let out = clone(
        &http.http_url("public/r.git"),
        &dest,
        &allowed,
        &["--depth", "1"],
    );
    ok(&out);
    assert_eq!(head(&dest), first);
    assert_clean(&dest);
    let r = report(&out);
    assert_eq!(r["signature"]["format"], "ssh", "{r}");
    assert_eq!(r["signature"]["key"], fp.as_str(), "{r}");
    assert_eq!(
        r["signature"]["signer"], "alice@example.com,ops@example.com",
        "{r}"
    );

    // An RSA key (rsa-sha2-512, as ssh-keygen signs), named by the env var this time.
    let second = lab.commit("b.txt", Sign::Ssh(&rsa));
    lab.push();
    let out = run(gitinit()
        .args(["clone", "--url", &http.http_url("public/r.git"), "--dest"])
        .arg(&dest)
        .env("GITINIT_VERIFY_SIGNATURES", &allowed)
        .args(["--report", "-"]));
    ok(&out);
    assert_eq!(head(&dest), second);
    let r = report(&out);
    assert_eq!(r["signature"]["key"], rsa_fp.as_str(), "{r}");
    assert_eq!(r["signature"]["signer"], "robin@example.com", "{r}");
    // And ECDSA (P-256).
    let third = lab.commit("c.txt", Sign::Ssh(&ecdsa));
    lab.push();
    let out = clone(&lab.local_url(), &lab.path("ecdsa"), &allowed, &[]);
    ok(&out);
    assert_eq!(head(&lab.path("ecdsa")), third);
    assert_eq!(report(&out)["signature"]["key"], ecdsa_fp.as_str());

    // Without the option, no signature is looked at and none is reported.
    let plain = run(gitinit()
        .args(["clone", "--url", &lab.local_url(), "--dest"])
        .arg(lab.path("plain"))
        .args(["--report", "-"]));
    ok(&plain);
    assert!(report(&plain).get("signature").is_none());
}

#[test]
fn openpgp_commits_by_ed25519_rsa_and_signing_subkeys_verify() {
    let lab = Lab::new();
    let ed = lab.gpg_key("Edna <edna@example.com>", "ed25519");
    let rsa = lab.gpg_key("Rasmus <rasmus@example.com>", "rsa2048");
    // A certification-only primary key with a signing subkey: gpg signs with the subkey.
    lab.gpg(&[
        "--quick-gen-key",
        "Sub <sub@example.com>",
        "ed25519",
        "cert",
        "never",
    ]);
    let primary = lab.fingerprint("sub@example.com");
    lab.gpg(&["--quick-add-key", &primary, "ed25519", "sign", "never"]);
    let armored = lab.gpg(&["--export", "--armor"]);
    // Several keys in one armored block, then an SSH line: one file holds both kinds.
    let (_, ssh_public, _) = lab.ssh_key("other", "ed25519");
    let keys = lab.keys(
        "keys",
        &format!("{armored}\nother@example.com {ssh_public}\n"),
    );
    let http = HttpServer::start_at(&lab.path("repos"));
    let dest = lab.path("dest");
    for (file, fpr, user) in [
        ("ed.txt", &ed, "Edna <edna@example.com>"),
        ("rsa.txt", &rsa, "Rasmus <rasmus@example.com>"),
        ("sub.txt", &primary, "Sub <sub@example.com>"),
    ] {
        let commit = lab.commit(file, Sign::Pgp(fpr));
        lab.push();
        assert!(lab.git_verifies("verify-commit", &commit, &keys));
        let out = clone(&http.http_url("public/r.git"), &dest, &keys, &[]);
        ok(&out);
        assert_eq!(head(&dest), commit);
        assert_clean(&dest);
        let r = report(&out);
        assert_eq!(r["signature"]["format"], "openpgp", "{r}");
        assert_eq!(r["signature"]["key"], fpr.as_str(), "{file}: {r}");
        assert_eq!(r["signature"]["signer"], user, "{r}");
    }

    // Each key in a block of its own works as well; a file without the signer's key does not.
    let only_ed = lab.gpg(&["--export", "--armor", &ed]);
    let only_rsa = lab.gpg(&["--export", "--armor", &rsa]);
    let two_blocks = lab.keys("two", &format!("{only_rsa}\n# Edna\n{only_ed}"));
    let commit = lab.commit("again.txt", Sign::Pgp(&ed));
    lab.push();
    ok(&clone(
        &lab.local_url(),
        &lab.path("local"),
        &two_blocks,
        &[],
    ));
    let rsa_only = lab.keys("rsa-only", &only_rsa);
    let out = clone(&lab.local_url(), &lab.path("fresh"), &rsa_only, &[]);
    let line = assert_untrusted(&out, &commit, &ed);
    assert!(line.contains("does not hold"), "{line}");
    assert!(
        !lab.path("fresh").exists(),
        "a failed fresh clone leaves nothing"
    );
}

#[test]
fn a_signed_annotated_tag_is_verified_itself() {
    let lab = Lab::new();
    let (alice, alice_pub, alice_fp) = lab.ssh_key("alice", "ed25519");
    let (mallory, _, mallory_fp) = lab.ssh_key("mallory", "ed25519");
    let pgp = lab.gpg_key("Tagger <tagger@example.com>", "ed25519");
    // The commit is not signed: the signed tag is what vouches for it.
    let commit = lab.commit("a.txt", Sign::Unsigned);
    lab.tag("v1", Some(Sign::Ssh(&alice)));
    lab.tag("v1-pgp", Some(Sign::Pgp(&pgp)));
    lab.tag("v1-mallory", Some(Sign::Ssh(&mallory)));
    lab.push();
    let armored = lab.gpg(&["--export", "--armor", &pgp]);
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n{armored}"));
    assert!(lab.git_verifies("verify-tag", "v1", &keys));
    assert!(!lab.git_verifies("verify-commit", &commit, &keys));
    let http = HttpServer::start_at(&lab.path("repos"));
    let url = http.http_url("public/r.git");
    for (tag, format, key) in [("v1", "ssh", &alice_fp), ("v1-pgp", "openpgp", &pgp)] {
        let dest = lab.path(tag);
        let out = clone(&url, &dest, &keys, &["--revision", tag, "--depth", "1"]);
        ok(&out);
        assert_eq!(head(&dest), commit);
        let r = report(&out);
        assert_eq!(r["signature"]["format"], format, "{r}");
        assert_eq!(r["signature"]["key"], key.as_str(), "{r}");
        assert_eq!(r["ref"], format!("refs/tags/{tag}"), "{r}");
    }
    // A tag signed by a key not in the file is refused, whatever its commit.
    let dest = lab.path("dest-mallory");
    let out = clone(&url, &dest, &keys, &["--revision", "v1-mallory"]);
    let line = assert_untrusted(&out, &commit, &mallory_fp);
    assert!(line.contains("tag `v1-mallory`"), "{line}");
    assert!(!dest.exists());
    // The same commit by SHA is the commit's own (missing) signature that counts.
    let out = clone(&url, &dest, &keys, &["--revision", &commit]);
    assert_untrusted(&out, &commit, "unsigned");
}

#[test]
fn an_unsigned_or_lightweight_tag_falls_back_to_its_commit() {
    let lab = Lab::new();
    let (alice, alice_pub, alice_fp) = lab.ssh_key("alice", "ed25519");
    let signed = lab.commit("a.txt", Sign::Ssh(&alice));
    lab.tag("annotated", Some(Sign::Unsigned));
    lab.tag("light", None);
    let unsigned = lab.commit("b.txt", Sign::Unsigned);
    lab.tag("annotated-unsigned", Some(Sign::Unsigned));
    lab.tag("light-unsigned", None);
    lab.push();
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n"));
    for tag in ["annotated", "light"] {
        let dest = lab.path(tag);
        let out = clone(&lab.local_url(), &dest, &keys, &["--revision", tag]);
        ok(&out);
        assert_eq!(head(&dest), signed);
        assert_eq!(report(&out)["signature"]["key"], alice_fp.as_str());
    }
    for tag in ["annotated-unsigned", "light-unsigned"] {
        let dest = lab.path(tag);
        let out = clone(&lab.local_url(), &dest, &keys, &["--revision", tag]);
        let line = assert_untrusted(&out, &unsigned, "unsigned");
        assert!(line.contains("git commit -S"), "{line}");
        assert!(!dest.exists());
    }
}

#[test]
fn an_unsigned_commit_is_exit_9_and_a_fresh_destination_stays_empty() {
    let lab = Lab::new();
    let (_, alice_pub, _) = lab.ssh_key("alice", "ed25519");
    let commit = lab.commit("a.txt", Sign::Unsigned);
    lab.push();
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n"));
    // An empty directory (a mount point) stays, empty; an absent one is not created.
    let mounted = lab.path("mounted");
    std::fs::create_dir(&mounted).unwrap();
    let http = HttpServer::start_at(&lab.path("repos"));
    let out = clone(&http.http_url("public/r.git"), &mounted, &keys, &[]);
    let line = assert_untrusted(&out, &commit, "unsigned");
    assert!(line.contains(&keys.display().to_string()), "{line}");
    assert_eq!(std::fs::read_dir(&mounted).unwrap().count(), 0);
    let report_file = lab.path("report.json");
    let out = run(gitinit()
        .args(["clone", "--url", &lab.local_url(), "--dest"])
        .arg(lab.path("absent"))
        .arg("--verify-signatures")
        .arg(&keys)
        .arg("--report")
        .arg(&report_file));
    assert_untrusted(&out, &commit, "unsigned");
    assert!(!lab.path("absent").exists());
    let failure: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    assert_eq!(failure["exit_code"], 9);
}

#[test]
fn a_key_not_in_the_file_is_exit_9_with_its_fingerprint() {
    let lab = Lab::new();
    let (_, alice_pub, _) = lab.ssh_key("alice", "ed25519");
    let (eve, _, eve_fp) = lab.ssh_key("eve", "ed25519");
    let commit = lab.commit("a.txt", Sign::Ssh(&eve));
    lab.push();
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n"));
    assert!(!lab.git_verifies("verify-commit", &commit, &keys));
    let out = clone(&lab.local_url(), &lab.path("dest"), &keys, &[]);
    let line = assert_untrusted(&out, &commit, &eve_fp);
    assert!(line.contains("add it to"), "{line}");
    assert!(!lab.path("dest").exists());
}

#[test]
fn a_tampered_commit_is_exit_9() {
    let lab = Lab::new();
    let (alice, alice_pub, alice_fp) = lab.ssh_key("alice", "ed25519");
    let pgp = lab.gpg_key("Pat <pat@example.com>", "ed25519");
    let armored = lab.gpg(&["--export", "--armor", &pgp]);
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n{armored}"));
    for (name, sign, key) in [
        ("ssh", Sign::Ssh(&alice), alice_fp.as_str()),
        ("pgp", Sign::Pgp(&pgp), pgp.as_str()),
    ] {
        let signed = lab.commit(&format!("{name}.txt"), sign);
        assert!(lab.git_verifies("verify-commit", &signed, &keys));
        // Same tree, same gpgsig header, another message: what a forger would try.
        let raw = lab.raw_commit(&signed);
        assert!(raw.contains("\ngpgsig "), "{raw}");
        let forged = raw.replace(&format!("add {name}.txt"), "add a backdoor");
        assert_ne!(forged, raw);
        let commit = lab.write_commit(forged.as_bytes());
        lab.push();
        assert!(!lab.git_verifies("verify-commit", &commit, &keys));
        let dest = lab.path(&format!("dest-{name}"));
        let out = clone(&lab.local_url(), &dest, &keys, &[]);
        let line = assert_untrusted(&out, &commit, key);
        assert!(line.contains("does not verify"), "{line}");
        assert!(!dest.exists());
        // Back to a signed history for the next round.
        lab.git(&["reset", "-q", "--hard", &signed]);
    }
}

#[test]
fn a_signature_outside_namespace_git_or_its_validity_is_refused() {
    let lab = Lab::new();
    let (alice, alice_pub, alice_fp) = lab.ssh_key("alice", "ed25519");
    // A commit whose gpgsig is an SSH signature of the very same bytes, but made for the
    // namespace `file` (`ssh-keygen -Y sign -n file`): valid, yet not a git signature.
    let base = lab.commit("a.txt", Sign::Unsigned);
    let payload = lab.raw_commit(&base);
    let payload_file = lab.path("payload");
    std::fs::write(&payload_file, &payload).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(&alice)
        .arg(&payload_file)
        .status()
        .unwrap();
    assert!(st.success());
    let sig = std::fs::read_to_string(lab.path("payload.sig")).unwrap();
    let (headers, message) = payload.split_once("\n\n").unwrap();
    let gpgsig = sig.trim_end().replace('\n', "\n ");
    let commit = lab.write_commit(format!("{headers}\ngpgsig {gpgsig}\n\n{message}").as_bytes());
    lab.push();
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n"));
    assert!(!lab.git_verifies("verify-commit", &commit, &keys));
    let out = clone(&lab.local_url(), &lab.path("ns"), &keys, &[]);
    let line = assert_untrusted(&out, &commit, &alice_fp);
    assert!(line.contains("namespace `file`"), "{line}");

    // A git signature by a key the file allows for other namespaces only, or only before the
    // commit was made, is refused too; git says the same.
    let signed = lab.commit("b.txt", Sign::Ssh(&alice));
    lab.push();
    for (name, options) in [
        ("file-only", "namespaces=\"file\""),
        ("expired", "valid-before=\"20000101\""),
        ("not-yet", "valid-after=\"29990101\""),
    ] {
        let keys = lab.keys(name, &format!("alice@example.com {options} {alice_pub}\n"));
        assert!(!lab.git_verifies("verify-commit", &signed, &keys), "{name}");
        let out = clone(&lab.local_url(), &lab.path(name), &keys, &[]);
        let line = assert_untrusted(&out, &signed, &alice_fp);
        assert!(line.contains("not allowed for this signature"), "{line}");
    }
    let ok_keys = lab.keys(
        "in-range",
        &format!(
            "alice@example.com namespaces=\"file,git\",valid-after=\"20000101\" {alice_pub}\n"
        ),
    );
    assert!(lab.git_verifies("verify-commit", &signed, &ok_keys));
    ok(&clone(
        &lab.local_url(),
        &lab.path("in-range-dest"),
        &ok_keys,
        &[],
    ));
}

#[test]
fn a_rerun_to_an_unsigned_commit_keeps_the_verified_checkout() {
    let lab = Lab::new();
    let (alice, alice_pub, _) = lab.ssh_key("alice", "ed25519");
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n"));
    let first = lab.commit("a.txt", Sign::Ssh(&alice));
    lab.push();
    let http = HttpServer::start_at(&lab.path("repos"));
    let url = http.http_url("public/r.git");
    let dest = lab.path("dest");
    ok(&clone(&url, &dest, &keys, &[]));
    assert_eq!(head(&dest), first);

    // Someone pushes an unsigned commit that changes a file and adds one.
    std::fs::write(lab.path("work/a.txt"), "changed\n").unwrap();
    let unsigned = lab.commit("evil.txt", Sign::Unsigned);
    lab.push();
    let out = clone(&url, &dest, &keys, &[]);
    assert_untrusted(&out, &unsigned, "unsigned");
    assert_eq!(head(&dest), first, "HEAD stays at the verified commit");
    assert_eq!(git_out(&dest, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(git_out(&dest, &["rev-parse", "main"]), first);
    assert_clean(&dest);
    assert!(!dest.join("evil.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dest.join("a.txt")).unwrap(),
        "a.txt\n"
    );

    // A signed commit on top is checked out by the next run.
    let signed = lab.commit("good.txt", Sign::Ssh(&alice));
    lab.push();
    ok(&clone(&url, &dest, &keys, &[]));
    assert_eq!(head(&dest), signed);
    assert_clean(&dest);
    assert!(!dest.join(".git/gitinit-incomplete").exists());
}

#[test]
fn a_bad_keys_file_is_exit_2_naming_its_line() {
    let lab = Lab::new();
    let (_, alice_pub, _) = lab.ssh_key("alice", "ed25519");
    lab.commit("a.txt", Sign::Unsigned);
    lab.push();
    let private = std::fs::read_to_string(lab.path("alice")).unwrap();
    let secret_line = private.lines().nth(1).unwrap().to_string();
    for (name, text, says) in [
        (
            "ca",
            format!("# CA\n*@example.com cert-authority {alice_pub}\n"),
            ":2: `cert-authority`",
        ),
        (
            "garbage",
            "alice@example.com not-a-key\n".to_string(),
            ":1: no SSH public key",
        ),
        (
            "private",
            format!("# oops\n\n{private}"),
            ":3: this is a private key",
        ),
        ("empty", "# nothing yet\n".to_string(), "holds no key"),
        (
            "pgp",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n"
                .to_string(),
            ":1: the armored OpenPGP public key block cannot be read (",
        ),
    ] {
        let keys = lab.keys(name, &text);
        let out = clone(&lab.local_url(), &lab.path(name), &keys, &[]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        let last = out.stderr.lines().last().unwrap_or_default();
        assert!(last.contains(says), "{name}: {last}");
        assert!(!lab.path(name).exists(), "{name}: nothing was written");
        common::assert_no_secret(&[&out.stdout, &out.stderr], &lab.path(name), &secret_line);
    }
    let out = clone(&lab.local_url(), &lab.path("d"), &lab.path("missing"), &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("cannot read it"), "{}", out.stderr);
}

/// A signature covers the commit, which names its tree and blobs by id; a local source's object
/// files are linked as they are, so one swapped for another object's file would be checked out
/// under a valid signature unless every object read is hashed again. Both checkout paths (a few
/// files: libgit2's; many: the parallel writer), a swapped blob and a swapped tree: exit 4.
#[test]
fn a_local_source_with_a_swapped_object_is_refused_despite_a_valid_signature() {
    for (case, fillers) in [("blob", 0), ("blob", 70), ("tree", 0)] {
        let lab = Lab::new();
        let (alice, alice_pub, _) = lab.ssh_key("alice", "ed25519");
        let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n"));
        for i in 0..fillers {
            std::fs::write(lab.path(&format!("work/f{i}.txt")), format!("{i}\n")).unwrap();
        }
        lab.git(&["add", "."]);
        let commit = lab.commit("a.txt", Sign::Ssh(&alice));
        lab.push();
        // The other object, written in the work repository only; the bare repository got
        // loose objects from the push (fewer than receive.unpackLimit).
        let (genuine, other) = match case {
            "blob" => {
                let evil = lab.path("evil.txt");
                std::fs::write(&evil, "evil\n").unwrap();
                let other = lab.git(&["hash-object", "-w", evil.to_str().unwrap()]);
                (lab.git(&["rev-parse", "HEAD:a.txt"]), other)
            }
            _ => {
                std::fs::write(lab.path("work/a.txt"), "evil\n").unwrap();
                lab.git(&["add", "a.txt"]);
                let other = lab.git(&["write-tree"]);
                lab.git(&["reset", "-q", "--hard"]);
                (lab.git(&["rev-parse", "HEAD^{tree}"]), other)
            }
        };
        let loose = |root: &str, id: &str| lab.path(&format!("{root}/{}/{}", &id[..2], &id[2..]));
        let target = loose("repos/r.git/objects", &genuine);
        assert!(target.exists(), "{case}: the push left loose objects");
        if case == "tree" {
            // The swapped tree's blob must be there for the swap to matter.
            let blob = lab.git(&["rev-parse", &format!("{other}:a.txt")]);
            std::fs::create_dir_all(loose("repos/r.git/objects", &blob).parent().unwrap()).unwrap();
            std::fs::copy(
                loose("work/.git/objects", &blob),
                loose("repos/r.git/objects", &blob),
            )
            .unwrap();
        }
        std::fs::remove_file(&target).unwrap();
        std::fs::copy(loose("work/.git/objects", &other), &target).unwrap();
        let dest = lab.path("dest");
        let out = clone(&lab.local_url(), &dest, &keys, &[]);
        assert_eq!(out.code, 4, "{case} {fillers}: {}", out.stderr);
        assert!(
            out.stderr.contains("object hash mismatch"),
            "{case}: {}",
            out.stderr
        );
        assert!(!dest.exists(), "{case}: nothing of {commit} is left");
    }
}

/// SPEC §14: the superproject's commit is verified, its submodules' commits are not (the
/// signed superproject pins them by id).
#[test]
fn submodule_commits_are_not_verified() {
    let lab = Lab::new();
    let (alice, alice_pub, alice_fp) = lab.ssh_key("alice", "ed25519");
    let keys = lab.keys("keys", &format!("alice@example.com {alice_pub}\n"));
    let root = lab.dir.path();
    git_out(
        root,
        &["init", "-q", "--bare", "-b", "main", "repos/sub.git"],
    );
    git_out(root, &["init", "-q", "-b", "main", "subwork"]);
    let sub = lab.path("subwork");
    std::fs::write(sub.join("sub.txt"), "sub\n").unwrap();
    git_out(&sub, &["add", "sub.txt"]);
    git_out(
        &sub,
        &[
            "-c",
            "user.name=U",
            "-c",
            "user.email=u@x",
            "commit",
            "-q",
            "-m",
            "unsigned",
        ],
    );
    git_out(&sub, &["push", "-q", "../repos/sub.git", "main"]);
    let sub_commit = git_out(&sub, &["rev-parse", "HEAD"]);
    std::fs::write(
        lab.path("work/.gitmodules"),
        "[submodule \"libs/sub\"]\n\tpath = libs/sub\n\turl = ../sub.git\n",
    )
    .unwrap();
    lab.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sub_commit},libs/sub"),
    ]);
    lab.git(&["add", ".gitmodules"]);
    let commit = lab.commit("super.txt", Sign::Ssh(&alice));
    lab.push();
    let http = HttpServer::start_at(&lab.path("repos"));
    let dest = lab.path("dest");
    let out = clone(
        &http.http_url("public/r.git"),
        &dest,
        &keys,
        &["--submodules", "recursive"],
    );
    ok(&out);
    assert_eq!(head(&dest), commit);
    assert_eq!(head(&dest.join("libs/sub")), sub_commit);
    let r = report(&out);
    assert_eq!(r["signature"]["key"], alice_fp.as_str(), "{r}");
    assert_eq!(r["submodules"][0]["commit"], sub_commit.as_str(), "{r}");
}

/// A signature by an OpenPGP key revoked since is refused, as `git verify-commit` refuses it.
#[test]
fn a_revoked_openpgp_key_is_refused() {
    let lab = Lab::new();
    let fpr = lab.gpg_key("Rex <rex@example.com>", "ed25519");
    let commit = lab.commit("a.txt", Sign::Pgp(&fpr));
    lab.push();
    let before = lab.keys("before", &lab.gpg(&["--export", "--armor", &fpr]));
    ok(&clone(&lab.local_url(), &lab.path("ok"), &before, &[]));
    // gpg's own revocation certificate; its armor line is prefixed with ':' against mistakes.
    let rev = std::fs::read_to_string(lab.path(&format!("gnupg/openpgp-revocs.d/{fpr}.rev")))
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    let rev_file = lab.path("rev.asc");
    std::fs::write(&rev_file, rev).unwrap();
    lab.gpg(&["--import", rev_file.to_str().unwrap()]);
    let after = lab.keys("after", &lab.gpg(&["--export", "--armor", &fpr]));
    assert!(!lab.git_verifies("verify-commit", &commit, &after));
    let out = clone(&lab.local_url(), &lab.path("revoked"), &after, &[]);
    let line = assert_untrusted(&out, &commit, &fpr);
    assert!(line.contains("is revoked"), "{line}");
    assert!(!lab.path("revoked").exists());
}
