//! The connections catalog (SPEC §5): Polyaxon's `connections:` format in YAML.
//!
//! ```yaml
//! connections:
//!   - name: repo1
//!     kind: git                   # optional; only `git` is accepted
//!     description: optional       # accepted, not used
//!     schema:
//!       url: https://bitbucket.org/org/repo1
//!       revision: main            # optional default revision
//!       flags: ["--depth 1"]      # optional default flags: a list of strings, or one string
//!     secret:
//!       name: bitbucket-connection-1   # accepted, not used: the secret reaches us as env vars
//! ```
//!
//! A file may also hold one connection on its own (the keys of one list item, without
//! `connections:`). Keys Polyaxon's connection type defines but that mean nothing to a clone
//! (`tags`, `configMap`, `env`, `annotations`, and `secret.mountPath`, …) are accepted and
//! ignored, so a catalog written for Polyaxon works as is; any other key is an error.
//!
//! The file is parsed with serde-saphyr under tight budgets, so that a hostile file (larger than
//! 1 MiB, an alias bomb, deep nesting) is refused quickly. Every problem is an input error
//! (exit 2) that starts `FILE:LINE:COLUMN:` when the place is known. No message prints a URL
//! with user-info in it.
//!
//! Here: [`Catalog::load`] reads the file (size cap, UTF-8) and [`Catalog::select`] picks a
//! connection. `parse` turns the YAML into the file's typed shape (budgets, `FILE:LINE:COLUMN`
//! messages); `schema` is that shape (Polyaxon's connection types) and the checks that make it
//! [`Connection`]s.

mod parse;
mod schema;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use crate::error::{Error, Result};

/// Larger catalogs are refused before parsing (a real one is a few KiB).
pub const MAX_BYTES: u64 = 1024 * 1024;

/// How many connection names an error message lists before it says "and N more".
const MAX_LISTED: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub name: String,
    /// As written (trimmed), never empty. Validated and redacted later, by `remote_url`.
    pub url: String,
    /// `None` when absent or blank.
    pub revision: Option<String>,
    /// As written: a list stays a list, a single string is one element (split later, by the
    /// flags parser, like `--flags "--depth 1 --no-tags"`).
    pub flags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub path: PathBuf,
    /// In file order.
    pub connections: Vec<Connection>,
}

