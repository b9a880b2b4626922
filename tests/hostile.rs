//! A hostile repository, local source or destination never makes gitinit write outside
//! `--dest`, or carry files of this machine into it (issue #12). Every hostile input is built
//! here, byte by byte where git's own tools would refuse to make it (raw tree objects written
//! straight into the object database), and served over smart HTTP (lighttpd +
//! git-http-backend) and as a local path. Each test snapshots the scratch root outside the
//! destinations before and after, and fails on any difference.

#[path = "support/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{git_out, gitinit, ok, run, HttpServer, Output};
use git2::{ObjectType, Oid, Repository};

/// Enough files for the parallel fresh checkout (it takes trees of 64 entries or more); with
/// none, libgit2's checkout writes the tree.
const FILLER: usize = 70;

const BLOB: &str = "100644";
const LINK: &str = "120000";
const TREE: &str = "40000";
const GITLINK: &str = "160000";

/// A scratch root: `outside/` holds what must never change, `repos/` the hostile sources
/// (served over HTTP), destinations go under `dests/`.
struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["outside/sub", "repos", "dests", "home"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("outside/keep.txt"), "keep\n").unwrap();
        std::fs::write(root.join("outside/sub/precious.txt"), "precious\n").unwrap();
        std::fs::write(root.join("outside/secret-key"), "SECRET-KEY-MATERIAL\n").unwrap();
        Scratch { _dir: dir, root }
    }
    fn outside(&self) -> PathBuf {
        self.root.join("outside")
    }
    fn dest(&self, name: &str) -> PathBuf {
        self.root.join("dests").join(name)
    }
    fn repo(&self, name: &str) -> Raw {
        Raw::new(&self.root.join("repos").join(format!("{name}.git")))
    }
    /// Everything under the root but the destinations and the sources, by path: kind, and
    /// content or link target.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        fn walk(p: &Path, root: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for e in std::fs::read_dir(p).unwrap() {
                let path = e.unwrap().path();
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                if rel == Path::new("dests") || rel == Path::new("repos") {
                    continue;
                }
                let m = std::fs::symlink_metadata(&path).unwrap();
                if m.file_type().is_symlink() {
                    let t = std::fs::read_link(&path).unwrap();
                    out.insert(rel, format!("link {}", t.display()));
                } else if m.is_dir() {
                    out.insert(rel, "dir".into());
                    walk(&path, root, out);
                } else {
                    let data = std::fs::read(&path).unwrap();
                    out.insert(rel, format!("file {}", String::from_utf8_lossy(&data)));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &self.root, &mut out);
        out
    }
}

/// A bare repository written object by object.
struct Raw {
    repo: Repository,
    path: PathBuf,
}

