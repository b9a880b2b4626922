//! The tree about to be checked out, read once and judged before anything touches the disk.
//!
//! A tree comes from whoever controls the remote, and trees can be written by hand with any
//! bytes in them. git refuses to check out entries that could leave the working tree or
//! overwrite `.git`; this module refuses the same ones, on every checkout path (the parallel
//! fresh writer and libgit2's), and one more class that only hand-made trees have: two entries
//! of one name. With duplicates, a symlink `a -> /elsewhere` and a directory `a/` could both be
//! "written", the second through the first.

use std::collections::HashSet;

use git2::{Oid, Repository, Tree};

pub const MODE_TREE: i32 = 0o040000;
pub const MODE_LINK: i32 = 0o120000;
pub const MODE_GITLINK: i32 = 0o160000;

/// Deeper trees are refused, as git's `core.maxTreeDepth` (2048) does: they exist only to
/// exhaust memory or stacks.
const MAX_DEPTH: usize = 2048;

/// One blob, symlink or gitlink of the tree.
pub struct Entry {
    pub path: Vec<u8>,
    pub oid: Oid,
    pub mode: i32,
}

/// What a checkout needs to know of the tree.
pub struct Scan {
    /// Blobs, symlinks and gitlinks.
    pub entries: Vec<Entry>,
    /// Every directory, each after its parent.
    pub dirs: Vec<Vec<u8>>,
    /// The `.gitattributes` files, by the path of their directory (`a/b/`, or `` at the top).
    pub attributes: Vec<(String, Oid)>,
    /// Every entry has one of git's five modes (an old tree may say 100664).
    pub plain_modes: bool,
}

/// Reads the whole tree and checks every name in it. The error is a sentence for
/// [`crate::error::Error::UnsafeRepository`].
pub fn scan(repo: &Repository, tree: &Tree<'_>) -> Result<Scan, String> {
    let mut scan = Scan {
        entries: vec![],
        dirs: vec![],
        attributes: vec![],
        plain_modes: true,
    };
    // Depth-first with our own stack: a hand-made tree may nest deeper than a thread's stack.
    let mut stack: Vec<(Oid, Vec<u8>, usize)> = vec![(tree.id(), vec![], 0)];
    while let Some((id, prefix, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(format!(
                "its tree nests deeper than {MAX_DEPTH} directories at `{}`",
                shown(&prefix)
            ));
        }
        let tree = repo.find_tree(id).map_err(|e| {
            format!(
                "the tree of `{}` ({id}) cannot be read: {}",
                shown_dir(&prefix),
                e.message()
            )
        })?;
        let mut seen = HashSet::new();
        for e in tree.iter() {
            let name = e.name_bytes();
            let mode = e.filemode();
            let mut path = prefix.clone();
            path.extend_from_slice(name);
            check_name(name, mode).map_err(|why| format!("the entry `{}` {why}", shown(&path)))?;
            if !seen.insert(name.to_vec()) {
                return Err(format!(
                    "the tree of `{}` names `{}` twice",
                    shown_dir(&prefix),
                    shown(name)
                ));
            }
            if !matches!(
                mode,
                0o100644 | 0o100755 | MODE_LINK | MODE_GITLINK | MODE_TREE
            ) {
                scan.plain_modes = false;
            }
            if mode == MODE_TREE {
                scan.dirs.push(path.clone());
                path.push(b'/');
                stack.push((e.id(), path, depth + 1));
            } else {
                if name == b".gitattributes" {
                    scan.attributes
                        .push((String::from_utf8_lossy(&prefix).into_owned(), e.id()));
                }
                scan.entries.push(Entry {
                    path,
                    oid: e.id(),
                    mode,
                });
            }
        }
    }
    scan.attributes.sort();
    Ok(scan)
}

/// Refuses what libgit2's checkout refuses on this platform (empty, `.`, `..`, `.git` and the
/// names Windows and NTFS read as `.git`; a symlinked `.gitmodules`, also by its 8.3 name), and
/// symlinked `.gitattributes` and `.gitignore`, which git opens with O_NOFOLLOW for the same
/// reason: a symlink there reads files outside the repository.
fn check_name(name: &[u8], mode: i32) -> Result<(), String> {
    let symlink = (mode == MODE_LINK).then_some(gix_validate::path::component::Mode::Symlink);
    let options = gix_validate::path::component::Options {
        protect_windows: false,
        protect_hfs: false,
        protect_ntfs: true,
    };
    if name.contains(&0) {
        return Err("holds a NUL byte".into());
    }
    gix_validate::path::component(name.into(), symlink, options).map_err(|e| {
        use gix_validate::path::component::Error as E;
        match e {
            E::Empty => "has an empty name".to_string(),
            E::Relative => "is `.` or `..`, which would leave its directory".to_string(),
            E::PathSeparator => "has a `/` in its name".to_string(),
            E::DotGitDir => "is named like `.git`, which would overwrite the repository".into(),
            E::SymlinkedGitModules => "is a symlink named like `.gitmodules`".into(),
            other => other.to_string(),
        }
    })?;
    if mode == MODE_LINK {
        for (file, short) in [("gitattributes", "gi7d29"), ("gitignore", "gi250a")] {
            if is_dotgit_file(name, file, short) {
                return Err(format!("is a symlink named like `.{file}`"));
            }
        }
    }
    Ok(())
}

/// `name` is `.{file}` as Linux, Windows or NTFS may read it: any case, trailing spaces and
/// dots ignored, or the 8.3 short names `{file[..6]}~N` and `{short}~N`.
fn is_dotgit_file(name: &[u8], file: &str, short: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let trimmed = {
        let mut end = lower.len();
        while end > 0 && matches!(lower[end - 1], b' ' | b'.') {
            end -= 1;
        }
        &lower[..end]
    };
    if trimmed.first() == Some(&b'.') && &trimmed[1..] == file.as_bytes() {
        return true;
    }
    let short_form = |prefix: &[u8]| {
        trimmed.len() == prefix.len() + 2
            && trimmed.starts_with(prefix)
            && trimmed[prefix.len()] == b'~'
            && matches!(trimmed[prefix.len() + 1], b'1'..=b'9')
    };
    short_form(&file.as_bytes()[..6]) || short_form(short.as_bytes())
}

/// A path for a message: printable whatever bytes it holds.
pub fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).escape_debug().to_string()
}

fn shown_dir(prefix: &[u8]) -> String {
    if prefix.is_empty() {
        "/".into()
    } else {
        shown(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_git_refuses_are_refused() {
        for bad in [
            &b""[..],
            b".",
            b"..",
            b".git",
            b".GIT",
            b"git~1",
            b".git ",
            b".git.",
            b"a/b",
        ] {
            assert!(check_name(bad, 0o100644).is_err(), "{}", shown(bad));
        }
        for link in [
            &b".gitmodules"[..],
            b"gitmod~1",
            b".GitModules ",
            b".gitattributes",
            b"gitatt~2",
            b"gi7d29~1",
            b".gitignore.",
            b"GITIGN~1",
        ] {
            assert!(check_name(link, MODE_LINK).is_err(), "{}", shown(link));
            assert!(check_name(link, 0o100644).is_ok(), "{}", shown(link));
        }
        for good in [
            &b"a"[..],
            b".github",
            b".gitignore-not",
            b"git",
            b"...x",
            b"back\\slash",
        ] {
            assert!(check_name(good, MODE_LINK).is_ok(), "{}", shown(good));
        }
    }
}
