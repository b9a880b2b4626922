//! SSH keys as users paste them, and host-key trust (SPEC §2, §8, §9). Pure logic: libgit2
//! calls into it from the credentials and certificate callbacks.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Why a key cannot be used. The messages say what to do and never quote key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// A public key where the private key belongs.
    PublicKey(String),
    /// A PuTTY `.ppk` key.
    Putty,
    /// Base64 without its BEGIN/END lines.
    MissingArmor,
    /// An armoured block that is not a private key we know.
    Unrecognised,
    Empty,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::PublicKey(kind) => write!(f, "this is a public key ({kind} …): give the private key (the file without .pub)"),
            KeyProblem::Putty => f.write_str("this is a PuTTY .ppk key: convert it with `puttygen key.ppk -O private-openssh -o id_ed25519` and give that file"),
            KeyProblem::MissingArmor => f.write_str("the key is missing its -----BEGIN ... PRIVATE KEY----- / -----END ... PRIVATE KEY----- lines: copy the whole file, those lines included"),
            KeyProblem::Unrecognised => f.write_str("this is not a private key gitinit can read: give an ed25519, ECDSA or RSA private key in OpenSSH or PEM format"),
            KeyProblem::Empty => f.write_str("the key is empty"),
        }
    }
}

const PRIVATE_LABELS: [&str; 5] = [
    "OPENSSH PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

/// Accepts a key as it arrives through a Kubernetes secret or env var: CRLF line ends,
/// surrounding blanks, lines flattened with literal `\n` or with spaces. Returns the key with
/// its lines rebuilt.
pub fn normalize_private_key(contents: &str) -> Result<String, KeyProblem> {
    let text = contents
        .replace("\\r\\n", "\n")
        .replace("\\n", "\n")
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyProblem::Empty);
    }
    let first_word = text.split_whitespace().next().unwrap_or_default();
    if first_word.starts_with("ssh-")
        || first_word.starts_with("ecdsa-sha2-")
        || first_word.starts_with("sk-")
    {
        return Err(KeyProblem::PublicKey(first_word.to_string()));
    }
    if text.starts_with("PuTTY-User-Key-File-") {
        return Err(KeyProblem::Putty);
    }
    if text.contains("BEGIN PUBLIC KEY")
        || text.contains("BEGIN SSH2 PUBLIC KEY")
        || text.contains("BEGIN RSA PUBLIC KEY")
    {
        return Err(KeyProblem::PublicKey("PEM public key".into()));
    }
    let Some(begin) = text.find("-----BEGIN ") else {
        let looks_base64 = text.len() > 40
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=\n ".contains(c));
        return Err(if looks_base64 {
            KeyProblem::MissingArmor
        } else {
            KeyProblem::Unrecognised
        });
    };
    let after = &text[begin + "-----BEGIN ".len()..];
    let label_end = after.find("-----").ok_or(KeyProblem::Unrecognised)?;
    let label = after[..label_end].trim();
    if !PRIVATE_LABELS.contains(&label) {
        return Err(KeyProblem::Unrecognised);
    }
    let end_marker = format!("-----END {label}-----");
    let body_start = begin + "-----BEGIN ".len() + label_end + 5;
    let body_end = text[body_start..]
        .find(&end_marker)
        .ok_or(KeyProblem::MissingArmor)?
        + body_start;
    let body = &text[body_start..body_end];

    // Encrypted PEM keys carry `Proc-Type:` and `DEK-Info:` headers before a blank line.
    let mut headers = vec![];
    let mut rest = body.trim();
    for name in ["Proc-Type:", "DEK-Info:"] {
        if let Some(pos) = rest.find(name) {
            let value_start = pos + name.len();
            let value = rest[value_start..].trim_start();
            let end = value
                .find(|c: char| c.is_whitespace())
                .unwrap_or(value.len());
            headers.push(format!("{name} {}", &value[..end]));
            rest = value[end..].trim_start();
        }
    }
    let b64: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
    if b64.is_empty()
        || !b64
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    {
        return Err(KeyProblem::Unrecognised);
    }
    let width = if label == "OPENSSH PRIVATE KEY" {
        70
    } else {
        64
    };
    let mut out = format!("-----BEGIN {label}-----\n");
    if !headers.is_empty() {
        out.push_str(&headers.join("\n"));
        out.push_str("\n\n");
    }
    for chunk in b64.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&end_marker);
    out.push('\n');
    Ok(out)
}

