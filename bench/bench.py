#!/usr/bin/env python3
"""gitinit against git on the same data in the same run: a program, not a test.

Generates deterministic repositories (bench/gen.py), serves them with lighttpd +
git-http-backend on 127.0.0.1, and times, alternating the order each round:

  gitinit            the release binary
  git clone          the git CLI's clone with the same depth / branch
  git-sync sequence  git init; git fetch --depth 1 <url> <ref>; git checkout FETCH_HEAD

for: cold depth-1 branch, cold depth-1 by SHA, cold full clone, warm rerun of the same revision,
warm rerun after 10 new upstream commits, and a local path; on the size huge-tree (a ~1 GiB
working tree, 3 commits), a cold depth-1 clone only. Prints medians, spread and the ratio
gitinit / git (wall time and peak RSS from /usr/bin/time -f %M; user+sys CPU in the JSON), checks
the targets (issue #6 on generated repositories, issue #14 on real histories), and writes JSON.

    python3 bench/bench.py                 # small and medium repositories, 5 rounds
    python3 bench/bench.py --sizes large   # 20k files, 5k commits, >= 200 MiB pack, 100 binary blobs
    python3 bench/bench.py --sizes huge-tree --rounds 3        # ~1 GiB checkout at depth 1
    python3 bench/bench.py --gitinit /path/to/gitinit          # that binary; implies --no-build
    python3 bench/bench.py --scenarios "cold full,local"       # only scenarios containing these
    python3 bench/bench.py --sizes '' --repo ~/src/serde --repo ~/src/tokio   # real histories

Generated repositories are cached in target/bench/repos (delete a SIZE.git there to regenerate).

Clones go to --scratch (default target/bench) and are deleted after each sample. On ext4 WITHOUT a
journal (/proc/fs/jbd2 empty for the device), creating files soon after deleting ~20k others is
very slow: the inode allocator skips inodes deleted in the last ~30 s (recently_deleted() in
perf), for every tool alike, so large and huge-tree runs measure that instead (measured: local
clone of large 3 s alone, 25 s in the benchmark). There, pass --scratch /dev/shm/gitinit-bench.
"""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {
    "small": ["--files", "300", "--commits", "100", "--binaries", "2"],
    "medium": ["--files", "4000", "--commits", "800", "--binaries", "10", "--edit-kib", "6"],
    # >= 200 MB of pack: --edit-kib 8 / 40 binaries gave 144 MiB (measured), too little for issue #6.
    "large": ["--files", "20000", "--commits", "5000", "--binaries", "100", "--edit-kib", "12"],
    # ~1 GiB checked out: 4000 text files of 64 KiB (250 MiB) + 3100 incompressible blobs of
    # 256 KiB (775 MiB); 3 commits on main (+10 on main-plus10).
    "huge-tree": ["--files", "4000", "--text-kib", "64", "--binaries", "3100", "--commits", "3"],
}
# Sizes that run only some scenarios by default (a full matrix of 1 GiB checkouts is too slow).
SIZE_SCENARIOS = {"huge-tree": ["cold depth-1, 1 GB tree"]}
SIZE_ONLY = {n for names in SIZE_SCENARIOS.values() for n in names}  # never run on the other sizes
# Targets of issue #6: scenario -> largest gitinit / baseline time ratio.
TIME_TARGETS = {"cold depth-1 branch": 1.0, "cold full clone": 1.0, "cold depth-1, 1 GB tree": 1.0,
                "local path, full": 1.0}
RSS_TARGET = 1.5        # peak RSS, gitinit / baseline, every scenario
WARM_TARGET = 0.1       # warm rerun of the same revision / gitinit's own cold depth-1 clone
# Targets of issue #14, on real histories (--repo): faster than git, not only as fast.
REAL_TIME_TARGETS = {"cold depth-1 branch": 0.8, "cold full clone": 0.8}
REAL_RSS_TARGET = 1.2
REAL_WARM_TARGET = 0.05  # warm rerun of the same revision / gitinit's own cold full clone


def clean_env(home: Path) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
    }


def sh(cmd, env, cwd=None):
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(steps, env, cwd=None):
    """Runs the steps (each a command list) one after another; returns (seconds, peak RSS KiB of
    the largest process, user+sys CPU seconds of all steps and their children)."""
    start = time.perf_counter()
    peak, cpu = 0, 0.0
    for step in steps:
        with tempfile.NamedTemporaryFile() as rss:
            p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", rss.name, *step], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if p.returncode != 0:
                raise RuntimeError(f"{step} failed: {p.stderr.decode()[-2000:]}")
            user, sys_, kib = Path(rss.name).read_text().split()[-3:]
            peak = max(peak, int(kib))
            cpu += float(user) + float(sys_)
    return time.perf_counter() - start, peak, cpu