impl Raw {
    fn new(path: &Path) -> Raw {
        let repo = Repository::init_bare(path).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        // git-http-backend serves it; `update-server-info` is not needed for smart HTTP.
        Raw {
            repo,
            path: path.to_path_buf(),
        }
    }
    fn blob(&self, data: &[u8]) -> Oid {
        self.repo.blob(data).unwrap()
    }
    /// A tree with exactly these entries, in this order, whatever they are.
    fn tree(&self, entries: &[(&str, &[u8], Oid)]) -> Oid {
        let mut buf = vec![];
        for (mode, name, oid) in entries {
            buf.extend_from_slice(mode.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(name);
            buf.push(0);
            buf.extend_from_slice(oid.as_bytes());
        }
        self.repo
            .odb()
            .unwrap()
            .write(ObjectType::Tree, &buf)
            .unwrap()
    }
    /// `entries` plus `filler` plain files at the top.
    fn tree_with_filler(&self, entries: &[(&str, &[u8], Oid)], filler: usize) -> Oid {
        let names: Vec<Vec<u8>> = (0..filler)
            .map(|i| format!("filler{i:03}.txt").into_bytes())
            .collect();
        let blob = self.blob(b"filler\n");
        let mut all: Vec<(&str, &[u8], Oid)> = entries.to_vec();
        all.extend(names.iter().map(|n| (BLOB, n.as_slice(), blob)));
        // In git's order (a tree sorts as its name and `/`), or libgit2 would not find entries
        // by name (a submodule's gitlink).
        let key = |(mode, name, _): &(&str, &[u8], Oid)| {
            let mut k = name.to_vec();
            if *mode == TREE {
                k.push(b'/');
            }
            k
        };
        all.sort_by_key(key);
        self.tree(&all)
    }
    /// A commit of `tree` on `branch` (HEAD is `main`).
    fn commit(&self, tree: Oid, parent: Option<Oid>, branch: &str) -> Oid {
        let mut text = format!("tree {tree}\n");
        if let Some(p) = parent {
            text.push_str(&format!("parent {p}\n"));
        }
        text.push_str("author A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\nhostile\n");
        let oid = self
            .repo
            .odb()
            .unwrap()
            .write(ObjectType::Commit, text.as_bytes())
            .unwrap();
        self.repo
            .reference(&format!("refs/heads/{branch}"), oid, true, "test")
            .unwrap();
        oid
    }
    fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

/// Where a hostile repository comes from.
#[derive(Clone, Copy, Debug)]
enum Via {
    Local,
    Http,
}

fn url(via: Via, http: &HttpServer, raw: &Raw) -> String {
    match via {
        Via::Local => raw.path.display().to_string(),
        Via::Http => http.http_url(&format!("public/{}", raw.name())),
    }
}

fn clone(url: &str, dest: &Path, extra: &[&str]) -> Output {
    run(gitinit()
        .args(["clone", "--url", url, "--dest"])
        .arg(dest)
        .args(extra))
}

/// Refused as a broken or hostile repository: exit 4, never "internal error".
fn assert_refused(out: &Output, why: &str, case: &str) {
    assert_eq!(
        out.code, 4,
        "{case}: stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains("refusing to check out") && out.stderr.contains(why),
        "{case}: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("internal error"),
        "{case}: {}",
        out.stderr
    );
}

// -------------------------------------------------------------------------------------------
// Class 1: no write through a symlink of the same tree, or one planted in the destination.

/// A tree naming `a` twice, once as a symlink to a directory outside and once as a directory
/// holding a submodule: the submodule would be created, emptied and checked out through the
/// symlink. git 2.47 keeps the directory and drops the symlink (nothing outside changes); its
/// fsck calls such a tree an error (`duplicateEntries`), and hosts that fsck pushes refuse it.
/// gitinit refuses the whole tree: only an attack makes one.
#[test]
fn a_symlink_and_a_directory_of_one_name_are_refused() {
    let s = Scratch::new();
    let http = HttpServer::start_at(&s.root.join("repos"));
    let sub = s.repo("sub");
    let pwn = sub.blob(b"written through the symlink\n");
    let sub_commit = sub.commit(sub.tree(&[(BLOB, b"pwned.txt", pwn)]), None, "main");
    for via in [Via::Local, Via::Http] {
        for filler in [0, FILLER] {
            let sup = s.repo(&format!("dup-{via:?}-{filler}"));
            let sub_url = match via {
                Via::Local => sub.path.display().to_string(),
                Via::Http => "../sub.git".into(),
            };
            let gitmodules = sup
                .blob(format!("[submodule \"x\"]\n\tpath = a/sub\n\turl = {sub_url}\n").as_bytes());
            let link = sup.blob(s.outside().join("sub").to_str().unwrap().as_bytes());
            let dir = sup.tree(&[(GITLINK, b"sub", sub_commit)]);
            let tree = sup.tree_with_filler(
                &[
                    (BLOB, b".gitmodules", gitmodules),
                    (LINK, b"a", link),
                    (TREE, b"a", dir),
                ],
                filler,
            );
            sup.commit(tree, None, "main");
            let before = s.snapshot();
            let case = format!("{via:?} filler {filler}");
            let dest = s.dest(&case.replace(' ', "-"));
            let out = clone(
                &url(via, &http, &sup),
                &dest,
                &["--flags", "--recurse-submodules"],
            );
            assert_refused(&out, "names `a` twice", &case);
            assert_eq!(s.snapshot(), before, "{case}: something outside changed");
        }
    }
}

/// The job's container (which shares the volume) replaced a directory of the checkout by a
/// symlink to a directory outside. The next run restores a real directory and writes the
/// submodule there; the symlink's target is untouched. git's checkout does the same (it
/// removes the symlink, never writing through it).
#[test]
fn a_symlink_planted_where_the_tree_has_a_directory_is_replaced_not_followed() {
    let s = Scratch::new();
    let http = HttpServer::start_at(&s.root.join("repos"));
    let sub = s.repo("sub");
    let pwn = sub.blob(b"submodule file\n");
    let sub_commit = sub.commit(sub.tree(&[(BLOB, b"pwned.txt", pwn)]), None, "main");
    for via in [Via::Local, Via::Http] {
        let sup = s.repo(&format!("planted-{via:?}"));
        let sub_url = match via {
            Via::Local => sub.path.display().to_string(),
            Via::Http => "../sub.git".into(),
        };
        let gitmodules =
            sup.blob(format!("[submodule \"x\"]\n\tpath = a/sub\n\turl = {sub_url}\n").as_bytes());
        let f = sup.blob(b"tracked\n");
        let dir = sup.tree(&[(BLOB, b"f.txt", f), (GITLINK, b"sub", sub_commit)]);
        let tree =
            sup.tree_with_filler(&[(BLOB, b".gitmodules", gitmodules), (TREE, b"a", dir)], 3);
        sup.commit(tree, None, "main");
        let dest = s.dest(&format!("planted-{via:?}"));
        let u = url(via, &http, &sup);
        let flags = ["--flags", "--recurse-submodules"];
        ok(&clone(&u, &dest, &flags));
        assert!(dest.join("a/sub/pwned.txt").is_file());

        std::fs::remove_dir_all(dest.join("a")).unwrap();
        std::os::unix::fs::symlink(s.outside().join("sub"), dest.join("a")).unwrap();
        let before = s.snapshot();
        let out = clone(&u, &dest, &flags);
        ok(&out);
        assert_eq!(s.snapshot(), before, "{via:?}: something outside changed");
        assert!(std::fs::symlink_metadata(dest.join("a")).unwrap().is_dir());
        assert_eq!(
            std::fs::read_to_string(dest.join("a/sub/pwned.txt")).unwrap(),
            "submodule file\n"
        );
        assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    }
}

// -------------------------------------------------------------------------------------------
// Class 2: only a real directory named lost+found counts as empty.

#[test]
fn lost_found_counts_as_empty_only_when_it_is_a_directory() {
    let s = Scratch::new();
    let http = HttpServer::start_at(&s.root.join("repos"));
    let raw = s.repo("lf");
    let link = raw.blob(s.outside().join("sub").to_str().unwrap().as_bytes());
    let first = raw.commit(
        raw.tree_with_filler(&[(LINK, b"lost+found", link)], FILLER),
        None,
        "main",
    );
    let pwn = raw.blob(b"into lost+found\n");
    let inner = raw.tree(&[(BLOB, b"pwn.txt", pwn)]);
    raw.commit(
        raw.tree_with_filler(&[(TREE, b"lost+found", inner)], FILLER),
        Some(first),
        "second",
    );
    for via in [Via::Local, Via::Http] {
        let u = url(via, &http, &raw);
        let before = s.snapshot();
        // A destination holding only a lost+found symlink is not empty...
        let dest = s.dest(&format!("lf-{via:?}"));
        std::fs::create_dir_all(&dest).unwrap();
        std::os::unix::fs::symlink(s.outside().join("sub"), dest.join("lost+found")).unwrap();
        let out = clone(&u, &dest, &[]);
        assert_eq!(out.code, 7, "{via:?}: {}", out.stderr);
        assert!(out.stderr.contains("lost+found"), "{}", out.stderr);
        // ...and --clean removes the link, never what it points to.
        ok(&clone(&u, &dest, &["--clean"]));
        assert_eq!(s.snapshot(), before, "{via:?}: something outside changed");
        // The tree itself plants lost+found as a symlink; the next revision makes it a
        // directory: written in the destination, not through the link.
        assert!(std::fs::symlink_metadata(dest.join("lost+found"))
            .unwrap()
            .file_type()
            .is_symlink());
        ok(&clone(&u, &dest, &["--revision", "second"]));
        assert_eq!(s.snapshot(), before, "{via:?}: something outside changed");
        assert!(dest.join("lost+found/pwn.txt").is_file());
        // A real lost+found (a fresh volume's) still counts as empty.
        let fresh = s.dest(&format!("lf-real-{via:?}"));
        std::fs::create_dir_all(fresh.join("lost+found")).unwrap();
        ok(&clone(&u, &fresh, &["--revision", "second"]));
        assert!(fresh.join("lost+found/pwn.txt").is_file());
    }
}

// -------------------------------------------------------------------------------------------
// Class 3: no local transport for the submodules of a remote superproject.

/// git 2.47 refuses all three (`protocol.file.allow=user`: "transport 'file' not allowed").
#[test]
fn local_submodules_of_a_remote_superproject_are_refused() {
    let s = Scratch::new();
    let http = HttpServer::start_at(&s.root.join("repos"));
    // A repository of this machine the attacker wants copied into the workspace.
    let secret = Raw::new(&s.outside().join("secret.git"));
    let key = secret.blob(b"SECRET-KEY-MATERIAL\n");
    let secret_commit = secret.commit(secret.tree(&[(BLOB, b"id_ed25519", key)]), None, "main");
    let before = s.snapshot();
    let dest_abs = s.dest("carried");
    let cases = [
        ("file-url", format!("file://{}", secret.path.display())),
        ("abs-path", secret.path.display().to_string()),
        // A bare repository carried in the superproject's own tree, by its path in the dest.
        ("own-tree", dest_abs.join("evil.git").display().to_string()),
    ];
    for (name, sub_url) in &cases {
        let sup = s.repo(&format!("super-{name}"));
        let gitmodules =
            sup.blob(format!("[submodule \"x\"]\n\tpath = vendor\n\turl = {sub_url}\n").as_bytes());
        let head = sup.blob(b"ref: refs/heads/main\n");
        let evil = sup.tree(&[(BLOB, b"HEAD", head)]);
        let tree = sup.tree_with_filler(
            &[
                (BLOB, b".gitmodules", gitmodules),
                (TREE, b"evil.git", evil),
                (GITLINK, b"vendor", secret_commit),
            ],
            3,
        );
        sup.commit(tree, None, "main");
        let dest = if *name == "own-tree" {
            dest_abs.clone()
        } else {
            s.dest(name)
        };
        let out = clone(
            &http.http_url(&format!("public/{}", sup.name())),
            &dest,
            &["--flags", "--recurse-submodules"],
        );
        assert_eq!(out.code, 4, "{name}: {}", out.stderr);
        assert!(out.stderr.contains("local URL"), "{name}: {}", out.stderr);
        assert!(!out.stderr.contains("internal error"), "{}", out.stderr);
        common::assert_no_secret(&[&out.stdout, &out.stderr], &dest, "SECRET-KEY-MATERIAL");
        assert_eq!(s.snapshot(), before, "{name}: something outside changed");
    }
}

/// A local superproject may have local submodules; a bare repository carried in its own tree,
/// whose `objects/xx` is a symlink to another repository's objects, is still refused when the
/// submodule is cloned from it (the shape of CVE-2022-39253).
#[test]
fn a_bare_repository_carried_in_a_local_tree_cannot_link_outside() {
    let s = Scratch::new();
    let secret = Raw::new(&s.outside().join("secret.git"));
    let key = secret.blob(b"SECRET-KEY-MATERIAL\n");
    let secret_commit = secret.commit(secret.tree(&[(BLOB, b"id_ed25519", key)]), None, "main");
    let hex = secret_commit.to_string();
    let fanout = secret.path.join("objects").join(&hex[..2]);
    let sup = s.repo("carrier");
    let dest = s.dest("carrier");
    // evil.git: HEAD, refs/heads/main, objects/<xx> -> the secret repository's fan-out.
    let head = sup.blob(b"ref: refs/heads/main\n");
    let main = sup.blob(format!("{hex}\n").as_bytes());
    let heads = sup.tree(&[(BLOB, b"main", main)]);
    let refs = sup.tree(&[(TREE, b"heads", heads)]);
    let link = sup.blob(fanout.to_str().unwrap().as_bytes());
    let objects = sup.tree(&[(LINK, &hex.as_bytes()[..2], link)]);
    let evil = sup.tree(&[
        (BLOB, b"HEAD", head),
        (TREE, b"objects", objects),
        (TREE, b"refs", refs),
    ]);
    let gitmodules = sup.blob(
        format!(
            "[submodule \"x\"]\n\tpath = vendor\n\turl = {}\n",
            dest.join("evil.git").display()
        )
        .as_bytes(),
    );
    let tree = sup.tree_with_filler(
        &[
            (BLOB, b".gitmodules", gitmodules),
            (TREE, b"evil.git", evil),
            (GITLINK, b"vendor", secret_commit),
        ],
        3,
    );
    sup.commit(tree, None, "main");
    let before = s.snapshot();
    let out = clone(
        &sup.path.display().to_string(),
        &dest,
        &["--flags", "--recurse-submodules"],
    );
    assert_refused(&out, "is a symlink", "carried");
    assert!(out.stderr.contains("submodule `vendor`"), "{}", out.stderr);
    assert!(!dest.exists(), "a refused fresh clone leaves nothing");
    assert_eq!(s.snapshot(), before, "something outside changed");
}

// -------------------------------------------------------------------------------------------
// Classes 4 and 10: names git refuses, refused on both checkout paths, as exit 4.

#[test]
fn names_git_refuses_are_refused_on_both_checkout_paths() {
    let s = Scratch::new();
    let http = HttpServer::start_at(&s.root.join("repos"));
    let keep = s.outside().join("keep.txt");
    let keep = keep.to_str().unwrap().as_bytes();
    // A `.git/config` that would move the working tree to `/`.
    let inner = |raw: &Raw| raw.tree(&[(BLOB, b"config", raw.blob(b"[core]\n\tworktree = /\n"))]);
    // (entry mode, name, what the refusal says)
    let cases: &[(&str, &[u8], &str)] = &[
        (LINK, b".gitmodules", "symlink named like `.gitmodules`"),
        (LINK, b"gitmod~1", "symlink named like `.gitmodules`"),
        (
            LINK,
            b".gitattributes",
            "symlink named like `.gitattributes`",
        ),
        (LINK, b".gitignore", "symlink named like `.gitignore`"),
        (BLOB, b".GIT", "named like `.git`"),
        (TREE, b".git", "named like `.git`"),
        (TREE, b"git~1", "named like `.git`"),
        (TREE, b".git.", "named like `.git`"),
        (TREE, b"..", "`.` or `..`"),
        (BLOB, b".", "`.` or `..`"),
        // libgit2 cannot even parse this tree.
        (BLOB, b"", "cannot be read"),
        (BLOB, b"a/../../escape", "has a `/`"),
    ];
    for (i, (mode, name, why)) in cases.iter().enumerate() {
        for filler in [0, FILLER] {
            let raw = s.repo(&format!("names-{i}-{filler}"));
            let oid = match *mode {
                LINK => raw.blob(keep),
                TREE => inner(&raw),
                _ => raw.blob(b"payload\n"),
            };
            raw.commit(
                raw.tree_with_filler(&[(mode, name, oid)], filler),
                None,
                "main",
            );
            // git's own server cannot pack a tree with an empty name: local only.
            let vias: &[Via] = if name.is_empty() {
                &[Via::Local]
            } else {
                &[Via::Local, Via::Http]
            };
            for &via in vias {
                let case = format!(
                    "{:?} {via:?} filler {filler}",
                    String::from_utf8_lossy(name)
                );
                let before = s.snapshot();
                let dest = s.dest(&format!("names-{i}-{filler}-{via:?}"));
                let out = clone(&url(via, &http, &raw), &dest, &[]);
                assert_refused(&out, why, &case);
                assert_eq!(s.snapshot(), before, "{case}: something outside changed");
                // Nothing half-done: a refused fresh clone leaves no files.
                assert!(!dest.exists(), "{case}: the destination was left behind");
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Class 5: local sources never followed through symlinks; relative alternates rewritten.

/// git 2.47: "symlink exists, refusing to clone with --local" (CVE-2022-39253).
#[test]
fn symlinks_in_a_local_sources_objects_are_refused() {
    let s = Scratch::new();
    for case in ["fanout", "loose", "pack-dir"] {
        let work = s.root.join(format!("work-{case}"));
        let src = s.root.join("repos").join(format!("{case}.git"));
        std::fs::create_dir_all(&work).unwrap();
        git_out(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("f.txt"), "f\n").unwrap();
        git_out(&work, &["add", "."]);
        git_out(
            &work,
            &[
                "-c",
                "user.name=A",
                "-c",
                "user.email=a@x",
                "commit",
                "-qm",
                "c",
            ],
        );
        // Pushed, not cloned: a push of a few objects leaves them loose (transfer.unpackLimit),
        // so the source has fan-out directories to plant links in.
        git_out(
            &s.root,
            &["init", "-q", "--bare", "-b", "main", src.to_str().unwrap()],
        );
        git_out(&work, &["push", "-q", src.to_str().unwrap(), "main:main"]);
        let pack_dir = src.join("objects/pack");
        let fanout = std::fs::read_dir(src.join("objects"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().len() == 2)
            .unwrap();
        let stolen = s.outside().join(format!("stolen-{case}"));
        match case {
            "fanout" => {
                // The fan-out directory lives outside, next to a secret; the source links it.
                std::fs::rename(&fanout, &stolen).unwrap();
                std::fs::write(
                    stolen.join("00000000000000000000000000000000000000"),
                    "SECRET-KEY-MATERIAL",
                )
                .unwrap();
                std::os::unix::fs::symlink(&stolen, &fanout).unwrap();
            }
            "loose" => {
                let extra = fanout.join("ffffffffffffffffffffffffffffffffffffff");
                std::os::unix::fs::symlink(s.outside().join("secret-key"), extra).unwrap();
            }
            _ => {
                std::fs::create_dir_all(&stolen).unwrap();
                std::fs::write(stolen.join("pack-0.pack"), "SECRET-KEY-MATERIAL").unwrap();
                std::fs::remove_dir_all(&pack_dir).unwrap();
                std::os::unix::fs::symlink(&stolen, &pack_dir).unwrap();
            }
        }
        let before = s.snapshot();
        let dest = s.dest(case);
        let out = clone(&src.display().to_string(), &dest, &[]);
        assert_eq!(out.code, 4, "{case}: {}", out.stderr);
        assert!(
            out.stderr.contains("is a symlink"),
            "{case}: {}",
            out.stderr
        );
        assert!(!dest.exists() || std::fs::read_dir(&dest).unwrap().count() == 0);
        assert_eq!(s.snapshot(), before, "{case}: something outside changed");
    }
}

/// A source whose objects are borrowed through a relative `alternates` line: git's clone
/// writes the line as an absolute path; copied verbatim it would point nowhere.
#[test]
fn relative_alternates_of_a_local_source_are_made_absolute() {
    let s = Scratch::new();
    let base = s.repo("base");
    let f = base.blob(b"borrowed\n");
    let commit = base.commit(base.tree(&[(BLOB, b"f.txt", f)]), None, "main");
    let borrower = Raw::new(&s.root.join("repos/nested/borrower.git"));
    std::fs::create_dir_all(borrower.path.join("objects/info")).unwrap();
    std::fs::write(
        borrower.path.join("objects/info/alternates"),
        "../../../base.git/objects\n",
    )
    .unwrap();
    borrower
        .repo
        .reference("refs/heads/main", commit, true, "test")
        .unwrap();
    let dest = s.dest("alt");
    let out = clone(&borrower.path.display().to_string(), &dest, &[]);
    ok(&out);
    assert_eq!(
        std::fs::read_to_string(dest.join("f.txt")).unwrap(),
        "borrowed\n"
    );
    let alt = std::fs::read_to_string(dest.join(".git/objects/info/alternates")).unwrap();
    assert_eq!(
        alt.trim(),
        base.path.join("objects").display().to_string(),
        "{alt}"
    );
    git_out(&dest, &["fsck", "--no-progress"]);
}

// -------------------------------------------------------------------------------------------
// Class 7: --clean never empties the directories a container needs, or $HOME.

#[test]
fn clean_refuses_home_and_what_holds_it() {
    let s = Scratch::new();
    let fx = common::fixtures();
    let home = s.root.join("home");
    std::fs::write(home.join(".profile"), "mine\n").unwrap();
    let link = s.root.join("link-to-home");
    std::os::unix::fs::symlink(&home, &link).unwrap();
    for dest in [&home, &link, &s.root] {
        let before = s.snapshot();
        let out = run(gitinit()
            .env("HOME", &home)
            .args(["clone", "--clean", "--url"])
            .arg(fx.repo("basic.git"))
            .arg("--dest")
            .arg(dest));
        assert_eq!(out.code, 7, "{}: {}", dest.display(), out.stderr);
        assert!(
            out.stderr.contains("--clean refuses to empty it"),
            "{}",
            out.stderr
        );
        assert_eq!(
            s.snapshot(),
            before,
            "{}: something changed",
            dest.display()
        );
    }
}

/// `--clean --dest /` (or a symlink that leads to `/etc`). Run in a mount namespace whose root
/// is read-only and as uid 65532, so that even a broken guard could remove nothing.
#[test]
fn clean_refuses_the_root_and_system_directories() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root for a mount namespace");
        return;
    }
    let fx = common::fixtures();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).unwrap();
    let mut up = Some(dir.path());
    while let Some(d) = up {
        let _ = std::process::Command::new("chmod")
            .arg("a+rx")
            .arg(d)
            .status();
        up = d.parent();
    }
    for dest in [
        "/".to_string(),
        "/usr".into(),
        dir.path().join("etc-link").display().to_string(),
    ] {
        let script = format!(
            "set -e
mount --make-rprivate /
mount -o remount,bind,ro /
setpriv --reuid=65532 --regid=65532 --clear-groups -- env -i PATH=/usr/bin:/bin \\
  {bin} clone --clean --url {url} --dest {dest}",
            bin = env!("CARGO_BIN_EXE_gitinit"),
            url = fx.repo("basic.git").display(),
        );
        let mut cmd = std::process::Command::new("unshare");
        common::clean_env(&mut cmd, dir.path());
        cmd.args(["-m", "sh", "-c", &script]);
        let out = run(&mut cmd);
        assert_eq!(out.code, 7, "{dest}: {}", out.stderr);
        assert!(
            out.stderr.contains("--clean refuses to empty it")
                && out.stderr.contains("the system needs"),
            "{dest}: {}",
            out.stderr
        );
    }
}

// -------------------------------------------------------------------------------------------
// Class 8: no temporary files left behind by a stop, and none kept from a killed run.

fn temporaries(git_dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    for d in [git_dir.join("objects"), git_dir.join("objects/pack")] {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            // libgit2's indexer writes `pack_git2_*`, git::indexer `.tmp-gitinit-*` (gix-pack).
            if n.starts_with("pack_git2_")
                || n.starts_with("tmp_")
                || (d.ends_with("pack") && n.starts_with(".tmp"))
                || n.ends_with(".lock")
            {
                found.push(p);
            }
        }
    }
    found
}

/// For both indexers: libgit2's (big.git, one object) and gix-pack's (many.git, 4,084).
#[test]
fn a_stopped_run_leaves_no_partial_pack() {
    use common::{Fault, FaultProxy};
    let http = HttpServer::start();
    for repo in ["public/big.git", "public/many.git"] {
        let proxy = FaultProxy::start(http.http_port, Fault::StallAfter { bytes: 120_000 });
        let dir = tempfile::tempdir().unwrap();
        let url = proxy.url(repo);

        // --timeout
        let dest = dir.path().join("timeout");
        let out = clone(&url, &dest, &["--timeout", "3s", "--retries", "0"]);
        assert_eq!(out.code, 6, "{repo}: {}", out.stderr);
        assert!(out.stderr.contains("--timeout"), "{repo}: {}", out.stderr);
        assert_eq!(
            temporaries(&dest.join(".git")),
            Vec::<PathBuf>::new(),
            "{repo}"
        );

        // SIGTERM, once the partial pack is on disk
        let dest = dir.path().join("sigterm");
        let mut child = gitinit()
            .args(["clone", "--url", &url, "--dest"])
            .arg(&dest)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while temporaries(&dest.join(".git")).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{repo}: no partial pack appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        assert_eq!(child.wait().unwrap().code(), Some(143), "{repo}");
        assert_eq!(
            temporaries(&dest.join(".git")),
            Vec::<PathBuf>::new(),
            "{repo}"
        );

        // A run killed with SIGKILL cannot clean; the next one removes what it left.
        let pack = dest.join(".git/objects/pack");
        std::fs::write(pack.join("pack_git2_Xy12ab"), vec![0u8; 4096]).unwrap();
        std::fs::write(pack.join(".tmp-gitinit-Q1w2E3"), vec![0u8; 4096]).unwrap();
        std::fs::write(dest.join(".git/objects/tmp_object_git2_Qw34cd"), b"x").unwrap();
        proxy.heal();
        let out = clone(&url, &dest, &[]);
        ok(&out);
        assert_eq!(
            temporaries(&dest.join(".git")),
            Vec::<PathBuf>::new(),
            "{repo}"
        );
        assert!(
            out.stderr.contains("left by an interrupted run"),
            "{repo}: {}",
            out.stderr
        );
    }
}

// -------------------------------------------------------------------------------------------
// Property: whatever the names, modes and duplicates of a tree, nothing is written outside
// the destination, on both checkout paths; a refusal is exit 4, never a crash.

mod property {
    use super::*;
    use proptest::prelude::*;

    const NAMES: &[&[u8]] = &[
        b"a",
        b"b",
        b"lost+found",
        b".git",
        b"..",
        b".",
        b"",
        b".gitmodules",
        b"gitmod~1",
        b".gitattributes",
        b"GIT~1",
        b"x/y",
        b"sub",
        b"a b",
        b"\xff\xfe",
    ];

    #[derive(Debug, Clone)]
    enum Node {
        Blob(usize),
        Link(bool),
        Tree(Vec<(usize, Node)>),
    }

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            (0usize..2).prop_map(Node::Blob),
            any::<bool>().prop_map(Node::Link)
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop::collection::vec((0..NAMES.len(), inner), 0..4).prop_map(Node::Tree)
        })
    }