impl Catalog {
    /// Reads and parses the catalog at `path`. At most [`MAX_BYTES`] are read, whatever the
    /// file claims to be (`/dev/zero` included).
    pub fn load(path: &Path) -> Result<Catalog> {
        let shown = path.display();
        let cannot = |e: std::io::Error| {
            Error::invalid(format!(
                "cannot read the connections catalog {shown}: {e}. Check the path given with --connections (GITINIT_CONNECTIONS)"
            ))
        };
        let file = std::fs::File::open(path).map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if meta.is_dir() {
            return Err(Error::invalid(format!(
                "the connections catalog {shown} is a directory: give the path of the YAML file"
            )));
        }
        if meta.len() > MAX_BYTES {
            return Err(too_large(&shown, Some(meta.len())));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(too_large(&shown, None));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::invalid(format!(
                "{shown}: the connections catalog is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Catalog::parse(&text, path)
    }

    /// Parses catalog text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Catalog> {
        let shown = path.display().to_string();
        if text.len() as u64 > MAX_BYTES {
            return Err(too_large(&shown, Some(text.len() as u64)));
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(Error::invalid(format!(
                "{shown}: the connections catalog is empty: it needs `connections:` with a list of connections, or one connection"
            )));
        }
        let raw: Spanned<schema::RawFile> = parse::yaml(text, &shown)?;
        let items = raw.value.into_items(raw.referenced, &shown)?;

        let mut connections = Vec::with_capacity(items.len());
        let mut seen: HashMap<String, Location> = HashMap::new();
        for (index, item) in items.into_iter().enumerate() {
            let conn = item
                .value
                .check(index, item.referenced, &shown, &mut seen)?;
            connections.push(conn);
        }
        Ok(Catalog {
            path: path.to_path_buf(),
            connections,
        })
    }

    /// `Some(name)`: that connection, or an error listing the names there are (and the closest
    /// one). `None`: the only connection of the file, or an error asking for
    /// `--connection NAME`.
    pub fn select(&self, name: Option<&str>) -> Result<&Connection> {
        let shown = self.path.display();
        match name {
            Some(wanted) => {
                if let Some(c) = self.connections.iter().find(|c| c.name == wanted) {
                    return Ok(c);
                }
                let hint = closest(wanted, self.connections.iter().map(|c| c.name.as_str()))
                    .map(|n| format!(". Did you mean `{}`?", clean(n)))
                    .unwrap_or_default();
                Err(Error::invalid(format!(
                    "no connection named `{}` in {shown}; it has: {}{hint}",
                    clean(wanted),
                    self.names()
                )))
            }
            None => match self.connections.as_slice() {
                [only] => Ok(only),
                [] => Err(Error::invalid(format!(
                    "{shown} holds no connections: add one, or pass --url"
                ))),
                all => Err(Error::invalid(format!(
                    "{shown} holds {} connections: choose one with --connection NAME (GITINIT_CONNECTION); it has: {}",
                    all.len(),
                    self.names()
                ))),
            },
        }
    }

    /// The names, in file order, for messages.
    fn names(&self) -> String {
        let mut listed: Vec<String> = self
            .connections
            .iter()
            .take(MAX_LISTED)
            .map(|c| clean(&c.name))
            .collect();
        if self.connections.len() > MAX_LISTED {
            listed.push(format!("and {} more", self.connections.len() - MAX_LISTED));
        }
        listed.join(", ")
    }
}

/// The name closest to `wanted`: the same but for case, or a few edits away.
fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let wanted_lower = wanted.to_lowercase();
    let limit = (wanted.chars().count() / 3).clamp(1, 3);
    names
        .map(|n| (strsim::levenshtein(&n.to_lowercase(), &wanted_lower), n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn too_large(shown: &dyn fmt::Display, size: Option<u64>) -> Error {
    let size = size.map(|s| format!(" ({s} bytes)")).unwrap_or_default();
    Error::invalid(format!(
        "the connections catalog {shown} is too large{size}: a catalog may be at most {MAX_BYTES} bytes (1 MiB)"
    ))
}

// ---------------------------------------------------------------------------------------------
// Messages

/// `FILE:LINE:COLUMN`, or `FILE` when the place is unknown.
fn at(shown: &str, loc: Option<Location>) -> String {
    match loc {
        Some(l) if l.line() > 0 => format!("{shown}:{}:{}", l.line(), l.column()),
        _ => shown.to_string(),
    }
}

/// Text from the file made safe for a one-line message: control characters escaped, and the
/// user-info of anything that looks like a URL (`scheme://user:pass@host`) hidden by the one
/// redactor's rule ([`crate::redact::text`]).
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    crate::redact::text(&out)
}

/// What the tests of every part of the catalog share: a file name, a two-connection catalog,
/// and helpers that parse text and expect an input error (at a line).
#[cfg(test)]
mod testing {
    use std::path::Path;

    use super::Catalog;
    use crate::error::{Error, Result};

    pub const FILE: &str = "conns.yaml";

    pub fn parse(text: &str) -> Result<Catalog> {
        Catalog::parse(text, Path::new(FILE))
    }

    #[track_caller]
    pub fn err(text: &str) -> String {
        match parse(text) {
            Err(e @ Error::InvalidInput { .. }) => {
                assert_eq!(e.exit_code(), crate::error::ExitCode::InvalidInput);
                e.to_string()
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn err_at(text: &str, line: u32) -> String {
        let e = err(text);
        assert!(e.starts_with(&format!("{FILE}:{line}:")), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    pub const TWO: &str = "\
# a comment
connections:
  - name: repo1
    kind: git
    description: first one
    schema:
      url: https://bitbucket.org/org/repo1
      revision: main
      flags: [\"--depth 1\", \"--no-tags\"]
    secret:
      name: bitbucket-connection-1
  - name: repo2
    schema:
      url: git@github.com:org/repo2.git
      flags: \"--depth 5 --recurse-submodules\"
";
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn the_example_catalog_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/connections.yaml");
        if path.exists() {
            let c = Catalog::load(&path).unwrap();
            assert!(c.connections.len() >= 2);
        }
    }

    #[test]
    fn select_by_name_none_and_unknown() {
        let c = parse(TWO).unwrap();
        assert_eq!(c.select(Some("repo2")).unwrap().name, "repo2");
        let e = c.select(None).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::InvalidInput);
        let e = e.to_string();
        assert!(
            e.contains("--connection NAME") && e.contains("repo1, repo2"),
            "{e}"
        );
        let e = c.select(Some("Repo-1")).unwrap_err().to_string();
        assert!(
            e.contains("repo1, repo2") && e.contains("Did you mean `repo1`?"),
            "{e}"
        );
        let e = c.select(Some("REPO2")).unwrap_err().to_string();
        assert!(e.contains("Did you mean `repo2`?"), "{e}");
        let e = c.select(Some("something-else")).unwrap_err().to_string();
        assert!(
            e.contains("repo1, repo2") && !e.contains("Did you mean"),
            "{e}"
        );
        let empty = Catalog {
            path: FILE.into(),
            connections: vec![],
        };
        assert!(empty.select(None).is_err());
    }

    #[test]
    fn long_name_lists_are_cut() {
        let mut text = String::from("connections:\n");
        for i in 0..30 {
            text.push_str(&format!(
                "  - {{name: c{i}, schema: {{url: https://h/{i}}}}}\n"
            ));
        }
        let e = parse(&text).unwrap().select(None).unwrap_err().to_string();
        assert!(e.contains("c19, and 10 more") && !e.contains("c20"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = Catalog::load(Path::new("/nonexistent/dir/conns.yaml")).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::InvalidInput);
        assert!(e.to_string().contains("/nonexistent/dir/conns.yaml"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
    }

    #[test]
    fn load_reads_a_file_and_refuses_non_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, format!("\u{feff}{TWO}")).unwrap();
        assert_eq!(Catalog::load(&p).unwrap().connections.len(), 2);
        std::fs::write(&p, b"name: \xff\xfe\n").unwrap();
        let e = Catalog::load(&p).unwrap_err().to_string();
        assert!(e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn two_mib_is_refused_before_parsing() {
        let huge = format!("{TWO}#{}\n", "x".repeat(2 << 20));
        let e = err(&huge);
        assert!(e.contains("too large"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.yaml");
        std::fs::write(&p, &huge).unwrap();
        let e = Catalog::load(&p).unwrap_err().to_string();
        assert!(e.contains("too large") && e.contains("huge.yaml"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_endless_file_is_cut_off() {
        let e = Catalog::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn no_message_shows_user_info() {
        let secret = "hunter2";
        for text in [
            "connections:\n  - name: a\n    schema: {url: https://user:hunter2@h/r}\n    bogus: 1\n",
            "connections:\n  - name: a\n    schema: {url: \"https://user:hunter2@h/r\n",
            "name: a\nschema: https://user:hunter2@h/r\n",
            "name: a\nkind: https://user:hunter2@h/r\nschema: {url: https://h/r}\n",
            "name: a\nschema:\n  url: https://user:hunter2@h/r\n  https://user:hunter2@h/r: 1\n",
            "name: a\nschema:\n  url: https://user:hunter2@h/r\n  flags: {x: 1}\n",
        ] {
            let e = err(text);
            assert!(!e.contains(secret), "{e}");
        }
        assert_eq!(
            clean("see `https://u:p@h/x` and ssh://git@h:22/r, http://h/a@b"),
            "see `https://***@h/x` and ssh://***@h:22/r, http://***@b"
        );
        assert_eq!(clean("https://u:pa/ss@h/r"), "https://***@h/r");
    }
}