def gitinit_binary(given, build=True) -> str:
    """The binary to measure: `given` (--gitinit PATH), else target/release/gitinit, built first
    unless `build` is false."""
    if given:
        return str(Path(given).resolve())
    if build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "gitinit"], cwd=ROOT, check=True)
    return str(ROOT / "target/release/gitinit")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_name(path: str) -> str:
    """`real-NAME` for a repository path; a directory called `repo` or `.git` is named by its parent."""
    p = Path(path.rstrip("/")).resolve()
    if p.name in ("repo", ".git"):
        p = p.parent
    return "real-" + p.name.removesuffix(".git").replace("+", "-")


def import_repo(path: str, work: Path, env) -> Path:
    """A real history given with --repo: a bare copy served like the generated ones, `main` ten
    commits behind its tip and `main-plus10` at the tip (the warm-rerun-after-new-commits case
    then fetches real commits)."""
    repo = work / f"{real_name(path)}.git"
    if (repo / "gen-done").exists():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    sh(["git", "clone", "-q", "--bare", "--no-local", path, str(repo)], env)
    tip = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    sh(["git", "-C", str(repo), "update-ref", "refs/heads/main-plus10", tip], env)
    sh(["git", "-C", str(repo), "update-ref", "refs/heads/main", f"{tip}~10"], env)
    sh(["git", "-C", str(repo), "symbolic-ref", "HEAD", "refs/heads/main"], env)
    for k in ["uploadpack.allowReachableSHA1InWant", "uploadpack.allowTipSHA1InWant"]:
        sh(["git", "-C", str(repo), "config", k, "true"], env)
    (repo / "gen-done").write_text("")
    return repo


def make_repo(size: str, work: Path, env) -> Path:
    repo = work / f"{size}.git"
    if (repo / "gen-done").exists():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    sh(["git", "init", "-q", "--bare", str(repo)], env)
    gen = subprocess.Popen([sys.executable, str(ROOT / "bench/gen.py"), *SIZES[size]], stdout=subprocess.PIPE)
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], stdin=gen.stdout, env=env, check=True)
    gen.wait()
    for k in ["uploadpack.allowReachableSHA1InWant", "uploadpack.allowTipSHA1InWant"]:
        sh(["git", "-C", str(repo), "config", k, "true"], env)
    sh(["git", "-C", str(repo), "symbolic-ref", "HEAD", "refs/heads/main"], env)
    sh(["git", "-C", str(repo), "repack", "-adq"], env)
    (repo / "gen-done").write_text("")
    return repo


class Lighttpd:
    def __init__(self, repos: Path, work: Path, env):
        self.port = free_port()
        backend = subprocess.run(["git", "--exec-path"], env=env, capture_output=True, text=True).stdout.strip()
        conf = work / "lighttpd.conf"
        conf.write_text(f"""
server.document-root = "{work}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{work}/lighttpd-error.log"
server.stream-response-body = 1
server.modules = ("mod_alias", "mod_setenv", "mod_cgi")
alias.url = ("/git/" => "{backend}/git-http-backend/")
cgi.assign = ("" => "")
setenv.set-environment = ("GIT_PROJECT_ROOT" => "{repos}", "GIT_HTTP_EXPORT_ALL" => "1")
""")
        self.proc = subprocess.Popen(["lighttpd", "-D", "-f", str(conf)], env=env)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("lighttpd did not start")

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/git/{name}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def scenarios(gitinit: str, url: str, local: str, sha: str):
    """name -> (setup(dest) steps or None, {tool: steps(dest)}); the first tool after gitinit is
    the baseline of the ratio."""
    gi = lambda dest, *extra: [gitinit, "clone", "-q", "--url", url, "--dest", dest, *extra]
    sync = lambda dest, ref: [["git", "init", "-q", dest],
                              ["git", "-C", dest, "fetch", "-q", "--depth", "1", url, ref],
                              ["git", "-C", dest, "checkout", "-q", "FETCH_HEAD"]]
    refetch = lambda dest, ref: [["git", "-C", dest, "fetch", "-q", "--depth", "1", url, ref],
                                 ["git", "-C", dest, "checkout", "-q", "FETCH_HEAD"]]
    return {
        "cold depth-1 branch": (None, {
            "gitinit": lambda d: [gi(d, "--revision", "main", "--flags", "--depth 1")],
            "git clone": lambda d: [["git", "clone", "-q", "--depth", "1", "--branch", "main", url, d]],
            "git-sync": lambda d: sync(d, "main"),
        }),
        # The same commands as "cold depth-1 branch", named for the huge-tree size.
        "cold depth-1, 1 GB tree": (None, {
            "gitinit": lambda d: [gi(d, "--revision", "main", "--flags", "--depth 1")],
            "git clone": lambda d: [["git", "clone", "-q", "--depth", "1", "--branch", "main", url, d]],
            "git-sync": lambda d: sync(d, "main"),
        }),
        "cold depth-1 by SHA": (None, {
            "gitinit": lambda d: [gi(d, "--revision", sha, "--flags", "--depth 1")],
            "git-sync": lambda d: sync(d, sha),
        }),
        "cold full clone": (None, {
            "gitinit": lambda d: [gi(d, "--revision", "main")],
            "git clone": lambda d: [["git", "clone", "-q", "--single-branch", "--branch", "main", url, d]],
        }),
        "warm rerun, same revision": ("same", {
            "gitinit": lambda d: [gi(d, "--revision", "main", "--flags", "--depth 1")],
            "git-sync": lambda d: refetch(d, "main"),
        }),
        "warm rerun, 10 new commits": ("behind", {
            "gitinit": lambda d: [gi(d, "--revision", "main-plus10", "--flags", "--depth 1")],
            "git-sync": lambda d: refetch(d, "main-plus10"),
        }),
        "local path, full": (None, {
            "gitinit": lambda d: [[gitinit, "clone", "-q", "--url", local, "--dest", d, "--revision", "main"]],
            "git clone": lambda d: [["git", "clone", "-q", "--single-branch", "--branch", "main", local, d]],
        }),
    }


