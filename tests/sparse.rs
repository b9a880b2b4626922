//! `--sparse DIRS` (SPEC §12): a generated monorepo served over HTTP, checked out in cone
//! mode, compared with what `git clone --sparse` + `git sparse-checkout set DIRS` leaves (files
//! on disk, skip-worktree flags, configuration, the patterns file); reruns that change the cone
//! or drop it; submodules and LFS pointers outside the cone left alone; bad directories refused.

#[path = "support/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::{git, git_out, gitinit, ok, run, HttpServer};

/// A monorepo of ~2,400 files in dozens of directories, nested ones, files at the top and
/// directly inside parents, and two submodules (`services/svc01/vendor/sub` inside the cone
/// of [`CONE`], `libs/lib03/ext` outside), under `repos/` as `mono.git`, `subin.git` and
/// `subout.git`. With `lfs`, `libs/lib05` holds a `.gitattributes` and an LFS pointer (no LFS
/// server has its object). Returns (the scratch directory, `repos/`, the first commit).
fn monorepo(lfs: bool) -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let repos = tmp.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    let commit = |dir: &Path| {
        git_out(dir, &["-c", "advice.addEmbeddedRepo=false", "add", "-A"]);
        git_out(
            dir,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-qm",
                "c",
            ],
        );
        git_out(dir, &["rev-parse", "HEAD"])
    };
    let mut subs = vec![];
    for name in ["subin", "subout"] {
        let work = tmp.path().join(format!("{name}-work"));
        std::fs::create_dir_all(work.join("inner")).unwrap();
        std::fs::write(work.join("inner/file.txt"), format!("{name}\n")).unwrap();
        std::fs::write(work.join("README"), format!("{name} readme\n")).unwrap();
        git_out(&work, &["init", "-q", "-b", "main"]);
        subs.push(commit(&work));
        git_out(
            tmp.path(),
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                repos.join(format!("{name}.git")).to_str().unwrap(),
            ],
        );
    }
    let work = tmp.path().join("mono-work");
    let write = |rel: &str, text: &str| {
        let p = work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    for top in ["README.md", "Makefile", "go.work", ".editorconfig"] {
        write(top, &format!("{top} at the top\n"));
    }
    for s in 0..20 {
        write(
            &format!("services/svc{s:02}.md"),
            "a file directly in services\n",
        );
        for f in 0..40 {
            write(
                &format!("services/svc{s:02}/src/f{f:02}.rs"),
                &format!("// svc {s} file {f}\n"),
            );
        }
        for f in 0..20 {
            write(
                &format!("services/svc{s:02}/deep/a/b/c/g{f:02}.txt"),
                &format!("deep {s} {f}\n"),
            );
        }
        write(&format!("services/svc{s:02}/Dockerfile"), "FROM scratch\n");
    }
    write("services/OWNERS", "team\n");
    for l in 0..10 {
        write(&format!("libs/lib{l:02}/lib.txt"), &format!("lib {l}\n"));
        for f in 0..30 {
            write(
                &format!("libs/lib{l:02}/core/c{f:02}.c"),
                &format!("int c{f};\n"),
            );
            write(
                &format!("libs/lib{l:02}/extra/e{f:02}.c"),
                &format!("int e{f};\n"),
            );
        }
    }
    for f in 0..50 {
        write(&format!("docs/page{f:02}.md"), &format!("# page {f}\n"));
        write(&format!("tools/x/y/z/t{f:02}.sh"), "#!/bin/sh\n");
    }
    std::os::unix::fs::symlink("../README.md", work.join("docs/readme-link")).unwrap();
    if lfs {
        write(
            "libs/lib05/.gitattributes",
            "*.bin filter=lfs diff=lfs merge=lfs -text\n",
        );
        write(
            "libs/lib05/model.bin",
            "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
        );
    }
    write(
        ".gitmodules",
        "[submodule \"subin\"]\n\tpath = services/svc01/vendor/sub\n\turl = ../subin.git\n[submodule \"subout\"]\n\tpath = libs/lib03/ext\n\turl = ../subout.git\n",
    );
    git_out(&work, &["init", "-q", "-b", "main"]);
    // Each submodule's repository in place, so that `git add -A` records it as a gitlink.
    for (name, path) in [
        ("subin", "services/svc01/vendor/sub"),
        ("subout", "libs/lib03/ext"),
    ] {
        git_out(
            &work,
            &[
                "clone",
                "-q",
                repos.join(format!("{name}.git")).to_str().unwrap(),
                path,
            ],
        );
    }
    let first = commit(&work);
    for (sha, path) in subs
        .iter()
        .zip(["services/svc01/vendor/sub", "libs/lib03/ext"])
    {
        assert!(git_out(&work, &["ls-files", "-s", path]).starts_with(&format!("160000 {sha}")));
    }
    git_out(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            repos.join("mono.git").to_str().unwrap(),
        ],
    );
    (tmp, repos, first)
}

