//! The connections catalog (SPEC §5): Polyaxon's `connections:` format in YAML.
//!
//! ```yaml
//! connections:
//!   - name: repo1
//!     kind: git                   # optional; only `git` is accepted
//!     description: optional
//!     schema:
//!       url: https://bitbucket.org/org/repo1
//!       revision: main            # optional default revision
//!       flags: ["--depth 1"]      # optional default flags: a list of strings, or one string
//!     secret:
//!       name: bitbucket-connection-1   # informational: the secret reaches us as env vars
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{self, IgnoredAny};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::error::{Error, Result};

/// Larger catalogs are refused before parsing (a real one is a few KiB).
pub const MAX_BYTES: u64 = 1024 * 1024;

/// How many connection names an error message lists before it says "and N more".
const MAX_LISTED: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub name: String,
    pub description: Option<String>,
    /// As written (trimmed), never empty. Validated and redacted later, by `remote_url`.
    pub url: String,
    /// `None` when absent or blank.
    pub revision: Option<String>,
    /// As written: a list stays a list, a single string is one element (split later, by the
    /// flags parser, like `--flags "--depth 1 --no-tags"`).
    pub flags: Vec<String>,
    pub secret_name: Option<String>,
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
        let raw: Spanned<RawFile> = serde_saphyr::from_str_with_options(text, options())
            .map_err(|e| yaml_error(&shown, &e))?;
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
// Parsing options

/// serde-saphyr's defaults are sized for big configuration files (a million events, 50,000
/// aliases, 64 MiB of scalars). A catalog is a few KiB and nests at most ~8 levels (`env` with
/// `valueFrom.secretKeyRef`), so the budgets here are tight: an alias bomb or a `[[[[…` file
/// is refused within milliseconds, and a real catalog is far from every limit.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_BYTES as usize),
            max_depth: 32,
            flow_nesting_limit: 32,
            max_events: 200_000,
            max_nodes: 100_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_merge_keys: 1_000,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: 4 * MAX_BYTES as usize,
            max_total_scalar_bytes: 4 * MAX_BYTES as usize,
            max_documents: 2,
            max_inclusion_depth: 0,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        emit_comments: false,
        reject_unsupported_tags: true,
        // Snippets would quote source lines, which may hold a URL with user-info.
        with_snippet: false,
    }
}

/// saphyr's message without its " at line X, column Y" suffix: we put the place in front.
struct NoLocation;
impl serde_saphyr::Localizer for NoLocation {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }
}

struct PlainMessages;
impl serde_saphyr::MessageFormatter for PlainMessages {
    fn localizer(&self) -> &dyn serde_saphyr::Localizer {
        &NoLocation
    }
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        serde_saphyr::MessageFormatter::format_message(&serde_saphyr::UserMessageFormatter, err)
    }
}

fn yaml_error(shown: &str, e: &serde_saphyr::Error) -> Error {
    let msg = e.render_with_options(serde_saphyr::render_options! {
        formatter: &PlainMessages,
        snippets: serde_saphyr::SnippetMode::Off,
    });
    let msg = msg.lines().next().unwrap_or("invalid YAML").trim();
    // A few of saphyr's messages speak of parser events; say what the file should hold.
    let msg = match msg {
        "expected mapping start" => "expected a mapping (`key: value`) here",
        "expected sequence start" => "expected a list (`- item` lines or `[a, b]`) here",
        m if m.contains("Depth {") || m == "recursion limit exceeded" => {
            "nested too deeply: a catalog nests a few levels at most"
        }
        m => m,
    };
    Error::invalid(format!("{}: {}", at(shown, e.location()), clean(msg)))
}

/// `FILE:LINE:COLUMN`, or `FILE` when the place is unknown.
fn at(shown: &str, loc: Option<Location>) -> String {
    match loc {
        Some(l) if l.line() > 0 => format!("{shown}:{}:{}", l.line(), l.column()),
        _ => shown.to_string(),
    }
}

/// Text from the file made safe for a one-line message: control characters escaped, and the
/// user-info of anything that looks like a URL (`scheme://user:pass@host`) hidden.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    redact_userinfo(&out)
}

