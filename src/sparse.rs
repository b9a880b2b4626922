//! `--sparse DIRS`: a cone-mode sparse checkout, with git's cone rules (SPEC §12). A path is
//! in the cone when it is a file at the top level, anything under one of the directories, or a
//! file directly inside a parent of one of them (`a/b` brings `a/*` files but not `a/x/`).
//! This module is plain data and rules; [`crate::git::checkout`] writes what it decides.

use crate::error::{Error, Result};

/// The directories of `--sparse`, checked and normalised (no trailing `/`), in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cone {
    dirs: Vec<String>,
}

impl Cone {
    /// Parses `--sparse` (comma-separated directories). An empty value is no sparse checkout.
    /// Refused as git's `sparse-checkout set` refuses them, or as they would leave the
    /// repository: `..`, an absolute path, `.git`, and glob characters (`*?[]\`), which cone
    /// mode does not take.
    pub fn parse(text: &str) -> Result<Option<Cone>> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let bad = |d: &str, why: &str| {
            Error::invalid(format!(
                "--sparse (or GITINIT_SPARSE): `{d}` {why}; give directories of the repository relative to its top, comma-separated, e.g. --sparse services/api,libs/common"
            ))
        };
        let mut dirs: Vec<String> = vec![];
        for given in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if given.starts_with('/') {
                return Err(bad(given, "is an absolute path"));
            }
            if given.contains(['*', '?', '[', ']', '\\']) {
                return Err(bad(
                    given,
                    "is a pattern: cone mode takes directories (no `*?[]\\`)",
                ));
            }
            if given.contains(['\0', '\n', '\r']) {
                return Err(bad(
                    &given.escape_debug().to_string(),
                    "holds a control character",
                ));
            }
            let mut parts = vec![];
            for part in given.split('/').filter(|p| !p.is_empty() && *p != ".") {
                if part == ".." {
                    return Err(bad(given, "leaves the repository (`..`)"));
                }
                if part.eq_ignore_ascii_case(".git") {
                    return Err(bad(given, "names `.git`"));
                }
                parts.push(part);
            }
            if parts.is_empty() {
                return Err(bad(
                    given,
                    "is the top of the repository, which is always checked out",
                ));
            }
            let dir = parts.join("/");
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        if dirs.is_empty() {
            return Err(bad(text.trim(), "names no directory"));
        }
        Ok(Some(Cone { dirs }))
    }

    /// The directories in the order given (for the report).
    pub fn dirs(&self) -> &[String] {
        &self.dirs
    }

    /// The directories that are not under another one, sorted: what `git sparse-checkout list`
    /// prints after `git sparse-checkout set DIRS`.
    pub fn listed(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .dirs
            .iter()
            .filter(|d| !self.dirs.iter().any(|o| under(d.as_bytes(), o.as_bytes())))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        out.dedup();
        out
    }

    /// `.git/info/sparse-checkout` as `git sparse-checkout set DIRS` writes it in cone mode:
    /// `/*` and `!/*/`, each parent directory and `!` its subdirectories, then the
    /// directories themselves, each group sorted.
    pub fn file_text(&self) -> String {
        let listed = self.listed();
        let mut parents: Vec<String> = vec![];
        for d in &listed {
            let mut at = d.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                let covered = listed
                    .iter()
                    .any(|l| l == parent || under(parent.as_bytes(), l.as_bytes()));
                if !covered && !parents.iter().any(|p| p == parent) {
                    parents.push(parent.to_string());
                }
                at = parent;
            }
        }
        parents.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut text = String::from("/*\n!/*/\n");
        for p in &parents {
            text.push_str(&format!("/{p}/\n!/{p}/*/\n"));
        }
        for d in &listed {
            text.push_str(&format!("/{d}/\n"));
        }
        text
    }

    /// Whether the tree entry (file, symlink or submodule) at `path` is checked out.
    pub fn contains(&self, path: &[u8]) -> bool {
        let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
            return true; // the top level
        };
        let parent = &path[..slash];
        self.dirs.iter().any(|d| {
            let d = d.as_bytes();
            path == d || under(path, d) || under(d, parent)
        })
    }

    /// Whether the directory `dir` belongs in the working tree: a parent of a directory of the
    /// cone, one of them, or under one.
    pub fn keeps_dir(&self, dir: &[u8]) -> bool {
        self.dirs.iter().any(|d| {
            let d = d.as_bytes();
            dir == d || under(dir, d) || under(d, dir)
        })
    }

    /// Whether only some entries of `dir` belong in the working tree (it is a parent of a
    /// directory of the cone, and not itself in one).
    pub fn is_parent(&self, dir: &[u8]) -> bool {
        self.dirs.iter().any(|d| under(d.as_bytes(), dir))
            && !self
                .dirs
                .iter()
                .any(|d| dir == d.as_bytes() || under(dir, d.as_bytes()))
    }
}

/// `path` is strictly under the directory `dir`.
fn under(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cone(s: &str) -> Cone {
        Cone::parse(s).unwrap().unwrap()
    }

    #[test]
    fn directories_are_normalised_and_bad_ones_refused() {
        assert_eq!(cone(" a/b/ , c,./d//e,c").dirs(), ["a/b", "c", "d/e"]);
        assert_eq!(Cone::parse("  ").unwrap(), None);
        for bad in [
            "/etc", "a/../b", "..", ".git", "a/.GIT/x", "a*", "a/b?", "[ab]", "a\\b", ".", "./",
            ",",
        ] {
            let e = Cone::parse(bad).unwrap_err();
            assert_eq!(e.exit_code() as u8, 2, "{bad}");
            assert!(e.to_string().contains("--sparse"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_cone_rules_of_git() {
        let c = cone("a/b,d");
        for inside in [
            &b"top"[..],
            b"a/f",
            b"a/b/f",
            b"a/b/c/d/f",
            b"d/f",
            b"d/x/y",
            b"a/b",
            b"d",
        ] {
            assert!(c.contains(inside), "{}", String::from_utf8_lossy(inside));
        }
        for outside in [
            &b"a/x/f"[..],
            b"e/f",
            b"ab/f",
            b"a/bc/f",
            b"dd/f",
            b"a/b-c/f",
        ] {
            assert!(!c.contains(outside), "{}", String::from_utf8_lossy(outside));
        }
        assert!(c.keeps_dir(b"a") && c.keeps_dir(b"a/b/c") && c.keeps_dir(b"d"));
        assert!(!c.keeps_dir(b"a/x") && !c.keeps_dir(b"e") && !c.keeps_dir(b"ab"));
        assert!(c.is_parent(b"a") && !c.is_parent(b"a/b") && !c.is_parent(b"d"));
    }

    #[test]
    fn the_file_is_what_git_writes() {
        // `git sparse-checkout set e a/b a/x/y d` (git 2.47).
        assert_eq!(
            cone("e,a/b,a/x/y,d").file_text(),
            "/*\n!/*/\n/a/\n!/a/*/\n/a/x/\n!/a/x/*/\n/a/b/\n/a/x/y/\n/d/\n/e/\n"
        );
        // A directory under another is covered by it.
        assert_eq!(cone("e,a/b,a").file_text(), "/*\n!/*/\n/a/\n/e/\n");
        assert_eq!(cone("e,a/b,a").listed(), ["a", "e"]);
        assert_eq!(cone("a-b,a/c").listed(), ["a-b", "a/c"]);
    }
}