/// The cone of the first clone: a nested directory (its parents' files come along), a
/// directory given with a trailing `/`, and one inside another given one.
const CONE: &str = "services/svc01,libs/lib00/core,docs/,docs/sub";
const CONE_DIRS: [&str; 3] = ["services/svc01", "libs/lib00/core", "docs"];

/// What git leaves: `git clone --sparse`, `git sparse-checkout set DIRS` (none: a full
/// clone). Not its `git submodule update`, which checks out the submodules outside the cone
/// too, where SPEC §12 wants only those inside: they are checked apart.
fn git_reference(url: &str, dirs: Option<&[&str]>, at: &Path) {
    let parent = at.parent().unwrap();
    let mut clone = vec!["clone", "-q"];
    if dirs.is_some() {
        clone.push("--sparse");
    }
    clone.extend([url, at.to_str().unwrap()]);
    git_out(parent, &clone);
    if let Some(dirs) = dirs {
        let mut set = vec!["sparse-checkout", "set"];
        set.extend(dirs);
        git_out(at, &set);
    }
}

/// Every path of the working tree, sorted, directories ending with `/`; not `.git`, nor what
/// is inside a submodule (a directory with a `.git`).
fn files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_name() == ".git" {
                continue;
            }
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                if !e.path().join(".git").exists() {
                    walk(root, &e.path(), out);
                }
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = vec![];
    walk(root, root, &mut out);
    out.sort();
    out
}

fn config(dir: &Path, key: &str) -> String {
    let out = git(dir).args(["config", "--get", key]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `dest` is what git left in `reference`, as far as a user can see it.
fn assert_same_as_git(dest: &Path, reference: &Path) {
    assert_eq!(files(dest), files(reference), "the files on disk");
    for args in [
        &["ls-files", "-t"][..],
        &["ls-files", "-v"],
        &["ls-files", "-s"],
    ] {
        assert_eq!(
            git_out(dest, args),
            git_out(reference, args),
            "git {args:?}"
        );
    }
    for key in [
        "core.sparseCheckout",
        "core.sparseCheckoutCone",
        "extensions.worktreeConfig",
    ] {
        assert_eq!(config(dest, key), config(reference, key), "{key}");
    }
    let patterns = |d: &Path| std::fs::read_to_string(d.join(".git/info/sparse-checkout")).ok();
    if config(reference, "core.sparseCheckout") == "true" {
        assert_eq!(patterns(dest), patterns(reference), "info/sparse-checkout");
        assert_eq!(
            git_out(dest, &["sparse-checkout", "list"]),
            git_out(reference, &["sparse-checkout", "list"])
        );
    }
    assert_eq!(git_out(dest, &["status", "--porcelain"]), "");
    assert_eq!(git_out(reference, &["status", "--porcelain"]), "");
}

fn clone(url: &str, dest: &Path, extra: &[&str]) -> common::Output {
    run(gitinit()
        .args([
            "clone",
            "-v",
            "--url",
            url,
            "--submodules",
            "recursive",
            "--report",
            "-",
            "--dest",
        ])
        .arg(dest)
        .args(extra))
}

fn report(out: &common::Output) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim()).unwrap()
}