def prepare(kind, tool, dest, gitinit, url, env):
    """A warm destination in the state each tool would leave it."""
    if tool == "gitinit":
        sh([gitinit, "clone", "-q", "--url", url, "--dest", dest, "--revision", "main", "--flags", "--depth 1"], env)
    else:
        for step in [["git", "init", "-q", dest], ["git", "-C", dest, "fetch", "-q", "--depth", "1", url, "main"],
                     ["git", "-C", dest, "checkout", "-q", "FETCH_HEAD"]]:
            sh(step, env)


def repo_info(repo: Path, env) -> dict:
    git = lambda *args: subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True,
                                       check=True).stdout
    sizes = [int(line.split()[3]) for line in git("ls-tree", "-r", "-l", "main").splitlines()]
    return {"pack_mib": sum(f.stat().st_size for f in (repo / "objects/pack").glob("*.pack")) / 2**20,
            "commits": int(git("rev-list", "--count", "--all")), "tree_files": len(sizes),
            "tree_mib": sum(sizes) / 2**20}


def check_targets(rows) -> list:
    """Issue #6's targets on generated repositories, issue #14's on real histories (`real-*`)."""
    out = []
    for row in rows:
        real = row["size"].startswith("real-")
        limit = (REAL_TIME_TARGETS if real else TIME_TARGETS).get(row["scenario"])
        if limit is not None:
            out.append({"size": row["size"], "what": f"{row['scenario']} time vs {row['vs']}",
                        "value": row["time_ratio"], "limit": limit, "met": row["time_ratio"] <= limit})
        rss = REAL_RSS_TARGET if real else RSS_TARGET
        out.append({"size": row["size"], "what": f"{row['scenario']} peak RSS vs {row['vs']}",
                    "value": row["rss_ratio"], "limit": rss, "met": row["rss_ratio"] <= rss})
        if row["scenario"] == "warm rerun, same revision":
            against, limit = ("cold full clone", REAL_WARM_TARGET) if real else ("cold depth-1 branch", WARM_TARGET)
            cold = next((r for r in rows if r["size"] == row["size"] and r["scenario"] == against), None)
            if cold:
                v = row["tools"]["gitinit"]["median_s"] / cold["tools"]["gitinit"]["median_s"]
                out.append({"size": row["size"], "what": f"warm rerun same revision vs gitinit {against}",
                            "value": v, "limit": limit, "met": v <= limit})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="small,medium", help="generated sizes; '' for none (with --repo)")
    ap.add_argument("--repo", action="append", default=[], metavar="PATH",
                    help="also time this real repository (any clone or bare repository; repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--gitinit", metavar="PATH",
                    help="gitinit binary to measure (default: target/release/gitinit, built first); implies --no-build")
    ap.add_argument("--scenarios", help="comma-separated substrings: run only the scenarios whose name contains one "
                                        "(default: all; huge-tree runs only its 1 GB scenario)")
    ap.add_argument("--scratch", metavar="DIR", help="where the clones go (default: target/bench); e.g. a tmpfs")
    ap.add_argument("--out", default=str(ROOT / "target/bench/results.json"))
    a = ap.parse_args()
    unknown = [s for s in a.sizes.split(",") if s and s not in SIZES]
    if unknown:
        ap.error(f"unknown size {', '.join(unknown)}; known: {', '.join(SIZES)}")
    gitinit = gitinit_binary(a.gitinit, build=not a.no_build)
    work = ROOT / "target/bench"
    work.mkdir(parents=True, exist_ok=True)
    scratch_root = Path(a.scratch) if a.scratch else work
    scratch_root.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp())
    env = clean_env(home)
    repos = work / "repos"
    repos.mkdir(exist_ok=True)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
               "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
               "gitinit": subprocess.run([gitinit, "--version"], capture_output=True, text=True).stdout.strip(),
               "gitinit_path": gitinit, "scratch": str(scratch_root), "rounds": a.rounds, "load_before": os.getloadavg(), "repos": {},
               "results": []}
    server = Lighttpd(repos, work, env)
    try:
        targets = [(s, None) for s in a.sizes.split(",") if s]
        targets += [(real_name(r), r) for r in a.repo]
        for size, real in targets:
            t0 = time.perf_counter()
            repo = import_repo(real, repos, env) if real else make_repo(size, repos, env)
            info = repo_info(repo, env)
            results["repos"][size] = info
            print(f"# {size}: generated/cached in {time.perf_counter() - t0:.1f}s, pack {info['pack_mib']:.1f} MiB, "
                  f"{info['commits']} commits, tip tree {info['tree_files']} files / {info['tree_mib']:.1f} MiB",
                  flush=True)
            url = server.url(repo.name)
            sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "main"], env=env, capture_output=True,
                                 text=True).stdout.strip()
            for name, (warm, tools) in scenarios(gitinit, url, str(repo), sha).items():
                only = SIZE_SCENARIOS.get(size)
                if (only is not None and name not in only) or (only is None and name in SIZE_ONLY):
                    continue
                if a.scenarios and not any(w.strip() in name for w in a.scenarios.split(",")):
                    continue
                samples = {t: [] for t in tools}
                for r in range(a.rounds):
                    order = list(tools) if r % 2 == 0 else list(reversed(list(tools)))
                    for tool in order:
                        scratch = Path(tempfile.mkdtemp(dir=scratch_root))
                        dest = str(scratch / "dest")
                        try:
                            if warm:
                                prepare(warm, tool, dest, gitinit, url, env)
                            samples[tool].append(timed(tools[tool](dest), env))
                        finally:
                            shutil.rmtree(scratch, ignore_errors=True)
                row = {"size": size, "scenario": name, "tools": {}}
                for tool, s in samples.items():
                    secs = [x[0] for x in s]
                    row["tools"][tool] = {"median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
                                          "samples_s": secs, "peak_rss_kib": max(x[1] for x in s),
                                          "median_cpu_s": statistics.median(x[2] for x in s)}
                base = next(t for t in tools if t != "gitinit")
                g, b = row["tools"]["gitinit"], row["tools"][base]
                row["vs"] = base
                row["time_ratio"] = g["median_s"] / b["median_s"]
                row["rss_ratio"] = g["peak_rss_kib"] / b["peak_rss_kib"]
                results["results"].append(row)
                others = "  ".join(f"{t} {v['median_s']:.3f}s" for t, v in row["tools"].items() if t != "gitinit")
                print(f"{size:7} {name:28} gitinit {g['median_s']:.3f}s ({g['min_s']:.3f}-{g['max_s']:.3f})  {others}"
                      f"  ratio {row['time_ratio']:.2f}x vs {base}  RSS {row['rss_ratio']:.2f}x", flush=True)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    results["targets"] = check_targets(results["results"])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2))
    print(f"\n| size | scenario | gitinit | {'/'.join(['git'])} | ratio (time) | ratio (peak RSS) |")
    print("|---|---|---|---|---|---|")
    for row in results["results"]:
        g, b = row["tools"]["gitinit"], row["tools"][row["vs"]]
        print(f"| {row['size']} | {row['scenario']} | {g['median_s']:.3f} s | {b['median_s']:.3f} s ({row['vs']}) "
              f"| {row['time_ratio']:.2f} | {row['rss_ratio']:.2f} |")
    print("\nTargets (issue #6 on generated repositories, #14 on real histories):")
    for t in results["targets"]:
        print(f"  {'met    ' if t['met'] else 'NOT met'}  {t['size']:9} {t['what']}: {t['value']:.2f} (<= {t['limit']})")
    print(f"\n{results['machine']}; {results['git']}; gitinit {results['gitinit']}; {a.rounds} rounds, medians; "
          f"clones in {scratch_root}; "
          f"load {results['load_before'][0]:.2f} before, {results['load_after'][0]:.2f} after")
    print(f"JSON: {a.out}")


if __name__ == "__main__":
    main()
