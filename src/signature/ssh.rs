//! SSH signatures as git makes them with `gpg.format=ssh` (an SSHSIG, namespace `git`), checked
//! against an `allowed_signers` file in the format of ssh-keygen(1) "ALLOWED SIGNERS", as git's
//! `gpg.ssh.allowedSignersFile`: `principals [options] keytype base64 [comment]`, with the
//! options `namespaces="…"`, `valid-after="…"`, `valid-before="…"`; `cert-authority` is refused
//! (gitinit checks no SSH certificates).

use ssh_key::{HashAlg, PublicKey, SshSig};

use super::Rejected;

/// The namespace git signs commits and tags in.
const NAMESPACE: &str = "git";

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// Its line in the file, for messages.
    pub line: usize,
    /// The principals as written (`alice@example.com,bob@example.com`): who signed, in the report.
    pub principals: String,
    pub key: PublicKey,
    /// `namespaces="…"`: the patterns the signature's namespace must match (none: any).
    pub namespaces: Option<String>,
    /// `valid-after` and `valid-before`, as seconds since the epoch.
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
}

/// A signer line of an allowed_signers file (not a comment, not blank); the error says what is
/// wrong with it, without repeating the line.
pub fn parse_line(line: &str, number: usize) -> Result<AllowedSigner, String> {
    let line = line.trim();
    let (principals, rest) = take_token(line)?;
    let principals = principals.trim_matches('"').to_string();
    if principals.is_empty() {
        return Err("no principals before the key".into());
    }
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Err("a principal but no key (`principals [options] keytype base64`)".into());
    }
    // Options come before the key when the next token is no key type (as ssh-keygen decides).
    let (options, key_text) = if looks_like_key_type(rest) {
        ("", rest)
    } else {
        let (opts, after) = take_token(rest)?;
        (opts, after.trim_start())
    };
    let mut signer = AllowedSigner {
        line: number,
        principals,
        key: parse_key(key_text)?,
        namespaces: None,
        valid_after: None,
        valid_before: None,
    };
    for opt in split_options(options)? {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v.trim_matches('"'))),
            None => (opt, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", _) => {
                return Err("`cert-authority`: gitinit verifies signatures by plain keys only, not SSH certificates; list the signers' public keys instead".into())
            }
            ("namespaces", Some(v)) => signer.namespaces = Some(v.to_string()),
            ("valid-after", Some(v)) => signer.valid_after = Some(parse_time(v)?),
            ("valid-before", Some(v)) => signer.valid_before = Some(parse_time(v)?),
            (n, _) => {
                return Err(format!(
                    "unknown option `{n}` (allowed: namespaces=\"git\", valid-after=\"YYYYMMDD\", valid-before=\"YYYYMMDD\")"
                ))
            }
        }
    }
    Ok(signer)
}

/// The first token: up to unquoted whitespace (quotes may hold spaces and commas).
fn take_token(s: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((&s[..i], &s[i..])),
            _ => {}
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    Ok((s, ""))
}

fn split_options(s: &str) -> Result<Vec<&str>, String> {
    let mut out = vec![];
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    out.push(&s[start..]);
    Ok(out.into_iter().filter(|o| !o.is_empty()).collect())
}

fn looks_like_key_type(s: &str) -> bool {
    let word = s.split_whitespace().next().unwrap_or_default();
    word.starts_with("ssh-") || word.starts_with("ecdsa-") || word.starts_with("sk-")
}

fn parse_key(text: &str) -> Result<PublicKey, String> {
    let kind = text.split_whitespace().next().unwrap_or_default();
    if kind.contains("-cert-") {
        return Err(format!(
            "`{kind}` is an SSH certificate: list the signer's plain public key instead"
        ));
    }
    PublicKey::from_openssh(text).map_err(|e| {
        format!("no SSH public key (`keytype base64`, as in a .pub file) where one belongs: {e}")
    })
}

/// `YYYYMMDD[HHMM[SS]][Z]`, as ssh-keygen reads it; without `Z` it is taken as UTC too (the
/// zone of a container), where ssh-keygen takes the local zone.
fn parse_time(v: &str) -> Result<i64, String> {
    let bad = || format!("`{v}` is no time (YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optional Z)");
    let digits = v.strip_suffix(['Z', 'z']).unwrap_or(v);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).map_or(0, |s| s.parse::<i64>().unwrap_or(0));
    let (y, mo, d) = (n(0..4), n(4..6), n(6..8));
    let (h, mi, s) = (n(8..10), n(10..12), n(12..14));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A shell-like pattern list (`git,file`, `*`, `!foo`) as ssh matches namespaces: a negated
