//! The catalog file's shape as Polyaxon defines it (`V1Connection`, `V1GitConnection`,
//! `V1ConnectionResource`), read by serde with unknown keys refused, and the checks serde cannot
//! make (names present and unique, `kind: git`, a URL) that turn it into [`Connection`]s.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, IgnoredAny};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::{at, clean, Connection};
use crate::error::{Error, Result};

/// The whole file: `connections:`, or the keys of a single connection.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping: `connections:` with a list of connections, or the keys of one connection"
)]
pub(super) struct RawFile {
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
    pub(super) fn into_items(
        self,
        start: Location,
        shown: &str,
    ) -> Result<Vec<Spanned<RawConnection>>> {
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
pub(super) struct RawConnection {
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

/// Polyaxon's `V1ConnectionResource` (a secret or config map). Nothing of it is used (the
/// secret reaches gitinit as env vars); its keys are accepted, `name` as a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a resource (a mapping with `name`)")]
struct RawResource {
    #[serde(rename = "name")]
    _name: Option<String>,
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
    pub(super) fn check(
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
            url,
            revision: schema
                .value
                .revision
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
            flags: schema.value.flags.map(|f| f.0).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::catalog::testing::*;
    use crate::catalog::Connection;

    #[test]
    fn two_connections_read_right() {
        let c = parse(TWO).unwrap();
        assert_eq!(c.path, Path::new(FILE));
        assert_eq!(
            c.connections,
            vec![
                Connection {
                    name: "repo1".into(),
                    url: "https://bitbucket.org/org/repo1".into(),
                    revision: Some("main".into()),
                    flags: vec!["--depth 1".into(), "--no-tags".into()],
                },
                Connection {
                    name: "repo2".into(),
                    url: "git@github.com:org/repo2.git".into(),
                    revision: None,
                    flags: vec!["--depth 5 --recurse-submodules".into()],
                },
            ]
        );
    }

    #[test]
    fn polyaxon_keys_are_accepted_and_ignored() {
        let c = parse(
            "connections:\n  - name: a\n    kind: git\n    tags: [x, y]\n    annotations: {k: v}\n    env:\n      - name: X\n        valueFrom: {secretKeyRef: {name: s, key: k}}\n    configMap: {name: cm}\n    schema: {url: https://h/a, flags: [], revision: ''}\n    secret: {name: s, mountPath: /etc/ssh, items: [id_rsa], defaultMode: '0400', isRequested: true}\n",
        )
        .unwrap();
        let a = &c.connections[0];
        assert_eq!(a.url, "https://h/a");
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
}