#[test]
fn a_cone_is_what_git_sparse_checkout_set_leaves_and_reruns_follow_it() {
    let (tmp, repos, first) = monorepo(false);
    let http = HttpServer::start_at(&repos);
    let url = http.http_url("public/mono.git");
    let dest = tmp.path().join("dest");

    // Fresh: the parallel writer.
    let out = clone(&url, &dest, &["--sparse", CONE]);
    ok(&out);
    assert!(
        out.stderr.contains("writing a fresh checkout in parallel"),
        "{}",
        out.stderr
    );
    let r = report(&out);
    assert_eq!(
        r["sparse"],
        serde_json::json!(["services/svc01", "libs/lib00/core", "docs", "docs/sub"])
    );
    assert_eq!(r["commit"], first);
    let subs = r["submodules"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{r}");
    assert_eq!(subs[0]["path"], "services/svc01/vendor/sub");
    let reference = tmp.path().join("ref");
    git_reference(&url, Some(&CONE_DIRS), &reference);
    assert_same_as_git(&dest, &reference);
    // What the cone means, said once more without git: its files, its parents' files, no more.
    let on_disk = files(&dest);
    for present in [
        "Makefile",
        "services/OWNERS",
        "services/svc07.md",
        "services/svc01/deep/a/b/c/g19.txt",
        "services/svc01/vendor/sub/",
        "libs/lib00/lib.txt",
        "libs/lib00/core/c29.c",
        "docs/readme-link",
    ] {
        assert!(on_disk.iter().any(|f| f == present), "{present} missing");
    }
    assert_eq!(
        std::fs::read_to_string(dest.join("services/svc01/vendor/sub/inner/file.txt")).unwrap(),
        "subin\n"
    );
    for absent in [
        "services/svc02/",
        "libs/lib00/extra/",
        "libs/lib03/",
        "tools/",
    ] {
        assert!(!on_disk.iter().any(|f| f == absent), "{absent} written");
    }
    assert_eq!(
        git_out(&dest, &["sparse-checkout", "list"]),
        "docs\nlibs/lib00/core\nservices/svc01"
    );

    // A rerun with another cone (libgit2's checkout): as a fresh git clone with that cone.
    // Untracked files inside and outside both cones go, as in any rerun.
    std::fs::write(dest.join("services/svc01/src/untracked"), "x").unwrap();
    std::fs::write(dest.join("stray-top"), "x").unwrap();
    let out = clone(&url, &dest, &["--sparse", "tools/x/y,libs"]);
    ok(&out);
    // What the first cone left out was no local change; the top file was.
    assert!(
        out.stderr
            .contains("0 modified file(s) reset and 1 untracked"),
        "{}",
        out.stderr
    );
    assert_eq!(
        report(&out)["sparse"],
        serde_json::json!(["tools/x/y", "libs"])
    );
    let subs = report(&out)["submodules"].as_array().unwrap().clone();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["path"], "libs/lib03/ext");
    assert!(dest.join("libs/lib03/ext/inner/file.txt").is_file());
    assert!(!dest.join("services/svc01").exists());
    let reference = tmp.path().join("ref2");
    git_reference(&url, Some(&["tools/x/y", "libs"]), &reference);
    assert_same_as_git(&dest, &reference);

    // A new commit, changing files inside and outside the cone, and removing a directory.
    let work = tmp.path().join("mono-work");
    std::fs::write(work.join("libs/lib01/core/c00.c"), "changed\n").unwrap();
    std::fs::write(work.join("services/svc03/src/f00.rs"), "changed\n").unwrap();
    std::fs::write(work.join("services/new.md"), "new\n").unwrap();
    std::fs::remove_dir_all(work.join("libs/lib09")).unwrap();
    git_out(&work, &["add", "-A"]);
    git_out(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "second",
        ],
    );
    git_out(
        &work,
        &[
            "push",
            "-q",
            repos.join("mono.git").to_str().unwrap(),
            "main",
        ],
    );
    let out = clone(&url, &dest, &["--sparse", "libs/lib01,services/svc03/src"]);
    ok(&out);
    let reference = tmp.path().join("ref3");
    git_reference(
        &url,
        Some(&["libs/lib01", "services/svc03/src"]),
        &reference,
    );
    assert_same_as_git(&dest, &reference);
    assert_eq!(
        std::fs::read_to_string(dest.join("services/svc03/src/f00.rs")).unwrap(),
        "changed\n"
    );

    // Without --sparse: the whole tree, and sparse checkout off as `git sparse-checkout
    // disable` leaves it.
    let out = clone(&url, &dest, &[]);
    ok(&out);
    // (A submodule's files, removed with its directory by an earlier cone, come back counted
    // as its local changes; the top repository had none.)
    let top = format!("discarded local changes in {}/:", dest.display());
    assert!(!out.stderr.contains(&top), "{}", out.stderr);
    assert!(report(&out).get("sparse").is_none());
    let reference = tmp.path().join("ref4");
    git_reference(&url, None, &reference);
    assert_eq!(files(&dest), files(&reference));
    assert_eq!(
        git_out(&dest, &["ls-files", "-t"]),
        git_out(&reference, &["ls-files", "-t"])
    );
    assert!(!git_out(&dest, &["ls-files", "-t"]).contains("\nS "));
    assert_eq!(config(&dest, "core.sparseCheckout"), "false");
    assert_eq!(config(&dest, "core.sparseCheckoutCone"), "false");
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    assert_eq!(report(&out)["submodules"].as_array().unwrap().len(), 2);
}

