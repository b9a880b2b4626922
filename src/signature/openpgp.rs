//! OpenPGP signatures as gpg makes them for `git commit -S` and `git tag -s` (a detached,
//! armored signature), checked against armored public keys (`gpg --export --armor`): several
//! keys in one block or in several blocks, signing subkeys bound to their primary key.
//! A revoked key, a subkey without a valid binding (and back-signature), and a signature made
//! after the key expired are refused, as `git verify-commit` refuses them.

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};

use super::Rejected;

/// A public key (certificate) from the file.
#[derive(Debug, Clone)]
pub struct Cert {
    /// The line its armor block starts on, for messages.
    pub line: usize,
    pub key: SignedPublicKey,
}

/// The keys of one `-----BEGIN PGP PUBLIC KEY BLOCK-----` block.
pub fn parse_block(text: &str) -> Result<Vec<SignedPublicKey>, String> {
    let unreadable = |e: pgp::errors::Error| {
        format!(
            "the armored OpenPGP public key block cannot be read ({}): export it again (`gpg --export --armor KEYID`)",
            super::one_line(&e)
        )
    };
    let (keys, _) = SignedPublicKey::from_armor_many(std::io::Cursor::new(text.as_bytes()))
        .map_err(unreadable)?;
    let keys = keys.collect::<Result<Vec<_>, _>>().map_err(unreadable)?;
    if keys.is_empty() {
        return Err("the OpenPGP key block holds no public key".into());
    }
    Ok(keys)
}

/// The upper-case hex fingerprint, as `gpg --fingerprint` shows it without spaces.
fn hex(fp: &pgp::types::Fingerprint) -> String {
    fp.as_bytes().iter().map(|b| format!("{b:02X}")).collect()
}

/// What verified an OpenPGP signature: the primary key's fingerprint and its primary user ID.
pub struct Good {
    pub key: String,
    pub user: String,
}

/// Verifies `armored` (a PGP SIGNATURE block) over `data` against the certificates.
pub fn verify(certs: &[Cert], armored: &str, data: &[u8], file: &str) -> Result<Good, Rejected> {
    let (sig, _) =
        DetachedSignature::from_armor_single(std::io::Cursor::new(armored.trim().as_bytes()))
            .map_err(|e| Rejected {
                key: "an unreadable OpenPGP signature".into(),
                why: format!(
                    "the OpenPGP signature cannot be read ({}): it is damaged",
                    super::one_line(&e)
                ),
            })?;
    let sig = sig.signature;
    let fps = sig.issuer_fingerprint();
    let ids = sig.issuer_key_id();
    // What the signature names as its key: the fingerprint when it carries one (gpg ≥ 2.2 does).
    let named = fps
        .first()
        .map(|f| hex(f))
        .or_else(|| {
            ids.first()
                .map(|id| format!("key ID {}", format!("{id}").to_uppercase()))
        })
        .unwrap_or_else(|| "an unnamed key".into());
    let rejected = |why: String| Rejected {
        key: named.clone(),
        why,
    };
    if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
        return Err(rejected(format!(
            "the OpenPGP signature is of type {:?}, not a signature of data",
            sig.typ()
        )));
    }
    let is_issuer = |k: &dyn KeyDetails| {
        fps.iter().any(|f| **f == k.fingerprint()) || ids.iter().any(|i| **i == k.legacy_key_id())
    };
    for cert in certs {
        let primary = &cert.key.primary_key;
        let good = |why_not: Option<String>| match why_not {
            None => Ok(Good {
                key: hex(&primary.fingerprint()),
                user: primary_user(&cert.key),
            }),
            Some(why) => Err(rejected(why)),
        };
        if is_issuer(primary) {
            if let Err(e) = sig.verify(primary, data) {
                return Err(tampered(&named, &e));
            }
            return good(unusable(&cert.key, None, &sig, file, cert.line));
        }
        for sub in &cert.key.public_subkeys {
            if !is_issuer(&sub.key) {
                continue;
            }
            if let Err(e) = sig.verify(&sub.key, data) {
                return Err(tampered(&named, &e));
            }
            return good(unusable(&cert.key, Some(sub), &sig, file, cert.line));
        }
    }
    Err(rejected(format!(
        "signed by the OpenPGP key {named}, which {file} does not hold. If you trust that key, add it to {file} (`gpg --export --armor KEYID`); else do not check out this revision"
    )))
}