fn redact_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The URL runs to a space or a quote. Its user-info ends at the last `@`: a password
        // may hold `/` or `@` unencoded, so hiding too much beats showing a piece of it.
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ']' | '}'))
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        match url.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// The file as written

/// The whole file: `connections:`, or the keys of a single connection.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping: `connections:` with a list of connections, or the keys of one connection"
)]
struct RawFile {
    connections: Option<Spanned<Option<Vec<Spanned<RawConnection>>>>>,
    name: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    description: Option<String>,
    schema: Option<Spanned<RawSchema>>,
    secret: Option<RawResource>,
    tags: Option<IgnoredAny>,
    #[serde(rename = "configMap")]
    config_map: Option<RawResource>,
    env: Option<IgnoredAny>,
    annotations: Option<IgnoredAny>,
}

impl RawFile {
    /// `start`: where the document's mapping starts.
    fn into_items(self, start: Location, shown: &str) -> Result<Vec<Spanned<RawConnection>>> {
        let single = RawConnection {
            name: self.name,
            kind: self.kind,
            description: self.description,
            schema: self.schema,
            secret: self.secret,
            tags: self.tags,
            config_map: self.config_map,
            env: self.env,
            annotations: self.annotations,
        };
        match self.connections {
            Some(list) => {
                if !single.is_blank() {
                    return Err(Error::invalid(format!(
                        "{}: a catalog is either `connections:` with a list, or the keys of one connection, not both: move these keys into a list item",
                        at(shown, single.first_location().or(Some(list.referenced)))
                    )));
                }
                match list.value {
                    Some(items) if !items.is_empty() => Ok(items),
                    _ => Err(Error::invalid(format!(
                        "{}: `connections` is empty: add at least one connection (with `name` and `schema.url`)",
                        at(shown, Some(list.referenced))
                    ))),
                }
            }
            None if single.is_blank() => Err(Error::invalid(format!(
                "{shown}: no connections: the catalog needs `connections:` with a list of connections, or the keys of one connection"
            ))),
            None => {
                let loc = single.first_location().unwrap_or(start);
                Ok(vec![Spanned::new(single, loc, loc)])
            }
        }
    }
}

/// Polyaxon's `V1Connection`. Keys it has that mean nothing to a clone are read and ignored.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a connection (a mapping with `name`, `kind`, `schema`)"
)]
struct RawConnection {
    name: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    description: Option<String>,
    schema: Option<Spanned<RawSchema>>,
    secret: Option<RawResource>,
    tags: Option<IgnoredAny>,
    #[serde(rename = "configMap")]
    config_map: Option<RawResource>,
    env: Option<IgnoredAny>,
    annotations: Option<IgnoredAny>,
}

/// Polyaxon's `V1GitConnection`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a git schema (a mapping with `url`, `revision`, `flags`)"
)]
struct RawSchema {
    url: Option<Spanned<String>>,
    revision: Option<String>,
    flags: Option<Flags>,
}

/// Polyaxon's `V1ConnectionResource` (a secret or config map). Only `name` is used.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a resource (a mapping with `name`)")]
struct RawResource {
    name: Option<String>,
    #[serde(rename = "mountPath")]
    _mount_path: Option<IgnoredAny>,
    #[serde(rename = "hostPath")]
    _host_path: Option<IgnoredAny>,
    #[serde(rename = "items")]
    _items: Option<IgnoredAny>,
    #[serde(rename = "defaultMode")]
    _default_mode: Option<IgnoredAny>,
    #[serde(rename = "isRequested")]
    _is_requested: Option<IgnoredAny>,
}