/// A fresh clone that libgit2 writes (a `.gitattributes` in the cone), through `GITINIT_SPARSE`;
/// an LFS pointer outside the cone is not looked at (no LFS server has it: a lookup would fail).
#[test]
fn libgit2s_checkout_honours_the_cone_and_lfs_stays_inside_it() {
    let (tmp, repos, _) = monorepo(true);
    let http = HttpServer::start_at(&repos);
    let url = http.http_url("public/mono.git");
    let dest = tmp.path().join("dest");
    let out = run(gitinit()
        .env("GITINIT_SPARSE", "libs/lib05/core,docs")
        .args(["clone", "-v", "--url", &url, "--report", "-", "--dest"])
        .arg(&dest));
    // libs/lib05 is a parent: its .gitattributes and model.bin are in the cone, and the LFS
    // stage must fetch that one. Another cone leaves them out.
    assert_ne!(out.code, 0, "{}", out.stderr);
    let dest = tmp.path().join("dest2");
    let out = run(gitinit()
        .env("GITINIT_SPARSE", "libs/lib04/core,docs")
        .args(["clone", "-v", "--url", &url, "--report", "-", "--dest"])
        .arg(&dest));
    ok(&out);
    // The .gitattributes outside the cone applies to nothing written: the parallel writer.
    assert!(out.stderr.contains("in parallel"), "{}", out.stderr);
    assert_eq!(report(&out)["lfs"]["objects"], 0);
    let reference = tmp.path().join("ref");
    git_reference(&url, Some(&["libs/lib04/core", "docs"]), &reference);
    // git's submodule update checked out nothing: both submodules are outside.
    assert!(!dest.join("libs/lib03/ext").exists());
    assert_same_as_git(&dest, &reference);

    // libgit2 writing the first checkout, with the .gitattributes inside the cone.
    let dest = tmp.path().join("dest3");
    let out = run(gitinit()
        .env("GITINIT_SPARSE", "libs/lib05/core,docs")
        .env("GITINIT_LFS", "off")
        .args(["clone", "-v", "--url", &url, "--dest"])
        .arg(&dest));
    ok(&out);
    assert!(!out.stderr.contains("in parallel"), "{}", out.stderr);
    let reference = tmp.path().join("ref3");
    git_reference(&url, Some(&["libs/lib05/core", "docs"]), &reference);
    assert_same_as_git(&dest, &reference);
}

