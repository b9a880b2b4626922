//! Git-style flags (SPEC §6), as users write them in Polyaxon specs: a JSON list whose items may
//! hold several words (`["--depth 1","--recurse-submodules"]`) or a plain string split like a
//! shell. They become a typed [`Flags`]; anything that could run a program or redirect git's
//! files is refused.

use crate::error::{Error, Result};

/// The flags' effect, resolved. Downstream code never looks at flag strings again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--depth N`: history truncated to N commits.
    pub depth: Option<u32>,
    /// `--recurse-submodules` / `--recursive`.
    pub recurse_submodules: bool,
    /// `--shallow-submodules`: submodules fetched at depth 1.
    pub shallow_submodules: bool,
    /// `--no-single-branch`: also fetch every branch (gitinit fetches only the needed ref by default).
    pub all_branches: bool,
    /// `--no-tags`: no tag auto-follow.
    pub no_tags: bool,
    /// `--branch X` / `-b X`: the revision when `--revision` is not given.
    pub branch: Option<String>,
    /// `-c http.sslVerify=false`.
    pub ssl_verify: bool,
    /// `--quiet` / `--verbose`: verbosity hints.
    pub quiet: bool,
    pub verbose: bool,
    /// Flags accepted with no effect, each with the reason (logged as warnings).
    pub warnings: Vec<String>,
    /// `--filter=SPEC`: a partial clone (SPEC §12).
    pub filter: Option<String>,
}