/// match refuses, else any positive match accepts.
fn matches_pattern_list(value: &str, list: &str) -> bool {
    let mut accepted = false;
    for p in list.split(',').map(str::trim) {
        match p.strip_prefix('!') {
            Some(neg) if wildcard(neg, value) => return false,
            Some(_) => {}
            None => accepted |= wildcard(p, value),
        }
    }
    accepted
}

fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// What verified an SSH signature.
pub struct Good {
    pub key: String,
    pub principals: String,
}

/// Verifies `armored` (an SSH SIGNATURE block) over `data` against the allowed signers; `when`
/// is the time the signature claims (the committer's or tagger's date), which `valid-after` and
/// `valid-before` are checked against, as git does (`-Overify-time`).
pub fn verify(
    allowed: &[AllowedSigner],
    armored: &str,
    data: &[u8],
    when: i64,
    file: &str,
) -> Result<Good, Rejected> {
    let sig = SshSig::from_pem(armored.trim()).map_err(|e| Rejected {
        key: "an unreadable SSH signature".into(),
        why: format!(
            "the SSH signature cannot be read ({}): it is damaged",
            super::one_line(&e)
        ),
    })?;
    let key = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let rejected = |why: String| Rejected {
        key: key.clone(),
        why,
    };
    if sig.namespace() != NAMESPACE {
        return Err(rejected(format!(
            "the SSH signature is for the namespace `{}`, not `git`: it was not made by git for a commit or tag",
            sig.namespace()
        )));
    }
    let same_key: Vec<&AllowedSigner> = allowed
        .iter()
        .filter(|a| a.key.key_data() == sig.public_key())
        .collect();
    let Some(first) = same_key.first() else {
        return Err(rejected(format!(
            "signed by the SSH key {key}, which {file} does not list. If you trust that key, add it to {file} (a line `PRINCIPAL {} AAAA…`, as in the signer's .pub file); else do not check out this revision",
            sig.algorithm()
        )));
    };
    first.key.verify(NAMESPACE, data, &sig).map_err(|e| {
        tracing::debug!(error = %super::one_line(&e), "the SSH signature does not verify");
        rejected(format!(
            "the SSH signature by {key} does not verify: the object was changed after it was signed, or the signature is damaged. Do not use this revision"
        ))
    })?;
    let usable = same_key.iter().find(|a| {
        a.namespaces
            .as_deref()
            .is_none_or(|n| matches_pattern_list(NAMESPACE, n))
            && a.valid_after.is_none_or(|t| when >= t)
            && a.valid_before.is_none_or(|t| when <= t)
    });
    match usable {
        Some(a) => Ok(Good {
            key,
            principals: a.principals.clone(),
        }),
        None => Err(rejected(format!(
            "the SSH key {key} is in {file} (line {}) but not allowed for this signature: its namespaces= leaves out `git`, or the signature's date is outside its valid-after/valid-before",
            first.line
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDJPpd3euHBV7mX9/kQjfL1xSeabxBMwjQm7P2njBH7A";

    #[test]
    fn lines_as_ssh_keygen_reads_them() {
        let s = parse_line(&format!("alice@example.com {KEY} a comment"), 3).unwrap();
        assert_eq!(s.principals, "alice@example.com");
        assert_eq!(s.line, 3);
        assert!(s.namespaces.is_none());
        let s = parse_line(
            &format!("\"a@x,b@x\" namespaces=\"git,file\",valid-after=\"20240101\",valid-before=\"20250101120000Z\" {KEY}"),
            1,
        )
        .unwrap();
        assert_eq!(s.principals, "a@x,b@x");
        assert_eq!(s.namespaces.as_deref(), Some("git,file"));
        assert_eq!(s.valid_after, Some(1_704_067_200));
        assert_eq!(s.valid_before, Some(1_735_732_800));
        for (bad, says) in [
            (format!("a@x cert-authority {KEY}"), "cert-authority"),
            (format!("a@x frobnicate {KEY}"), "unknown option"),
            ("a@x".to_string(), "no key"),
            ("a@x ssh-ed25519 notbase64".to_string(), "no SSH public key"),
            (format!("a@x valid-after=\"2024\" {KEY}"), "no time"),
            (format!("\"a@x {KEY}"), "quote"),
        ] {
            let e = parse_line(&bad, 1).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn namespace_patterns() {
        assert!(matches_pattern_list("git", "git"));
        assert!(matches_pattern_list("git", "file,g*"));
        assert!(!matches_pattern_list("git", "file"));
        assert!(!matches_pattern_list("git", "*,!git"));
    }
}