#[test]
fn bad_directories_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    for bad in [
        "../up",
        "a/../../b",
        "/etc",
        ".git",
        "x/.git/hooks",
        "src/*",
        "a?b",
        ".",
        ",",
    ] {
        let out = run(gitinit()
            .args([
                "clone",
                "--url",
                "https://127.0.0.1:1/none.git",
                "--sparse",
                bad,
                "--dest",
            ])
            .arg(&dest));
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--sparse"), "{bad}: {}", out.stderr);
        let out = run(gitinit()
            .env("GITINIT_SPARSE", bad)
            .args(["clone", "--url", "https://127.0.0.1:1/none.git", "--dest"])
            .arg(&dest));
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(!dest.exists());
    }
}

/// The blobs a repository holds (no lazy fetch: `--batch-all-objects` reads what is there).
fn blobs(dir: &Path) -> std::collections::BTreeSet<String> {
    git_out(
        dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype) %(objectname)",
        ],
    )
    .lines()
    .filter_map(|l| l.strip_prefix("blob "))
    .map(str::to_string)
    .collect()
}

/// The blobs of the working tree: the index's entries not marked skip-worktree.
fn checked_out_blobs(dir: &Path) -> std::collections::BTreeSet<String> {
    git_out(dir, &["ls-files", "-t", "-s"])
        .lines()
        .filter(|l| l.starts_with("H ") && !l.contains(" 160000 "))
        .map(|l| l.split(' ').nth(2).unwrap().to_string())
        .collect()
}

