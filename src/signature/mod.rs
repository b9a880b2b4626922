//! `--verify-signatures FILE` (SPEC §14): the fetched commit, or the signed annotated tag the
//! revision names, must carry a valid signature by a key of FILE, checked in-process before
//! anything is written to the working tree. FILE holds SSH `allowed_signers` lines ([`ssh`])
//! and/or armored OpenPGP public keys ([`openpgp`]). Submodule commits are not verified.

pub mod openpgp;
pub mod ssh;

use std::path::Path;

use git2::{ObjectType, Oid, Repository};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::Fetched;
use crate::revision::Target;

/// The keys FILE allows, parsed once by `resolve` (plain data).
#[derive(Debug, Clone)]
pub struct AllowedKeys {
    /// FILE as given, for messages.
    pub file: String,
    pub ssh: Vec<ssh::AllowedSigner>,
    pub openpgp: Vec<openpgp::Cert>,
}

const PGP_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const PGP_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

impl AllowedKeys {
    /// Reads FILE: allowed_signers lines (`#` comments, blank lines) and armored OpenPGP key
    /// blocks, in any order. The error names the line and never repeats its text (a private
    /// key pasted by mistake must not reach a log).
    pub fn parse(text: &str, file: &Path) -> Result<AllowedKeys> {
        let shown = file.display().to_string();
        let bad = |line: usize, what: String| {
            Error::invalid(format!(
                "--verify-signatures {shown}:{line}: {what}. FILE holds allowed_signers lines (`principal ssh-ed25519 AAAA…`) and/or armored OpenPGP public keys (`gpg --export --armor KEYID`)"
            ))
        };
        let mut keys = AllowedKeys {
            file: shown.clone(),
            ssh: vec![],
            openpgp: vec![],
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        while let Some((n, line)) = lines.next() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if t.contains("PRIVATE KEY") {
                return Err(bad(
                    n,
                    "this is a private key: give public keys only (and keep the private one secret)".into(),
                ));
            }
            if t == PGP_BEGIN {
                let mut block = String::from(PGP_BEGIN);
                block.push('\n');
                let mut closed = false;
                for (_, l) in lines.by_ref() {
                    block.push_str(l.trim_end());
                    block.push('\n');
                    if l.trim() == PGP_END {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(bad(
                        n,
                        format!("the OpenPGP key block has no `{PGP_END}` line"),
                    ));
                }
                for key in openpgp::parse_block(&block).map_err(|e| bad(n, e))? {
                    keys.openpgp.push(openpgp::Cert { line: n, key });
                }
                continue;
            }
            if t.starts_with("-----BEGIN ") {
                return Err(bad(
                    n,
                    "an armored block that is no OpenPGP public key block".into(),
                ));
            }
            keys.ssh.push(ssh::parse_line(t, n).map_err(|e| bad(n, e))?);
        }
        if keys.ssh.is_empty() && keys.openpgp.is_empty() {
            return Err(Error::invalid(format!(
                "--verify-signatures {shown}: holds no key. Give allowed_signers lines (`principal ssh-ed25519 AAAA…`) and/or armored OpenPGP public keys (`gpg --export --armor KEYID`)"
            )));
        }
        Ok(keys)
    }
}

/// A verified signature, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// `ssh` or `openpgp`.
    pub format: &'static str,
    /// `SHA256:…` for SSH, the primary key's 40 upper-case hex digits for OpenPGP.
    pub key: String,
    /// The principals of the allowed_signers line, or the key's primary user ID.
    pub signer: String,
}

/// Why a signature is not trusted: the key it names (its fingerprint, or what stands for it)
/// and the reason, with what to do.
#[derive(Debug)]
pub struct Rejected {
    pub key: String,
    pub why: String,
}

/// Verifies the signature of what `fetched` checks out: the annotated tag the revision names
/// when it is signed, else the commit.
pub fn verify(repo: &Repository, fetched: &Fetched, keys: &AllowedKeys) -> Result<Verified> {
    // A signature covers the commit's bytes, which name its tree by id; the checkout must then
    // get exactly the objects those ids name. A fetch computes every id it stores, but a local
    // source's object files are linked as they are, and `git::setup` turned libgit2's re-hash
    // on read off: a swapped tree file would be checked out under a valid signature. From here
    // on, every object read is hashed again (process-wide: the rest of this run).
    git2::opts::strict_hash_verification(true);
    let commit = fetched.commit;
    let fail = |r: Rejected| Error::Signature {
        commit: commit.to_string(),
        key: r.key,
        detail: r.why,
    };
    let internal = |what: &str, e: git2::Error| {
        Error::Internal(format!("{what} of {commit}: {}", e.message()))
    };
    let mut unsigned_tag = None;
    if let Target::Tag(name) = &fetched.target {
        if let Some((sig, data, when)) =
            signed_tag(repo, name).map_err(|e| internal("the tag", e))?
        {
            tracing::debug!(tag = %name, "verifying the signature of the annotated tag");
            return check(keys, &sig, &data, when).map_err(|mut r| {
                r.why = format!("tag `{name}`: {}", r.why);
                fail(r)
            });
        }
        unsigned_tag = Some(name.clone());
    }
    let when = repo
        .find_commit(commit)
        .map_err(|e| internal("reading the commit", e))?
        .committer()
        .when()
        .seconds();
    match repo.extract_signature(&commit, None) {
        Ok((sig, data)) => {
            let sig = String::from_utf8_lossy(&sig).into_owned();
            check(keys, &sig, &data, when).map_err(fail)
        }
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            let tag = match unsigned_tag {
                Some(t) => format!(" (nor is the tag `{t}`)"),
                None => String::new(),
            };
            Err(fail(Rejected {
                key: "unsigned".into(),
                why: format!(
                    "the commit is not signed{tag}, and --verify-signatures {} demands a signature by one of its keys. Sign the commit (`git commit -S`) or the tag (`git tag -s`), or check out a signed revision",
                    keys.file
                ),
            }))
        }
        Err(e) => Err(internal("reading the signature", e)),
    }
}