/// A `--filter` spec gitinit can ask for: `blob:none`, `blob:limit=N` (with an optional `k`,
/// `m` or `g`), `tree:0`; the error names `what` (the option or the flag).
pub fn filter_spec(v: &str, what: &str) -> Result<String> {
    let v = v.trim();
    let ok = match v.strip_prefix("blob:limit=") {
        Some(n) => {
            let digits = n.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G']);
            !digits.is_empty()
                && n.len() - digits.len() <= 1
                && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => matches!(v, "blob:none" | "tree:0"),
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err(Error::invalid(format!(
            "{what} `{v}` is not a filter gitinit supports: give blob:none, blob:limit=N (e.g. blob:limit=1m) or tree:0"
        )))
    }
}

const SUPPORTED: &str = "--depth N, --recurse-submodules, --shallow-submodules, --single-branch, \
--no-single-branch, --no-tags, --branch X (-b X), --experimental-fetch, -c http.sslVerify=false, \
--filter=..., --quiet, --verbose, --progress";

/// Splits every `--flags` value into words: a JSON list of strings (each item split again, since
/// Polyaxon puts `--depth 1` in one item) or a shell-like string.
pub fn split(values: &[String]) -> Result<Vec<String>> {
    let mut words = vec![];
    for value in values {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let items: Vec<String> = if value.starts_with('[') {
            serde_json::from_str::<Vec<String>>(value).map_err(|e| {
                Error::invalid(format!(
                    "--flags looks like a JSON list but is not one ({e}): write e.g. '[\"--depth 1\",\"--recurse-submodules\"]' or a plain string \"--depth 1 --recurse-submodules\""
                ))
            })?
        } else {
            vec![value.to_string()]
        };
        for item in items {
            let split = shell_words::split(&item).map_err(|e| {
                Error::invalid(format!(
                    "cannot split flags `{item}`: {e} (check the quotes)"
                ))
            })?;
            words.extend(split);
        }
    }
    Ok(words)
}

pub fn parse(values: &[String]) -> Result<Flags> {
    let words = split(values)?;
    let mut flags = Flags {
        ssl_verify: true,
        ..Flags::default()
    };
    let mut it = words.into_iter().peekable();
    while let Some(word) = it.next() {
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (word.clone(), None),
        };
        // `-bX` and `-cKEY=V` are git's stuck short forms.
        let (name, inline) = match name.as_str() {
            n if n.len() > 2
                && (n.starts_with("-b") || n.starts_with("-c"))
                && !n.starts_with("--") =>
            {
                (n[..2].to_string(), Some(word[2..].to_string()))
            }
            _ => (name, inline),
        };
        let mut value = |flag: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .ok_or_else(|| Error::invalid(format!("flag `{flag}` needs a value"))),
            }
        };
        match name.as_str() {
            "--depth" => {
                let v = value("--depth")?;
                let n: u32 = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::invalid(format!("--depth needs a positive whole number, not `{v}`"))
                })?;
                flags.depth = Some(n);
            }
            "--recurse-submodules" | "--recursive" => {
                if inline.is_some() {
                    return Err(Error::invalid(format!(
                        "`{word}`: submodule pathspecs are not supported; use --recurse-submodules alone"
                    )));
                }
                flags.recurse_submodules = true;
            }
            "--shallow-submodules" => flags.shallow_submodules = true,
            "--no-shallow-submodules" => flags.shallow_submodules = false,
            "--single-branch" => flags.all_branches = false,
            "--no-single-branch" => flags.all_branches = true,
            "--no-tags" => flags.no_tags = true,
            "--tags" => flags.no_tags = false,
            "--branch" | "-b" => flags.branch = Some(value(&name)?),
            "--experimental-fetch" => {}
            "--quiet" | "-q" => flags.quiet = true,
            "--verbose" | "-v" => flags.verbose = true,
            // Accepted as git accepts it; gitinit's progress does not depend on it.
            "--progress" => {}
            "--filter" => {
                let v = value("--filter")?;
                flags.filter = Some(filter_spec(&v, "the flag --filter")?);
            }
            "-c" | "--config" => {
                let v = value(&name)?;
                let (key, val) = v.split_once('=').unwrap_or((v.as_str(), "true"));
                if key.eq_ignore_ascii_case("http.sslVerify") {
                    flags.ssl_verify = parse_bool(val).ok_or_else(|| {
                        Error::invalid(format!(
                            "-c http.sslVerify takes true or false, not `{val}`"
                        ))
                    })?;
                } else {
                    return Err(Error::invalid(format!(
                        "flag `{name} {key}=...` is refused: only `-c http.sslVerify=false` is allowed, because other git settings can run programs or redirect where git reads and writes"
                    )));
                }
            }
            "--upload-pack"
            | "-u"
            | "--template"
            | "--separate-git-dir"
            | "--reference"
            | "--reference-if-able"
            | "--dissociate"
            | "--shared"
            | "-s" => {
                return Err(Error::invalid(format!(
                    "flag `{name}` is refused: it can run a program or redirect git's files, which an init container must not allow"
                )));
            }
            _ => {
                return Err(Error::invalid(format!(
                    "unknown flag `{word}`; supported flags: {SUPPORTED}"
                )));
            }
        }
    }
    Ok(flags)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &[&str]) -> Result<Flags> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn json_list_and_plain_string_agree() {
        let a = f(&[r#"["--depth 1","--recurse-submodules"]"#]).unwrap();
        let b = f(&["--depth 1 --recurse-submodules"]).unwrap();
        let c = f(&["--depth=1", "--recurse-submodules"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.depth, Some(1));
        assert!(a.recurse_submodules);
    }

    #[test]
    fn branch_forms() {
        for v in [
            "-b dev",
            "--branch dev",
            "--branch=dev",
            "-bdev",
            "--branch 'dev'",
        ] {
            assert_eq!(f(&[v]).unwrap().branch.as_deref(), Some("dev"), "{v}");
        }
    }

    #[test]
    fn ssl_verify_and_refusals() {
        assert!(!f(&["-c http.sslVerify=false"]).unwrap().ssl_verify);
        assert!(!f(&["-chttp.sslverify=false"]).unwrap().ssl_verify);
        for bad in [
            "--upload-pack=touch /tmp/x",
            "-u x",
            "--template=/x",
            "--separate-git-dir /x",
            "--reference /x",
            "-c core.sshCommand=touch",
            "--config core.hooksPath=/x",
            "-c url.x.insteadOf=y",
            "--mirror",
            "--depth 0",
            "--depth x",
            "--depth",
            "'unclosed",
            "[not json",
        ] {
            assert!(
                matches!(f(&[bad]), Err(Error::InvalidInput { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn filter_is_a_partial_clone() {
        for spec in ["blob:none", "tree:0", "blob:limit=1000", "blob:limit=1m"] {
            let fl = f(&[&format!("--filter={spec}")]).unwrap();
            assert_eq!(fl.filter.as_deref(), Some(spec));
            assert!(fl.warnings.is_empty());
        }
        for bad in [
            "blob:limit=",
            "blob:limit=1mm",
            "tree:1",
            "sparse:oid=x",
            "combine:a+b",
            "",
        ] {
            let e = f(&[&format!("--filter={bad}")]).unwrap_err();
            assert_eq!(e.exit_code() as u8, 2, "{bad}");
        }
    }

    #[test]
    fn progress_is_accepted_without_effect() {
        assert_eq!(f(&["--progress"]).unwrap(), f(&[]).unwrap());
        assert_eq!(f(&["--progress=x"]).unwrap(), f(&[]).unwrap());
    }
}
