//! The connections catalog (SPEC §5), Polyaxon's `connections:` format, parsed with
//! serde-saphyr under tight budgets so a hostile file (an alias bomb, deep nesting, a huge
//! file) is refused quickly. Every problem is an input error (exit 2) naming file, line and
//! column; no message quotes a URL, which could carry user-info.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{Error, Result};

/// Larger catalogs are refused before parsing.
const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub revision: Option<String>,
    pub flags: Vec<String>,
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub path: PathBuf,
    pub connections: Vec<Connection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    connections: Vec<RawConnection>,
}

/// Keys Polyaxon's connection type has that mean nothing to a git clone (`tags`, `env`, …) are
/// accepted and ignored; anything else is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    description: Option<String>,
    schema: Option<RawSchema>,
    secret: Option<RawSecret>,
    #[serde(default, rename = "tags")]
    _tags: Option<Vec<String>>,
    #[serde(default, rename = "annotations")]
    _annotations: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, rename = "configMap")]
    _config_map: Option<RawSecret>,
    #[serde(default, rename = "env")]
    _env: Option<Vec<std::collections::BTreeMap<String, String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    url: Option<Spanned<String>>,
    revision: Option<String>,
    flags: Option<FlagsField>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FlagsField {
    List(Vec<String>),
    One(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    name: Option<String>,
    #[serde(default, rename = "mountPath")]
    _mount_path: Option<String>,
    #[serde(default, rename = "items")]
    _items: Option<Vec<String>>,
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 64;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_nodes = 200_000;
    budget.max_events = 500_000;
    budget.max_total_scalar_bytes = MAX_BYTES as usize;
    budget.flow_nesting_limit = 64;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 32;
    options
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::invalid(format!("connections catalog {shown}: cannot read it: {e}"))
        })?;
        if meta.len() > MAX_BYTES {
            return Err(Error::invalid(format!(
                "connections catalog {shown}: {} bytes is more than a catalog can be ({MAX_BYTES} bytes at most)",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!("connections catalog {shown}: cannot read it: {e}"))
        })?;
        Catalog::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Catalog> {
        let shown = path.display().to_string();
        if text.len() as u64 > MAX_BYTES {
            return Err(Error::invalid(format!(
                "connections catalog {shown}: too large"
            )));
        }
        let yaml_err = |e: serde_saphyr::Error| {
            let at = e
                .location()
                .map(|l| format!("{}:{}:", l.line(), l.column()))
                .unwrap_or_default();
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid YAML").to_string();
            Error::invalid(format!("{shown}:{at} {first}"))
        };
        let is_list = text.lines().any(|l| l.starts_with("connections:"));
        let raw: Vec<RawConnection> = if is_list {
            serde_saphyr::from_str_with_options::<ListFile>(text, options())
                .map_err(yaml_err)?
                .connections
        } else {
            vec![
                serde_saphyr::from_str_with_options::<RawConnection>(text, options())
                    .map_err(yaml_err)?,
            ]
        };
        let mut connections: Vec<Connection> = vec![];
        let mut seen: Vec<(String, String)> = vec![];
        for c in raw {
            let at = |l: &serde_saphyr::Location| format!("{shown}:{}:{}", l.line(), l.column());
            let name = c.name.value.trim().to_string();
            let here = at(&c.name.referenced);
            if name.is_empty() {
                return Err(Error::invalid(format!("{here}: a connection needs a name")));
            }
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(Error::invalid(format!(
                    "{here}: duplicate connection name `{name}` (first defined at {first})"
                )));
            }
            if let Some(kind) = &c.kind {
                if kind.value != "git" {
                    return Err(Error::invalid(format!(
                        "{}: connection `{name}` has kind `{}`: gitinit reads only `kind: git` connections",
                        at(&kind.referenced),
                        kind.value
                    )));
                }
            }
            let schema = c.schema.ok_or_else(|| {
                Error::invalid(format!(
                    "{here}: connection `{name}` has no `schema` (with its `url`)"
                ))
            })?;
            let url = schema
                .url
                .filter(|u| !u.value.trim().is_empty())
                .ok_or_else(|| {
                    Error::invalid(format!("{here}: connection `{name}` has no `schema.url`"))
                })?;
            seen.push((name.clone(), here));
            connections.push(Connection {
                name,
                description: c.description,
                url: url.value.trim().to_string(),
                revision: schema.revision.filter(|r| !r.trim().is_empty()),
                flags: match schema.flags {
                    None => vec![],
                    Some(FlagsField::List(l)) => l,
                    Some(FlagsField::One(s)) => vec![s],
                },
                secret_name: c.secret.and_then(|s| s.name),
            });
        }
        Ok(Catalog {
            path: path.to_path_buf(),
            connections,
        })
    }

    pub fn select(&self, name: Option<&str>) -> Result<&Connection> {
        let names: Vec<&str> = self.connections.iter().map(|c| c.name.as_str()).collect();
        let shown = self.path.display();
        match name {
            Some(n) => self
                .connections
                .iter()
                .find(|c| c.name == n)
                .ok_or_else(|| {
                    let close: Vec<&str> = names
                        .iter()
                        .copied()
                        .filter(|c| c.eq_ignore_ascii_case(n) || strsim::levenshtein(c, n) <= 2)
                        .collect();
                    let hint = if close.is_empty() {
                        String::new()
                    } else {
                        format!(" Did you mean `{}`?", close.join("`, `"))
                    };
                    Error::invalid(format!(
                        "no connection `{n}` in {shown}; it has: {}.{hint}",
                        names.join(", ")
                    ))
                }),
            None if self.connections.len() == 1 => Ok(&self.connections[0]),
            None => Err(Error::invalid(format!(
                "{shown} holds {} connections: pick one with --connection NAME ({})",
                names.len(),
                names.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalog> {
        Catalog::parse(text, Path::new("conns.yaml"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Err(Error::InvalidInput { message }) => message,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    const TWO: &str = "\
connections:
  - name: repo1
    kind: git
    description: first
    schema:
      url: https://bitbucket.org/org/repo1
      revision: main
      flags: [\"--depth 1\", \"--no-tags\"]
    secret:
      name: bitbucket-connection-1
  - name: repo2
    schema:
      url: git@github.com:org/repo2.git
      flags: \"--depth 5\"
";

    #[test]
    fn a_list_and_a_single_connection() {
        let c = parse(TWO).unwrap();
        let r1 = c.select(Some("repo1")).unwrap();
        assert_eq!(r1.url, "https://bitbucket.org/org/repo1");
        assert_eq!(r1.revision.as_deref(), Some("main"));
        assert_eq!(r1.flags, vec!["--depth 1", "--no-tags"]);
        assert_eq!(r1.secret_name.as_deref(), Some("bitbucket-connection-1"));
        assert_eq!(c.select(Some("repo2")).unwrap().flags, vec!["--depth 5"]);
        let one = parse("name: solo\nkind: git\nschema:\n  url: https://h/r.git\n").unwrap();
        assert_eq!(one.select(None).unwrap().name, "solo");
    }

    #[test]
    fn selection_errors_list_the_names() {
        let c = parse(TWO).unwrap();
        let e = c.select(Some("repo3")).unwrap_err().to_string();
        assert!(
            e.contains("repo1, repo2") && e.contains("Did you mean"),
            "{e}"
        );
        let e = c.select(None).unwrap_err().to_string();
        assert!(e.contains("--connection"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = err(
            "connections:\n  - name: a\n    schema:\n      url: https://h/r\n      branch: x\n",
        );
        assert!(e.starts_with("conns.yaml:5:"), "{e}");
        let e =
            err("connections:\n  - name: a\n    kind: s3\n    schema:\n      url: https://h/r\n");
        assert!(
            e.contains("conns.yaml:3:") && e.contains("kind: git"),
            "{e}"
        );
        let e = err("connections:\n  - name: a\n    schema: {url: https://h/a}\n  - name: a\n    schema: {url: https://h/b}\n");
        assert!(
            e.contains("conns.yaml:4:") && e.contains("duplicate") && e.contains("conns.yaml:2:"),
            "{e}"
        );
        let e = err("connections:\n  - name: a\n    schema: {url: [unclosed\n");
        assert!(e.starts_with("conns.yaml:"), "{e}");
        let e = err("connections:\n  - name: a\n");
        assert!(e.contains("schema"), "{e}");
        let e = err("connections:\n  - name: a\n    schema: {revision: main}\n");
        assert!(e.contains("schema.url"), "{e}");
        let e = err("connections:\n  - name: a\n    schema: {url: https://user:hunter2@h/r}\n    bogus: 1\n");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn hostile_files_are_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        bomb.push_str("connections: *a11\n");
        assert!(parse(&bomb).is_err());
        let deep = format!(
            "connections: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse(&deep).is_err());
        let huge = "#".repeat(2 << 20);
        assert!(parse(&huge).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545F4914F6CDD1D;
        for _ in 0..300 {
            let len = (x % 200) as usize;
            let mut s = String::new();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let alphabet = b"connections: -name:schema url[]{}&*!|>'\"\n #x";
                s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            let _ = parse(&s);
        }
    }
}
