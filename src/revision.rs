//! What the user asked for ([`Revision`]), what the remote has ([`Advertisement`]), and what
//! we will fetch ([`Target`]). One `match` turns a target into refspecs, and the same kinds
//! decide what the checkout looks like (a branch or a detached HEAD).

use std::collections::BTreeSet;

use git2::Oid;

use crate::error::{Error, Result};

/// The `--revision` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// None given: the remote's default branch (its HEAD).
    Default,
    /// A branch, a tag, or a short SHA: decided against the remote's refs.
    Name(String),
    /// A full ref such as `refs/pull/1/head`.
    Ref(String),
    /// A full 40-hex SHA.
    Commit(Oid),
}

impl Revision {
    pub fn parse(value: Option<&str>) -> Result<Revision> {
        let v = match value.map(str::trim) {
            None | Some("") | Some("HEAD") => return Ok(Revision::Default),
            Some(v) => v,
        };
        if v.starts_with('-')
            || v.contains("..")
            || v.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        {
            return Err(Error::invalid(format!(
                "`{v}` is not a valid revision: give a branch, a tag, a commit SHA (7-40 hex digits) or a full ref such as refs/pull/1/head"
            )));
        }
        if v.len() == 40 && is_hex(v) {
            return Ok(Revision::Commit(
                Oid::from_str(v).map_err(|e| Error::invalid(e.message().to_string()))?,
            ));
        }
        if v.starts_with("refs/") {
            return Ok(Revision::Ref(v.to_string()));
        }
        Ok(Revision::Name(v.to_string()))
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One advertised ref.
#[derive(Debug, Clone)]
pub struct RemoteRef {
    pub name: String,
    pub oid: Oid,
}

/// The refs a remote advertised (an `ls-remote`).
#[derive(Debug, Clone, Default)]
pub struct Advertisement {
    pub refs: Vec<RemoteRef>,
    /// Where the remote's HEAD points (`refs/heads/main`), when it says.
    pub head_target: Option<String>,
}

impl Advertisement {
    pub fn get(&self, name: &str) -> Option<Oid> {
        self.refs.iter().find(|r| r.name == name).map(|r| r.oid)
    }

    /// The commit an advertised ref ends at (annotated tags are advertised peeled as `^{}`).
    pub fn peeled(&self, name: &str) -> Option<Oid> {
        self.get(&format!("{name}^{{}}")).or_else(|| self.get(name))
    }

    fn is_empty(&self) -> bool {
        self.refs.iter().all(|r| r.oid.is_zero())
    }

    pub fn resolve(&self, revision: &Revision, url: &str) -> Result<Target> {
        if self.is_empty() {
            return Err(Error::EmptyRepository {
                url: url.to_string(),
            });
        }
        let not_found = |rev: &str| Error::RevisionNotFound {
            revision: rev.to_string(),
            url: url.to_string(),
            suggestions: self.suggestions(rev),
        };
        match revision {
            Revision::Default => match &self.head_target {
                Some(t) => match t.strip_prefix("refs/heads/") {
                    Some(b) if self.get(t).is_some() => Ok(Target::Branch(b.to_string())),
                    _ => Ok(Target::Ref(t.clone())),
                },
                // A remote whose HEAD is detached (or does not say): take it as it is.
                None if self.get("HEAD").is_some() => Ok(Target::Ref("HEAD".into())),
                None => Err(Error::RevisionNotFound {
                    revision: "HEAD (the default branch)".into(),
                    url: url.to_string(),
                    suggestions: self.branches().take(5).collect(),
                }),
            },
            Revision::Ref(full) => {
                if self.get(full).is_none() {
                    return Err(not_found(full));
                }
                Ok(if let Some(b) = full.strip_prefix("refs/heads/") {
                    Target::Branch(b.to_string())
                } else if let Some(t) = full.strip_prefix("refs/tags/") {
                    Target::Tag(t.to_string())
                } else {
                    Target::Ref(full.clone())
                })
            }
            Revision::Commit(oid) => Ok(Target::Commit {
                oid: *oid,
                tip: self.tip_of(*oid),
            }),
            Revision::Name(name) => {
                // Branches win over tags, as with `git clone --branch`.
                if self.get(&format!("refs/heads/{name}")).is_some() {
                    return Ok(Target::Branch(name.clone()));
                }
                if self.get(&format!("refs/tags/{name}")).is_some() {
                    return Ok(Target::Tag(name.clone()));
                }
                if name.len() >= 7 && is_hex(name) {
                    let prefix = name.to_ascii_lowercase();
                    let tips: BTreeSet<Oid> = self
                        .refs
                        .iter()
                        .map(|r| r.oid)
                        .filter(|o| o.to_string().starts_with(&prefix))
                        .collect();
                    // A unique advertised tip settles it without downloading history.
                    if tips.len() == 1 {
                        let oid = *tips.iter().next().expect("one element");
                        if let Some(tip) = self.tip_of(oid) {
                            return Ok(Target::Commit {
                                oid,
                                tip: Some(tip),
                            });
                        }
                    }
                    return Ok(Target::ShortCommit(prefix));
                }
                if name.len() < 7 && is_hex(name) && name.len() >= 4 {
                    return Err(Error::invalid(format!(
                        "short SHA `{name}` is too short: give at least 7 hex digits"
                    )));
                }
                Err(not_found(name))
            }
        }
    }

    /// A ref whose tip is this commit, to fetch by name (no SHA-in-want needed).
    fn tip_of(&self, oid: Oid) -> Option<String> {
        let names: Vec<&RemoteRef> = self.refs.iter().filter(|r| r.oid == oid).collect();
        names
            .iter()
            .find(|r| r.name.starts_with("refs/heads/"))
            .or_else(|| {
                names
                    .iter()
                    .find(|r| r.name.starts_with("refs/") && !r.name.ends_with("^{}"))
            })
            .map(|r| r.name.clone())
    }

    fn branches(&self) -> impl Iterator<Item = String> + '_ {
        self.refs
            .iter()
            .filter_map(|r| r.name.strip_prefix("refs/heads/").map(str::to_string))
    }

    /// Names close to `wanted`: differing in case, or by a couple of characters.
    fn suggestions(&self, wanted: &str) -> Vec<String> {
        let wanted_short = wanted
            .strip_prefix("refs/heads/")
            .or_else(|| wanted.strip_prefix("refs/tags/"))
            .unwrap_or(wanted);
        let mut out: Vec<String> = self
            .refs
            .iter()
            .filter(|r| !r.name.ends_with("^{}"))
            .filter_map(|r| {
                let short = r
                    .name
                    .strip_prefix("refs/heads/")
                    .or_else(|| r.name.strip_prefix("refs/tags/"))?;
                let close = short.eq_ignore_ascii_case(wanted_short)
                    || (wanted_short.len() > 3 && strsim::levenshtein(short, wanted_short) <= 2);
                close.then(|| short.to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        out.truncate(5);
        out
    }
}

/// What to fetch, decided against the advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A branch: checked out as a local branch tracking `origin/<name>`.
    Branch(String),
    /// A tag (lightweight or annotated): detached HEAD at its commit.
    Tag(String),
    /// Any other full ref (`refs/pull/1/head`, or a detached remote `HEAD`): detached HEAD.
    Ref(String),
    /// A full SHA. `tip` names an advertised ref at that commit, which is fetched instead of
    /// asking the server for the object (that needs allow-*-sha1-in-want).
    Commit { oid: Oid, tip: Option<String> },
    /// A short SHA that is no advertised tip: resolved in the fetched history.
    ShortCommit(String),
}

/// Refspecs of the fallback that fetches every branch and tag (used to look for a commit).
pub const ALL_BRANCHES_AND_TAGS: [&str; 2] = [
    "+refs/heads/*:refs/remotes/origin/*",
    "+refs/tags/*:refs/tags/*",
];

/// Where a commit fetched by SHA is kept until the checkout holds it.
pub const COMMIT_REF: &str = "refs/gitinit/fetched";

impl Target {
    /// The refspecs that fetch this target, and nothing else.
    pub fn refspecs(&self) -> Vec<String> {
        match self {
            Target::Branch(b) => vec![format!("+refs/heads/{b}:refs/remotes/origin/{b}")],
            Target::Tag(t) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
            Target::Ref(r) if r == "HEAD" => vec!["+HEAD:refs/remotes/origin/HEAD".into()],
            Target::Ref(r) => vec![format!("+{r}:{r}")],
            Target::Commit { tip: Some(tip), .. } => Target::from_ref_name(tip).refspecs(),
            Target::Commit { oid, tip: None } => vec![format!("+{oid}:{COMMIT_REF}")],
            Target::ShortCommit(_) => ALL_BRANCHES_AND_TAGS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// The local ref the fetch writes, to read the commit back from.
    pub fn local_ref(&self) -> Option<String> {
        match self {
            Target::Branch(b) => Some(format!("refs/remotes/origin/{b}")),
            Target::Tag(t) => Some(format!("refs/tags/{t}")),
            Target::Ref(r) if r == "HEAD" => Some("refs/remotes/origin/HEAD".into()),
            Target::Ref(r) => Some(r.clone()),
            Target::Commit { .. } | Target::ShortCommit(_) => None,
        }
    }

    /// The remote ref name for the report (`refs/tags/v1.0`), when the revision was a ref.
    pub fn ref_name(&self) -> Option<String> {
        match self {
            Target::Branch(b) => Some(format!("refs/heads/{b}")),
            Target::Tag(t) => Some(format!("refs/tags/{t}")),
            Target::Ref(r) => Some(r.clone()),
            Target::Commit { .. } | Target::ShortCommit(_) => None,
        }
    }

    pub fn from_ref_name(name: &str) -> Target {
        if let Some(b) = name.strip_prefix("refs/heads/") {
            Target::Branch(b.to_string())
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            Target::Tag(t.to_string())
        } else {
            Target::Ref(name.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> Oid {
        Oid::from_str(&c.to_string().repeat(40)).unwrap()
    }

    fn adv() -> Advertisement {
        let r = |n: &str, o| RemoteRef {
            name: n.into(),
            oid: o,
        };
        Advertisement {
            refs: vec![
                r("HEAD", oid('a')),
                r("refs/heads/trunk", oid('a')),
                r("refs/heads/Release-1.0", oid('b')),
                r("refs/tags/v1.0", oid('c')),
                r("refs/tags/v1.0^{}", oid('d')),
                r("refs/pull/1/head", oid('e')),
            ],
            head_target: Some("refs/heads/trunk".into()),
        }
    }

    #[test]
    fn kinds_resolve() {
        let a = adv();
        let res = |s: &str| a.resolve(&Revision::parse(Some(s)).unwrap(), "u");
        assert_eq!(
            a.resolve(&Revision::Default, "u").unwrap(),
            Target::Branch("trunk".into())
        );
        assert_eq!(res("trunk").unwrap(), Target::Branch("trunk".into()));
        assert_eq!(res("v1.0").unwrap(), Target::Tag("v1.0".into()));
        assert_eq!(
            res("refs/pull/1/head").unwrap(),
            Target::Ref("refs/pull/1/head".into())
        );
        assert_eq!(
            res("refs/heads/trunk").unwrap(),
            Target::Branch("trunk".into())
        );
        assert_eq!(
            res("aaaaaaa").unwrap(),
            Target::Commit {
                oid: oid('a'),
                tip: Some("refs/heads/trunk".into())
            }
        );
        assert_eq!(
            res("1234567").unwrap(),
            Target::ShortCommit("1234567".into())
        );
        assert_eq!(a.peeled("refs/tags/v1.0"), Some(oid('d')));
    }

    #[test]
    fn missing_names_suggest_close_ones() {
        let a = adv();
        match a.resolve(&Revision::Name("release-1.0".into()), "u") {
            Err(Error::RevisionNotFound { suggestions, .. }) => {
                assert_eq!(suggestions, vec!["Release-1.0".to_string()])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_remote() {
        let a = Advertisement::default();
        assert!(matches!(
            a.resolve(&Revision::Default, "u"),
            Err(Error::EmptyRepository { .. })
        ));
    }

    #[test]
    fn bad_revisions() {
        for bad in ["-x", "a..b", "a b", "x^", "abc"] {
            let r = Revision::parse(Some(bad));
            if bad == "abc" {
                assert!(r.is_ok());
            } else {
                assert!(r.is_err(), "{bad}");
            }
        }
    }
}