/// `flags:` as a list of strings or a single string.
struct Flags(Vec<String>);

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Flags;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings (`[\"--depth 1\"]`) or a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Flags, E> {
                Ok(Flags(vec![s.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Flags, A::Error> {
                let mut flags = vec![];
                while let Some(flag) = seq.next_element::<FlagItem>()? {
                    flags.push(flag.0);
                }
                Ok(Flags(flags))
            }
        }
        d.deserialize_any(V)
    }
}

/// One flag: a string (a number such as `1` is read as its text, as YAML users expect).
struct FlagItem(String);

impl<'de> Deserialize<'de> for FlagItem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = FlagItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a flag (a string such as \"--depth 1\")")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<FlagItem, E> {
                Ok(FlagItem(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<FlagItem, E> {
                Ok(FlagItem(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<FlagItem, E> {
                Ok(FlagItem(n.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl RawConnection {
    fn is_blank(&self) -> bool {
        self.name.is_none()
            && self.kind.is_none()
            && self.description.is_none()
            && self.schema.is_none()
            && self.secret.is_none()
            && self.tags.is_none()
            && self.config_map.is_none()
            && self.env.is_none()
            && self.annotations.is_none()
    }

    /// Where the connection shows itself first, for the single-connection form.
    fn first_location(&self) -> Option<Location> {
        [
            self.name.as_ref().map(|n| n.referenced),
            self.kind.as_ref().map(|k| k.referenced),
            self.schema.as_ref().map(|s| s.referenced),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|l| (l.line(), l.column()))
    }

    /// The checks serde cannot make. `here` is where the connection starts.
    fn check(
        self,
        index: usize,
        here: Location,
        shown: &str,
        seen: &mut HashMap<String, Location>,
    ) -> Result<Connection> {
        let nth = format!("connection #{}", index + 1);
        let name = match &self.name {
            Some(n) if !n.value.trim().is_empty() => n.value.trim().to_string(),
            Some(n) => {
                return Err(Error::invalid(format!(
                    "{}: {nth} has an empty `name`: give it a name to select it with --connection",
                    at(shown, Some(n.referenced))
                )))
            }
            None => {
                return Err(Error::invalid(format!(
                    "{}: {nth} has no `name`: give it one, to select it with --connection",
                    at(shown, Some(here))
                )))
            }
        };
        let name_loc = self.name.as_ref().map_or(here, |n| n.referenced);
        if let Some(first) = seen.get(&name) {
            return Err(Error::invalid(format!(
                "{}: duplicate connection name `{}`: it is already used at {}; names must be unique",
                at(shown, Some(name_loc)),
                clean(&name),
                at(shown, Some(*first))
            )));
        }
        seen.insert(name.clone(), name_loc);
        if let Some(kind) = &self.kind {
            if kind.value.trim() != "git" {
                return Err(Error::invalid(format!(
                    "{}: connection `{}` has `kind: {}`: gitinit supports only `kind: git` connections",
                    at(shown, Some(kind.referenced)),
                    clean(&name),
                    clean(&kind.value)
                )));
            }
        }
        let Some(schema) = self.schema else {
            return Err(Error::invalid(format!(
                "{}: connection `{}` has no `schema`: add `schema:` with the repository's `url`",
                at(shown, Some(name_loc)),
                clean(&name)
            )));
        };
        let url = match schema.value.url {
            Some(u) if !u.value.trim().is_empty() => u.value.trim().to_string(),
            Some(u) => {
                return Err(Error::invalid(format!(
                    "{}: connection `{}` has an empty `schema.url`: give the repository's URL",
                    at(shown, Some(u.referenced)),
                    clean(&name)
                )))
            }
            None => {
                return Err(Error::invalid(format!(
                    "{}: connection `{}` has no `schema.url`: give the repository's URL",
                    at(shown, Some(schema.referenced)),
                    clean(&name)
                )))
            }
        };
        Ok(Connection {
            name,
            description: self.description,
            url,
            revision: schema
                .value
                .revision
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
            flags: schema.value.flags.map(|f| f.0).unwrap_or_default(),
            secret_name: self.secret.and_then(|s| s.name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "conns.yaml";

    fn parse(text: &str) -> Result<Catalog> {
        Catalog::parse(text, Path::new(FILE))
    }

    #[track_caller]
    fn err(text: &str) -> String {
        match parse(text) {
            Err(e @ Error::InvalidInput { .. }) => {
                assert_eq!(e.exit_code(), crate::error::ExitCode::InvalidInput);
                e.to_string()
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[track_caller]
    fn err_at(text: &str, line: u32) -> String {
        let e = err(text);
        assert!(e.starts_with(&format!("{FILE}:{line}:")), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    const TWO: &str = "\
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

    #[test]
    fn two_connections_read_right() {
        let c = parse(TWO).unwrap();
        assert_eq!(c.path, Path::new(FILE));
        assert_eq!(
            c.connections,
            vec![
                Connection {
                    name: "repo1".into(),
                    description: Some("first one".into()),
                    url: "https://bitbucket.org/org/repo1".into(),
                    revision: Some("main".into()),
                    flags: vec!["--depth 1".into(), "--no-tags".into()],
                    secret_name: Some("bitbucket-connection-1".into()),
                },
                Connection {
                    name: "repo2".into(),
                    description: None,
                    url: "git@github.com:org/repo2.git".into(),
                    revision: None,
                    flags: vec!["--depth 5 --recurse-submodules".into()],
                    secret_name: None,
                },
            ]
        );
    }

    #[test]
    fn the_example_catalog_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/connections.yaml");
        if path.exists() {
            let c = Catalog::load(&path).unwrap();
            assert!(c.connections.len() >= 2);
        }
    }

    #[test]
    fn polyaxon_keys_are_accepted_and_ignored() {
        let c = parse(
            "connections:\n  - name: a\n    kind: git\n    tags: [x, y]\n    annotations: {k: v}\n    env:\n      - name: X\n        valueFrom: {secretKeyRef: {name: s, key: k}}\n    configMap: {name: cm}\n    schema: {url: https://h/a, flags: [], revision: ''}\n    secret: {name: s, mountPath: /etc/ssh, items: [id_rsa], defaultMode: '0400', isRequested: true}\n",
        )
        .unwrap();
        let a = &c.connections[0];
        assert_eq!(a.secret_name.as_deref(), Some("s"));
        assert!(a.flags.is_empty());
        assert_eq!(a.revision, None, "a blank revision is no revision");
    }

    #[test]
    fn a_single_connection_file() {
        let c = parse(
            "name: solo\nschema:\n  url: '  https://h/r.git '\n  revision: v1\nsecret: {name: s}\n",
        )
        .unwrap();
        assert_eq!(c.connections.len(), 1);
        let solo = c.select(None).unwrap();
        assert_eq!(solo.name, "solo");
        assert_eq!(solo.url, "https://h/r.git");
        assert_eq!(solo.revision.as_deref(), Some("v1"));
        assert_eq!(c.select(Some("solo")).unwrap(), solo);
        // An anonymous single connection has a name requirement too.
        err_at("kind: git\nschema: {url: https://h/r}\n", 1);
        let e = err_at("# comment\n\ndescription: x\n", 3);
        assert!(e.contains("connection #1 has no `name`"), "{e}");
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
    fn yaml_syntax_error() {
        let e = err_at(
            "connections:\n  - name: a\n    schema: {url: \"unclosed\n",
            3,
        );
        assert!(e.contains("unclosed quote"), "{e}");
        let e = err_at("connections:\n  - name: a\n   bad indent: x\n", 3);
        assert!(e.contains("'-' indicator"), "{e}");
        let e = err_at("connections: [\n", 1);
        assert!(e.contains("unclosed bracket"), "{e}");
        let e = err_at(
            "connections:\n  - name: a\n    name: b\n    schema: {url: https://h/r}\n",
            3,
        );
        assert!(e.contains("duplicate mapping key `name`"), "{e}");
        let e = err_at(
            "---\nname: a\nschema: {url: https://h/a}\n---\nname: b\n",
            5,
        );
        assert!(e.contains("single YAML document"), "{e}");
        // A type error inside a flow mapping is found before the missing bracket.
        let e = err_at("connections:\n  - name: a\n    schema: {url: [x\n", 3);
        assert!(e.contains("expected string"), "{e}");
    }

    #[test]
    fn unknown_keys_at_every_level() {
        let e = err_at("connections:\n  - name: x\n    kind: git\n    schema:\n      url: https://h/r.git\n      brnach: main\n", 6);
        assert!(e.contains("brnach"), "{e}");
        let e = err_at(
            "connections:\n  - name: x\n    knd: git\n    schema: {url: https://h/r}\n",
            3,
        );
        assert!(e.contains("knd"), "{e}");
        let e = err_at("connections:\n  - name: x\n    schema: {url: https://h/r}\n    secret:\n      nam: s\n", 5);
        assert!(e.contains("nam"), "{e}");
        let e = err_at("connection:\n  - name: x\n", 1);
        assert!(e.contains("connection"), "{e}");
    }

    #[test]
    fn mixing_the_two_forms_is_refused() {
        let e = err_at(
            "name: a\nconnections:\n  - name: b\n    schema: {url: https://h/b}\n",
            1,
        );
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn empty_catalogs_are_refused() {
        let e = err("");
        assert!(e.contains("empty"), "{e}");
        err("# only a comment\n");
        err_at("connections: []\n", 1);
        let e = err("connections:\n");
        assert!(e.contains("no connections"), "{e}");
        err("{}\n");
    }

    #[test]
    fn only_git_kind() {
        let e = err_at(
            "connections:\n  - name: a\n    schema: {url: https://h/a}\n  - name: bucket\n    kind: s3\n    schema: {url: https://h/r}\n",
            5,
        );
        assert!(
            e.contains("`bucket`") && e.contains("only `kind: git`"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_give_both_places() {
        let e = err_at(
            "connections:\n  - name: a\n    schema: {url: https://h/a}\n  - name: b\n    schema: {url: https://h/b}\n  - name: a\n    schema: {url: https://h/c}\n",
            6,
        );
        assert!(
            e.contains("duplicate connection name `a`") && e.contains(&format!("{FILE}:2:")),
            "{e}"
        );
    }

    #[test]
    fn missing_name_schema_and_url() {
        let e = err_at("connections:\n  - name: a\n    schema: {url: https://h/a}\n  - kind: git\n    schema: {url: https://h/b}\n", 4);
        assert!(e.contains("connection #2 has no `name`"), "{e}");
        let e = err_at(
            "connections:\n  - name: ''\n    schema: {url: https://h/a}\n",
            2,
        );
        assert!(e.contains("empty `name`"), "{e}");
        let e = err_at("connections:\n  - kind: git\n    name: a\n", 3);
        assert!(e.contains("no `schema`"), "{e}");
        let e = err_at(
            "connections:\n  - name: a\n    schema:\n      revision: main\n",
            4,
        );
        assert!(e.contains("no `schema.url`"), "{e}");
        let e = err_at("connections:\n  - name: a\n    schema:\n      url: ''\n", 4);
        assert!(e.contains("empty `schema.url`"), "{e}");
        let e = err_at("connections:\n  - name: a\n    schema:\n      url: ~\n", 4);
        assert!(e.contains("no `schema.url`"), "{e}");
    }

    #[test]
    fn flags_must_be_strings() {
        let c = parse("name: a\nschema:\n  url: https://h/a\n  flags: [--depth, 1]\n").unwrap();
        assert_eq!(c.connections[0].flags, vec!["--depth", "1"]);
        let e = err_at(
            "name: a\nschema:\n  url: https://h/a\n  flags: {depth: 1}\n",
            4,
        );
        assert!(e.contains("list of strings"), "{e}");
        err_at(
            "name: a\nschema:\n  url: https://h/a\n  flags:\n    - [--depth, '1']\n",
            5,
        );
        err_at("name: a\nschema:\n  url: https://h/a\n  flags: 5\n", 4);
    }

    #[test]
    fn wrong_shapes() {
        err_at("- name: a\n  schema: {url: https://h/a}\n", 1);
        err_at("connections: {name: a}\n", 1);
        err_at("connections:\n  - just a string\n", 2);
        err_at("name: a\nschema: https://h/a\n", 2);
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
            redact_userinfo("see `https://u:p@h/x` and ssh://git@h:22/r, http://h/a@b"),
            "see `https://***@h/x` and ssh://***@h:22/r, http://***@b"
        );
        assert_eq!(redact_userinfo("https://u:pa/ss@h/r"), "https://***@h/r");
    }

    /// 10 levels of 10 aliases each: 10^10 nodes if expanded.
    #[test]
    fn alias_bomb_is_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..=10 {
            let p = i - 1;
            let refs = vec![format!("*a{p}"); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = err(&bomb);
        assert!(e.starts_with(FILE), "{e}");
        // The same under a key we accept and ignore (so no unknown-key shortcut).
        let mut bomb = String::from(
            "name: a\nschema: {url: https://h/a}\ntags:\n  - &a0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 1..=10 {
            let p = i - 1;
            let refs = vec![format!("*a{p}"); 10].join(", ");
            bomb.push_str(&format!("  - &a{i} [{refs}]\n"));
        }
        err(&bomb);
        // A bomb of merge keys.
        let mut bomb =
            String::from("name: a\nschema: {url: https://h/a}\nannotations:\n  m0: &m0 {k: v}\n");
        for i in 1..=10 {
            let p = i - 1;
            let refs = (0..10)
                .map(|j| format!("k{j}: *m{p}"))
                .collect::<Vec<_>>()
                .join(", ");
            bomb.push_str(&format!("  m{i}: &m{i} {{{refs}}}\n"));
        }
        err(&bomb);
    }

    #[test]
    fn anchors_in_a_real_catalog_still_work() {
        let c = parse("connections:\n  - name: a\n    schema: &s\n      url: https://h/a\n      flags: &f [\"--depth 1\"]\n  - name: b\n    schema:\n      <<: *s\n      revision: dev\n  - name: c\n    schema: {url: https://h/c, flags: *f}\n").unwrap();
        assert_eq!(c.connections[1].url, "https://h/a");
        assert_eq!(c.connections[1].revision.as_deref(), Some("dev"));
        assert_eq!(c.connections[2].flags, vec!["--depth 1"]);
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
    fn deep_nesting_is_refused_without_overflow() {
        // Where a catalog wants a mapping, the first `[` is already wrong.
        err_at(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), 1);
        err_at(&format!("connections: {}", "[".repeat(10_000)), 1);
        // Under keys read and ignored, any shape is accepted, so only the depth limits act.
        let blocks: String = (1..1_000)
            .map(|i| format!("{}- \n", " ".repeat(i)))
            .collect();
        for text in [
            format!("name: a\ntags: {}", "[".repeat(10_000)),
            format!(
                "name: a\ntags: {}{}\n",
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
            format!(
                "name: a\ntags: {}{}\n",
                "{a: ".repeat(10_000),
                "}".repeat(10_000)
            ),
            // Block nesting, 1,000 levels (10,000 would be refused for its size first).
            format!("name: a\ntags:\n{blocks}"),
        ] {
            let e = err(&text);
            assert!(e.contains("nested too deeply"), "{e}");
        }
    }

    /// A few hundred random inputs, bytes and YAML-ish token soup: errors, never panics.
    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const TOKENS: &[&str] = &[
            "connections:",
            "\n",
            "  ",
            "- ",
            "name: ",
            "kind: git",
            "schema:",
            "url: ",
            "https://u:p@h/r",
            "flags: ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "&a ",
            "*a",
            "<<: ",
            "!!str ",
            "!x ",
            "'",
            "\"",
            "|",
            ">",
            "#",
            "---\n",
            "...",
            "? ",
            ": ",
            "~",
            "\t",
            "\u{feff}",
            "é",
            "\\",
            "%YAML 1.2\n",
            "secret:",
            "revision: ",
        ];
        for round in 0..600 {
            let len = (next() % 300) as usize;
            let text = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len / 3)
                    .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                    .collect()
            };
            if let Err(e) = parse(&text) {
                assert_eq!(e.exit_code(), crate::error::ExitCode::InvalidInput);
            }
        }
    }
}