    fn write(raw: &Raw, outside: &Path, node: &Node) -> (&'static str, Oid) {
        match node {
            Node::Blob(0) => (BLOB, raw.blob(b"content\n")),
            Node::Blob(_) => ("100755", raw.blob(b"#!/bin/sh\n")),
            Node::Link(true) => (
                LINK,
                raw.blob(outside.join("sub").to_str().unwrap().as_bytes()),
            ),
            Node::Link(false) => (LINK, raw.blob(b"../../..")),
            Node::Tree(children) => {
                let entries: Vec<(&str, &[u8], Oid)> = children
                    .iter()
                    .map(|(n, c)| {
                        let (mode, oid) = write(raw, outside, c);
                        (mode, NAMES[*n], oid)
                    })
                    .collect();
                (TREE, raw.tree(&entries))
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn nothing_is_ever_written_outside_the_destination(
            top in prop::collection::vec((0..NAMES.len(), node()), 1..6),
            filler in prop_oneof![Just(0usize), Just(FILLER)],
        ) {
            let s = Scratch::new();
            let raw = s.repo("prop");
            let entries: Vec<(&str, &[u8], Oid)> = top
                .iter()
                .map(|(n, c)| {
                    let (mode, oid) = write(&raw, &s.outside(), c);
                    (mode, NAMES[*n], oid)
                })
                .collect();
            raw.commit(raw.tree_with_filler(&entries, filler), None, "main");
            let before = s.snapshot();
            let dest = s.dest("d");
            let out = clone(&raw.path.display().to_string(), &dest, &[]);
            prop_assert!(out.code == 0 || out.code == 4, "exit {}: {}", out.code, out.stderr);
            prop_assert!(!out.stderr.contains("internal error"), "{}", out.stderr);
            prop_assert_eq!(s.snapshot(), before);
        }
    }
}