#[test]
fn a_partial_clone_fetches_only_the_blobs_of_the_cone_and_git_fetches_the_rest_later() {
    let (tmp, repos, _) = monorepo(false);
    let served = repos.join("mono.git");
    git_out(&served, &["config", "uploadpack.allowFilter", "true"]);
    git_out(
        &served,
        &["config", "uploadpack.allowAnySHA1InWant", "true"],
    );
    // The same repository on a server without filter support.
    git_out(
        &repos,
        &[
            "clone",
            "-q",
            "--bare",
            served.to_str().unwrap(),
            "nofilter.git",
        ],
    );
    let http = HttpServer::start_at(&repos);
    let url = http.http_url("public/mono.git");
    let all = blobs(&served);

    let dest = tmp.path().join("dest");
    let out = run(gitinit()
        .args([
            "clone", "-v", "--url", &url, "--sparse", CONE, "--report", "-",
        ])
        .args(["--flags", "--filter=blob:none", "--dest"])
        .arg(&dest));
    ok(&out);
    assert_eq!(report(&out)["filter"], "blob:none");
    assert!(
        !out.stderr.contains("does not support --filter"),
        "{}",
        out.stderr
    );
    // The fetch (one request: nothing to negotiate) and the cone's blobs (one request).
    assert_eq!(http.count_requests("POST"), 2, "{}", http.log());
    let have = blobs(&dest);
    assert_eq!(have, checked_out_blobs(&dest));
    assert!(
        have.len() > 100 && have.len() * 5 < all.len(),
        "{} of {}",
        have.len(),
        all.len()
    );
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");

    // What git leaves with the same options: the same blobs, the same configuration.
    let reference = tmp.path().join("ref");
    git_out(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--sparse",
            "--filter=blob:none",
            &url,
            reference.to_str().unwrap(),
        ],
    );
    let mut set = vec!["sparse-checkout", "set"];
    set.extend(CONE_DIRS);
    git_out(&reference, &set);
    assert_same_as_git(&dest, &reference);
    assert_eq!(blobs(&dest), blobs(&reference));
    for key in [
        "core.repositoryformatversion",
        "remote.origin.promisor",
        "remote.origin.partialclonefilter",
        "extensions.partialclone",
    ] {
        assert_eq!(config(&dest, key), config(&reference, key), "{key}");
    }
    assert_eq!(config(&dest, "remote.origin.promisor"), "true");

    // git in the job's container fetches a blob outside the cone when it needs it.
    assert_eq!(
        git_out(&dest, &["show", "HEAD:services/svc02/src/f03.rs"]),
        "// svc 2 file 3"
    );
    assert!(git_out(&dest, &["log", "-p", "-1", "--", "tools/x/y/z/t07.sh"]).contains("#!/bin/sh"));
    // Nothing missing that is not promised (a dangling object is no error).
    assert!(!git_out(&dest, &["fsck", "--connectivity-only"]).contains("missing"));

    // A rerun with another cone fetches only its missing blobs.
    let before = http.count_requests("POST");
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            &url,
            "--sparse",
            "tools,libs/lib02",
            "--filter",
            "blob:none",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_eq!(http.count_requests("POST"), before + 1, "{}", http.log());
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    assert!(dest.join("tools/x/y/z/t49.sh").is_file());
    assert!(dest.join("libs/lib02/extra/e29.c").is_file());
    assert!(!dest.join("docs").exists());

    // A new commit: libgit2 negotiates with the filter (it has history now), then the changed
    // blobs of the cone come.
    let work = tmp.path().join("mono-work");
    std::fs::write(work.join("libs/lib02/core/c00.c"), "changed in the cone\n").unwrap();
    std::fs::write(work.join("services/svc09/src/f00.rs"), "changed outside\n").unwrap();
    git_out(&work, &["add", "-A"]);
    git_out(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "second",
        ],
    );
    git_out(&work, &["push", "-q", served.to_str().unwrap(), "main"]);
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            &url,
            "--sparse",
            "tools,libs/lib02",
            "--filter",
            "blob:none",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_eq!(
        std::fs::read_to_string(dest.join("libs/lib02/core/c00.c")).unwrap(),
        "changed in the cone\n"
    );
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    let changed_outside = git_out(&work, &["rev-parse", "HEAD:services/svc09/src/f00.rs"]);
    assert!(!blobs(&dest).contains(&changed_outside));

    // Behind Basic auth: the blobs' request carries the credentials as the fetch did, and no
    // secret is written or printed.
    let private = tmp.path().join("dest-private");
    let out = run(gitinit()
        .env("POLYAXON_GIT_CREDENTIALS", "bob:plainpass")
        .args([
            "clone",
            "--url",
            &http.http_url("private/mono.git"),
            "--filter=blob:none",
        ])
        .args(["--sparse", "docs", "--dest"])
        .arg(&private));
    ok(&out);
    assert_eq!(blobs(&private), checked_out_blobs(&private));
    assert!(private.join("docs/page49.md").is_file());
    common::assert_no_secret(&[&out.stdout, &out.stderr], &private, "plainpass");

    // Shallow with blob:none: the commit and trees in one request, the blobs in one more.
    let dest = tmp.path().join("dest-shallow-none");
    let before = http.count_requests("POST");
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            &url,
            "--depth",
            "1",
            "--filter",
            "blob:none",
            "--sparse",
            "docs",
        ])
        .arg("--dest")
        .arg(&dest));
    ok(&out);
    assert_eq!(http.count_requests("POST"), before + 2, "{}", http.log());
    assert_eq!(blobs(&dest), checked_out_blobs(&dest));
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");

    // tree:0 through GITINIT_FILTER: the trees come in one more request.
    let dest = tmp.path().join("dest-tree0");
    let out = run(gitinit()
        .env("GITINIT_FILTER", "tree:0")
        .args([
            "clone", "--url", &url, "--sparse", CONE, "--report", "-", "--dest",
        ])
        .arg(&dest));
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, http.log());
    assert_eq!(report(&out)["filter"], "tree:0");
    assert_eq!(blobs(&dest), checked_out_blobs(&dest));
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    assert_eq!(config(&dest, "remote.origin.partialclonefilter"), "tree:0");
    assert_eq!(files(&dest), files(&reference));

    // Shallow too: the filter goes into libgit2's shallow request (one request, see
    // git::http::shallow). Every blob is below 1 KiB: nothing more to fetch.
    let dest = tmp.path().join("dest-shallow");
    let before = http.count_requests("POST");
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            &url,
            "--depth",
            "1",
            "--filter",
            "blob:limit=1k",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_eq!(http.count_requests("POST"), before + 1, "{}", http.log());
    let head_blobs: std::collections::BTreeSet<String> =
        git_out(&served, &["ls-tree", "-r", "HEAD"])
            .lines()
            .filter_map(|l| l.split_once(" blob ").map(|(_, r)| r[..40].to_string()))
            .collect();
    assert_eq!(blobs(&dest), head_blobs);
    assert_eq!(
        config(&dest, "remote.origin.partialclonefilter"),
        "blob:limit=1k"
    );
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    assert_eq!(
        git_out(&dest, &["rev-parse", "--is-shallow-repository"]),
        "true"
    );

    // Only uploadpack.allowFilter: over HTTP (stateless) git's server serves any object
    // reachable from its refs by id, so that is enough.
    let strict = repos.join("strict.git");
    git_out(
        &repos,
        &[
            "clone",
            "-q",
            "--bare",
            served.to_str().unwrap(),
            "strict.git",
        ],
    );
    git_out(&strict, &["config", "uploadpack.allowFilter", "true"]);
    let dest = tmp.path().join("dest-strict");
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            &http.http_url("public/strict.git"),
            "--filter=blob:none",
        ])
        .args(["--sparse", "docs", "--dest"])
        .arg(&dest));
    ok(&out);
    assert_eq!(blobs(&dest), checked_out_blobs(&dest));

    // A server without `filter`: a warning, every blob, and the promisor configuration all
    // the same (as git does).
    let dest = tmp.path().join("dest-nofilter");
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            &http.http_url("public/nofilter.git"),
            "--filter=blob:none",
        ])
        .args(["--sparse", CONE, "--dest"])
        .arg(&dest));
    ok(&out);
    assert!(
        out.stderr.contains("does not support --filter=blob:none"),
        "{}",
        out.stderr
    );
    assert_eq!(blobs(&dest), all);
    assert_eq!(config(&dest, "remote.origin.promisor"), "true");
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
}

#[test]
fn bad_filters_are_refused_and_a_local_source_ignores_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    for (option, flag) in [
        (Some("blob:some"), None),
        (None, Some("--filter=sparse:oid=HEAD")),
        (Some("blob:none"), Some("--filter=tree:0")),
    ] {
        let mut cmd = gitinit();
        cmd.args(["clone", "--url", "https://127.0.0.1:1/none.git", "--dest"])
            .arg(&dest);
        if let Some(o) = option {
            cmd.args(["--filter", o]);
        }
        if let Some(f) = flag {
            cmd.args(["--flags", f]);
        }
        let out = run(&mut cmd);
        assert_eq!(out.code, 2, "{option:?} {flag:?}: {}", out.stderr);
        assert!(out.stderr.contains("filter"), "{}", out.stderr);
    }
    let (tmp, repos, _) = monorepo(false);
    let dest = tmp.path().join("local");
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            repos.join("mono.git").to_str().unwrap(),
            "--filter=blob:none",
            "--report",
            "-",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert!(
        out.stderr.contains("ignored for a local repository"),
        "{}",
        out.stderr
    );
    assert!(report(&out).get("filter").is_none());
    assert_eq!(config(&dest, "remote.origin.promisor"), "");
}