/// The signature, the signed bytes and the tagger's time of the annotated tag `refs/tags/NAME`,
/// when it is one and it is signed. As git: the signature is the last block of the message
/// that starts a line with `-----BEGIN … SIGNATURE-----`; what precedes it is signed.
fn signed_tag(
    repo: &Repository,
    name: &str,
) -> Result<Option<(String, Vec<u8>, i64)>, git2::Error> {
    let oid: Oid = repo.refname_to_id(&format!("refs/tags/{name}"))?;
    let odb = repo.odb()?;
    let obj = odb.read(oid)?;
    if obj.kind() != ObjectType::Tag {
        return Ok(None);
    }
    let raw = obj.data();
    let Some(at) = signature_start(raw) else {
        return Ok(None);
    };
    let when = repo
        .find_tag(oid)?
        .tagger()
        .map_or(0, |t| t.when().seconds());
    Ok(Some((
        String::from_utf8_lossy(&raw[at..]).into_owned(),
        raw[..at].to_vec(),
        when,
    )))
}

fn signature_start(raw: &[u8]) -> Option<usize> {
    const MARKERS: [&[u8]; 3] = [
        b"-----BEGIN PGP SIGNATURE-----",
        b"-----BEGIN SSH SIGNATURE-----",
        b"-----BEGIN SIGNED MESSAGE-----",
    ];
    let mut found = None;
    let mut start = 0;
    while start < raw.len() {
        if MARKERS.iter().any(|m| raw[start..].starts_with(m)) {
            found = Some(start);
        }
        start = match raw[start..].iter().position(|b| *b == b'\n') {
            Some(i) => start + i + 1,
            None => raw.len(),
        };
    }
    found
}

/// A library's error on one short line: the failure line is one line, and some errors span
/// several (rPGP's) or run long.
fn one_line(e: &dyn std::fmt::Display) -> String {
    let text = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match text.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// One signature over `data`, by its format.
fn check(keys: &AllowedKeys, sig: &str, data: &[u8], when: i64) -> Result<Verified, Rejected> {
    let first = sig.trim_start().lines().next().unwrap_or_default().trim();
    match first {
        "-----BEGIN SSH SIGNATURE-----" => {
            let g = ssh::verify(&keys.ssh, sig, data, when, &keys.file)?;
            Ok(Verified {
                format: "ssh",
                key: g.key,
                signer: g.principals,
            })
        }
        "-----BEGIN PGP SIGNATURE-----" | "-----BEGIN PGP MESSAGE-----" => {
            let g = openpgp::verify(&keys.openpgp, sig, data, &keys.file)?;
            Ok(Verified {
                format: "openpgp",
                key: g.key,
                signer: g.user,
            })
        }
        _ => Err(Rejected {
            key: "an unsupported signature".into(),
            why: "the signature is neither SSH nor OpenPGP (an X.509 signature?), which gitinit cannot check: sign with an SSH or OpenPGP key".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_of_a_tag_is_its_last_armored_block() {
        let raw = b"object 1\ntype commit\ntag v1\n\nmsg\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n";
        let at = signature_start(raw).unwrap();
        assert!(raw[at..].starts_with(b"-----BEGIN PGP"));
        assert!(raw[..at].ends_with(b"msg\n"));
        assert_eq!(signature_start(b"object 1\n\nno signature\n"), None);
        // Not at a line start: no signature.
        assert_eq!(
            signature_start(b"msg -----BEGIN SSH SIGNATURE-----\n"),
            None
        );
    }

    #[test]
    fn files_are_refused_with_their_line() {
        let f = Path::new("/keys");
        let err = |t: &str| AllowedKeys::parse(t, f).unwrap_err().to_string();
        assert!(err("# only a comment\n\n").contains("holds no key"));
        let e = err("# c\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n");
        assert!(e.contains("/keys:2: this is a private key"), "{e}");
        assert!(!e.contains("b3BlbnNzaC1rZXk"), "{e}");
        let e = err("\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n");
        assert!(
            e.contains("/keys:2:") && e.contains("END PGP PUBLIC KEY BLOCK"),
            "{e}"
        );
        let e = err("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnotbase64!!\n-----END PGP PUBLIC KEY BLOCK-----\n");
        assert!(
            e.contains("/keys:1:") && e.contains("cannot be read"),
            "{e}"
        );
        let e = err("a@x ssh-ed25519 AAAA\n");
        assert!(e.contains("/keys:1: no SSH public key"), "{e}");
    }
}