fn tampered(named: &str, e: &pgp::errors::Error) -> Rejected {
    tracing::debug!(error = %super::one_line(e), "the OpenPGP signature does not verify");
    Rejected {
        key: named.to_string(),
        why: format!("the OpenPGP signature by {named} does not verify: the object was changed after it was signed, or the signature is damaged. Do not use this revision"),
    }
}

/// Why a key whose signature verifies may still not be used (revoked, expired, a subkey not
/// bound to it for signing), or `None`.
fn unusable(
    cert: &SignedPublicKey,
    sub: Option<&pgp::composed::SignedPublicSubKey>,
    sig: &Signature,
    file: &str,
    line: usize,
) -> Option<String> {
    let primary = &cert.primary_key;
    let fp = hex(&primary.fingerprint());
    let where_ = format!("{file} (line {line})");
    if cert
        .details
        .revocation_signatures
        .iter()
        .any(|r| r.verify_key(primary).is_ok())
    {
        return Some(format!(
            "the OpenPGP key {fp} of {where_} is revoked: remove it, and sign with a valid key"
        ));
    }
    let signed_at = sig.created().map(|t| t.as_secs() as i64);
    let expired = |created: i64, self_sig: Option<&Signature>| {
        let expiry = self_sig.and_then(|s| s.key_expiration_time());
        match (expiry, signed_at) {
            (Some(d), Some(at)) if d.as_secs() > 0 => at > created + i64::from(d.as_secs()),
            _ => false,
        }
    };
    let self_sig = latest_self_certification(cert);
    if expired(primary.created_at().as_secs() as i64, self_sig) {
        return Some(format!(
            "the OpenPGP key {fp} of {where_} had expired when it made this signature: sign with a valid key, or extend the key's expiry and export it again"
        ));
    }
    sub.and_then(|sub| subkey_unusable(cert, sub, &expired))
}

/// Why a signing subkey may not be used (revoked, not bound for signing, expired), or `None`.
fn subkey_unusable(
    cert: &SignedPublicKey,
    sub: &pgp::composed::SignedPublicSubKey,
    expired: &dyn Fn(i64, Option<&Signature>) -> bool,
) -> Option<String> {
    let primary = &cert.primary_key;
    let fp = hex(&primary.fingerprint());
    let sub_fp = hex(&sub.key.fingerprint());
    if sub.signatures.iter().any(|s| {
        s.typ() == Some(SignatureType::SubkeyRevocation)
            && s.verify_subkey_binding(primary, &sub.key).is_ok()
    }) {
        return Some(format!(
            "the signing subkey {sub_fp} of the OpenPGP key {fp} is revoked"
        ));
    }
    let binding = sub
        .signatures
        .iter()
        .filter(|s| {
            s.typ() == Some(SignatureType::SubkeyBinding)
                && s.verify_subkey_binding(primary, &sub.key).is_ok()
                && s.key_flags().sign()
                && s.embedded_signature()
                    .is_some_and(|b| b.verify_primary_key_binding(&sub.key, primary).is_ok())
        })
        .max_by_key(|s| s.created().map(|t| t.as_secs()));
    match binding {
        None => Some(format!(
            "the subkey {sub_fp} that made this signature is not bound to the OpenPGP key {fp} as a signing key (no valid binding signature)"
        )),
        Some(b) if expired(sub.key.created_at().as_secs() as i64, Some(b)) => Some(format!(
            "the signing subkey {sub_fp} of the OpenPGP key {fp} had expired when it made this signature"
        )),
        Some(_) => None,
    }
}

/// The newest self-certification of a user ID that verifies: it holds the key's expiry.
fn latest_self_certification(cert: &SignedPublicKey) -> Option<&Signature> {
    let primary = &cert.primary_key;
    cert.details
        .users
        .iter()
        .flat_map(|u| {
            u.signatures
                .iter()
                .filter(move |s| s.verify_certification(primary, Tag::UserId, &u.id).is_ok())
        })
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
}

/// The user ID marked primary by a valid self-signature, else the first one.
fn primary_user(cert: &SignedPublicKey) -> String {
    let primary = &cert.primary_key;
    let users = &cert.details.users;
    users
        .iter()
        .find(|u| {
            u.signatures.iter().any(|s| {
                s.is_primary() && s.verify_certification(primary, Tag::UserId, &u.id).is_ok()
            })
        })
        .or_else(|| users.first())
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
        .unwrap_or_default()
}