/// Whether the key needs a passphrase.
pub fn is_encrypted(key: &str) -> bool {
    if key.contains("Proc-Type: 4,ENCRYPTED") || key.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return true;
    }
    if !key.contains("BEGIN OPENSSH PRIVATE KEY") {
        return false;
    }
    let b64: String = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let Ok(raw) = STANDARD.decode(b64) else {
        return false;
    };
    // openssh-key-v1\0, then a length-prefixed cipher name.
    let magic = b"openssh-key-v1\0";
    if !raw.starts_with(magic) {
        return false;
    }
    read_string(&raw[magic.len()..]).is_some_and(|(cipher, _)| cipher != b"none")
}

fn read_string(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = buf.get(4..4 + len)?;
    Some((s, &buf[4 + len..]))
}

/// `SHA256:` + unpadded base64 of the key blob's SHA-256, as `ssh-keygen -l` prints it.
pub fn fingerprint_sha256(key_blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(key_blob))
    )
}

/// The key type named at the start of an SSH key blob (`ssh-ed25519`).
pub fn key_type_name(key_blob: &[u8]) -> String {
    read_string(key_blob)
        .map(|(t, _)| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_else(|| "unknown-key-type".into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    Match,
    /// The host is known with other key(s) of the offered type: the key changed.
    Mismatch {
        expected_types: Vec<String>,
    },
    /// The offered key is marked `@revoked`.
    Revoked,
    /// The host is not listed for this key type.
    Unknown,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Plain {
        pattern: String,
        negated: bool,
    },
    /// `|1|salt|hmac`: HMAC-SHA1(salt, host as written).
    Hashed {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    revoked: bool,
    hosts: Vec<HostPattern>,
    key_type: String,
    blob: Vec<u8>,
}

/// An OpenSSH known_hosts file: plain and hashed host entries, `[host]:port`, `*`/`?`
/// wildcards, `!` negation, `@revoked`. `@cert-authority` lines are skipped (libgit2 gives us
/// the host key, not a certificate).
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    pub fn parse(text: &str) -> KnownHosts {
        let mut entries = vec![];
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace().peekable();
            let mut revoked = false;
            if let Some(m) = fields.peek().filter(|f| f.starts_with('@')) {
                match *m {
                    "@revoked" => revoked = true,
                    _ => continue,
                }
                fields.next();
            }
            let (Some(hosts), Some(key_type), Some(key)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(blob) = STANDARD.decode(key) else {
                continue;
            };
            let hosts = hosts
                .split(',')
                .filter_map(|h| {
                    if let Some(rest) = h.strip_prefix("|1|") {
                        let (salt, hash) = rest.split_once('|')?;
                        Some(HostPattern::Hashed {
                            salt: STANDARD.decode(salt).ok()?,
                            hash: STANDARD.decode(hash).ok()?,
                        })
                    } else {
                        let (negated, p) = match h.strip_prefix('!') {
                            Some(p) => (true, p),
                            None => (false, h),
                        };
                        Some(HostPattern::Plain {
                            pattern: p.to_ascii_lowercase(),
                            negated,
                        })
                    }
                })
                .collect();
            entries.push(Entry {
                revoked,
                hosts,
                key_type: key_type.to_string(),
                blob,
            });
        }
        KnownHosts { entries }
    }

    /// Checks the key `host` offered on `port`. A host listed only with keys of other types is
    /// `Unknown` for this type (OpenSSH would also look for a key of the offered type); a host
    /// listed with other keys of the same type has changed its key.
    pub fn check(&self, host: &str, port: u16, key_blob: &[u8]) -> HostKeyStatus {
        let name = if port == 22 {
            host.to_ascii_lowercase()
        } else {
            format!("[{}]:{port}", host.to_ascii_lowercase())
        };
        let offered_type = key_type_name(key_blob);
        let mut same_type_other_key = vec![];
        let mut matched = false;
        for e in self.entries.iter().filter(|e| e.matches(&name)) {
            if e.blob == key_blob {
                if e.revoked {
                    return HostKeyStatus::Revoked;
                }
                matched = true;
            } else if !e.revoked && e.key_type == offered_type {
                same_type_other_key.push(e.key_type.clone());
            }
        }
        if matched {
            HostKeyStatus::Match
        } else if !same_type_other_key.is_empty() {
            HostKeyStatus::Mismatch {
                expected_types: same_type_other_key,
            }
        } else {
            HostKeyStatus::Unknown
        }
    }
}

impl Entry {
    fn matches(&self, name: &str) -> bool {
        let mut any = false;
        for p in &self.hosts {
            match p {
                HostPattern::Hashed { salt, hash } => {
                    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                        continue;
                    };
                    mac.update(name.as_bytes());
                    if mac.verify_slice(hash).is_ok() {
                        any = true;
                    }
                }
                HostPattern::Plain { pattern, negated } => {
                    if wildcard(pattern, name) {
                        if *negated {
                            return false;
                        }
                        any = true;
                    }
                }
            }
        }
        any
    }
}

/// `*` and `?` as in OpenSSH host patterns.
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The host keys github.com, gitlab.com and bitbucket.org publish, so SSH works with host
/// verification on and no known_hosts file. Sources, each key's SHA-256 fingerprint checked
/// against them in the tests below:
/// - GitHub: docs.github.com, "GitHub's SSH key fingerprints" (also api.github.com/meta);
/// - GitLab: docs.gitlab.com, "SSH host keys fingerprints" (user/gitlab_com);
/// - Bitbucket Cloud: support.atlassian.com, "Configure SSH and two-step verification"
///   (bitbucket.org/site/ssh), the keys in use since the 2023 rotation.
const BUILTIN_KNOWN_HOSTS: &str = "\
github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=
github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=
gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf
gitlab.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY=
gitlab.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpzeQ+jqCMRgBqB98u3z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHhO7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUqu1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohTyaDUz2LN5JoH839hViyEG82yB+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPASUEMaieWVNTRCtJ4S8H+9
bitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO
bitbucket.org ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=
bitbucket.org ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbpKTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSxm6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqNyieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtvw65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5zauIhxcjX+xHv4M=
";

pub fn builtin_known_hosts() -> KnownHosts {
    KnownHosts::parse(BUILTIN_KNOWN_HOSTS)
}

/// Checks an SSH server's host key (`blob`, as the server offered it) against `keys`; the error
/// is (what happened, what to do), for an [`crate::error::Error::Trust`].
pub fn verify_host_key(
    keys: &crate::config::HostKeys,
    host: &str,
    port: u16,
    blob: &[u8],
) -> Result<(), (String, String)> {
    use crate::config::HostKeys;
    let (status, source) = match keys {
        HostKeys::Skip => return Ok(()),
        HostKeys::File(path, known) => (
            known.check(host, port, blob),
            format!("known_hosts file {}", path.display()),
        ),
        HostKeys::Builtin => (
            builtin_known_hosts().check(host, port, blob),
            "the built-in host keys (github.com, gitlab.com, bitbucket.org)".to_string(),
        ),
    };
    let offered = format!("{} {}", key_type_name(blob), fingerprint_sha256(blob));
    let shown_host = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    match status {
        HostKeyStatus::Match => Ok(()),
        HostKeyStatus::Unknown => Err((
            format!("the SSH host key of {shown_host} is unknown: it offered {offered}, which is not in {source}"),
            format!("If that fingerprint is the server's (ask its admin, or check the provider's published fingerprints), add its line (`ssh-keyscan -p {port} {host}`) to a known_hosts file and pass it with --known-hosts"),
        )),
        HostKeyStatus::Mismatch { .. } | HostKeyStatus::Revoked => Err((
            format!("the SSH host key of {shown_host} has CHANGED or is revoked: it offered {offered}, which does not match {source}"),
            "This may be an attack (someone between you and the server) or a re-keyed server: do not trust it until its admin confirms the new fingerprint, then update the known_hosts file".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_keys_match_the_published_fingerprints() {
        let published = [
            (
                "github.com",
                "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
            ),
            (
                "github.com",
                "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
            ),
            (
                "github.com",
                "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
            ),
            (
                "gitlab.com",
                "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
            ),
            (
                "gitlab.com",
                "SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
            ),
            (
                "gitlab.com",
                "SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
            ),
            (
                "bitbucket.org",
                "SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM",
            ),
            (
                "bitbucket.org",
                "SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0",
            ),
            (
                "bitbucket.org",
                "SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E",
            ),
        ];
        let kh = builtin_known_hosts();
        assert_eq!(kh.entries.len(), published.len());
        for (e, (host, fp)) in kh.entries.iter().zip(published) {
            assert_eq!(fingerprint_sha256(&e.blob), fp, "{host} {}", e.key_type);
            assert_eq!(kh.check(host, 22, &e.blob), HostKeyStatus::Match);
            assert_eq!(kh.check("example.com", 22, &e.blob), HostKeyStatus::Unknown);
        }
        // github.com offering gitlab's ed25519 key: the key changed.
        let gitlab_ed = &kh.entries[3].blob;
        assert!(matches!(
            kh.check("github.com", 22, gitlab_ed),
            HostKeyStatus::Mismatch { .. }
        ));
    }

    #[test]
    fn hashed_ported_wildcard_and_revoked_entries() {
        let kh = builtin_known_hosts();
        let key = kh.entries[0].blob.clone();
        let b64 = STANDARD.encode(&key);
        let salt = b"0123456789abcdefghij";
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let hash = mac.finalize().into_bytes();
        let text = format!(
            "# comment\n|1|{}|{} ssh-ed25519 {b64}\n*.example.org,!bad.example.org ssh-ed25519 {b64}\n@revoked old.example.net ssh-ed25519 {b64}\n@cert-authority *.x ssh-ed25519 {b64}\n",
            STANDARD.encode(salt),
            STANDARD.encode(hash)
        );
        let kh2 = KnownHosts::parse(&text);
        assert_eq!(kh2.check("127.0.0.1", 2222, &key), HostKeyStatus::Match);
        assert_eq!(kh2.check("127.0.0.1", 22, &key), HostKeyStatus::Unknown);
        assert_eq!(kh2.check("git.example.org", 22, &key), HostKeyStatus::Match);
        assert_eq!(
            kh2.check("bad.example.org", 22, &key),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            kh2.check("old.example.net", 22, &key),
            HostKeyStatus::Revoked
        );
        assert_eq!(kh2.check("x.x", 22, &key), HostKeyStatus::Unknown);
    }

    const BODY: &str = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQAAACDvJ9Ijs7bZ2JvGeYBoz3n7QK5MZg7zPN+4tr5x2u0IRgAAAJhTVy0dU1ctHQAAAAtzc2gtZWQyNTUxOQAAACDvJ9Ijs7bZ2JvGeYBoz3n7QK5MZg7zPN+4tr5x2u0IRgAAAEB4bnV0ZXN0a2V5Zm9ydW5pdHRlc3RzMDEyMzQ1Njc4OWFiY2Rl7yfSI7O22dibxnmAaM95+0CuTGYO8zzfuLa+cdrtCEYAAAAQdGVzdEBleGFtcGxlLmNvbQECAwQF";

    fn pasted(sep: &str) -> String {
        let lines: Vec<&str> = BODY
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----{sep}{}{sep}-----END OPENSSH PRIVATE KEY-----{sep}",
            lines.join(sep)
        )
    }

    #[test]
    fn keys_as_users_paste_them() {
        let canonical = normalize_private_key(&pasted("\n")).unwrap();
        for form in [
            pasted("\r\n"),
            pasted("\\n"),
            pasted(" "),
            format!("  \n{}\n\n", pasted("\n")),
        ] {
            assert_eq!(normalize_private_key(&form).unwrap(), canonical, "{form:?}");
        }
        assert!(!is_encrypted(&canonical));
    }

    #[test]
    fn wrong_things_where_the_key_belongs() {
        assert!(matches!(
            normalize_private_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnk user@host"),
            Err(KeyProblem::PublicKey(k)) if k == "ssh-ed25519"
        ));
        assert_eq!(
            normalize_private_key("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none"),
            Err(KeyProblem::Putty)
        );
        assert_eq!(normalize_private_key(BODY), Err(KeyProblem::MissingArmor));
        assert_eq!(
            normalize_private_key("hello"),
            Err(KeyProblem::Unrecognised)
        );
        assert_eq!(normalize_private_key("  \n"), Err(KeyProblem::Empty));
        let msg = KeyProblem::PublicKey("ssh-rsa".into()).to_string();
        assert!(msg.contains("public key") && msg.contains("private key"));
    }

    #[test]
    fn encrypted_pem_keeps_its_headers() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\nDEK-Info: AES-128-CBC,0011\\n\\nQUJD REVG\\n-----END RSA PRIVATE KEY-----";
        let n = normalize_private_key(key).unwrap();
        assert_eq!(n, "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0011\n\nQUJDREVG\n-----END RSA PRIVATE KEY-----\n");
        assert!(is_encrypted(&n));
    }
}
