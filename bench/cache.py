#!/usr/bin/env python3
"""The shared cache (issue #16): N pods starting at once on one repository and revision, with and
without --cache, in the same run: a program, not a test.

For each repository (generated `medium` and any --repo PATH), alternating the order each round:
  burst, no cache   N concurrent `gitinit clone` (cold), as N pods without the cache
  burst, cache      N concurrent `gitinit clone --cache DIR` on a fresh cache
  burst, git        N concurrent `git clone` (the baseline)
and, sequentially: one cold clone against one run on a warm cache (a hit), the ratio the issue
asks to be <= 0.2. Prints the total wall time of a burst, the bytes the remote sent (the sum of
the reports' received_bytes; for git, of the pack files), and the cache's hit/filled counts.

    python3 bench/cache.py                          # medium, 20 pods, 3 rounds
    python3 bench/cache.py --sizes '' --repo /work/.mirror/serde-rs+serde/repo --pods 20
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the same repositories, server and environment as bench.py)

ROOT = bench.ROOT


def burst(cmds, env):
    """Starts every command at once; returns (wall seconds until the last ends, stdout of each)."""
    start = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    outs = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{p.args} failed: {err[-2000:]}")
        outs.append(out)
    return time.perf_counter() - start, outs


def reports(outs):
    return [json.loads(o.strip().splitlines()[-1]) for o in outs if o.strip()]


def pack_bytes(dest: Path) -> int:
    return sum(p.stat().st_size for p in (dest / ".git/objects/pack").glob("*.pack"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="medium")
    ap.add_argument("--repo", action="append", default=[], metavar="PATH")
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gitinit", metavar="PATH")
    ap.add_argument("--scratch", metavar="DIR",
                    help="where the pods' destinations and the cache go (default: /dev/shm/gitinit-cache-bench: "
                         "on ext4 without a journal, creating 80k files right after deleting as many measures the "
                         "inode allocator, see bench.py)")
    ap.add_argument("--out", default=str(ROOT / "target/bench/cache.json"))
    a = ap.parse_args()
    gitinit = bench.gitinit_binary(a.gitinit)
    work = ROOT / "target/bench"
    (work / "repos").mkdir(parents=True, exist_ok=True)
    env = bench.clean_env(Path(tempfile.mkdtemp()))
    scratch_root = Path(a.scratch or "/dev/shm/gitinit-cache-bench")
    scratch_root.mkdir(parents=True, exist_ok=True)
    server = bench.Lighttpd(work / "repos", work, env)
    results = []
    try:
        targets = [(s, None) for s in a.sizes.split(",") if s] + [(bench.real_name(r), r) for r in a.repo]
        for name, real in targets:
            repo = bench.import_repo(real, work / "repos", env) if real else bench.make_repo(name, work / "repos", env)
            url = server.url(repo.name)
            print(f"# {name}: {args_summary(repo, env)}", flush=True)
            rows = {k: [] for k in ["burst, no cache", "burst, cache", "burst, git", "cold", "hit"]}
            for r in range(a.rounds):
                kinds = ["burst, no cache", "burst, cache", "burst, git"]
                for kind in (kinds if r % 2 == 0 else list(reversed(kinds))):
                    scratch = Path(tempfile.mkdtemp(dir=scratch_root))
                    try:
                        cache = scratch / "cache"
                        dests = [scratch / f"pod{i}" for i in range(a.pods)]
                        if kind == "burst, git":
                            cmds = [["git", "clone", "-q", url, str(d)] for d in dests]
                        else:
                            extra = ["--cache", str(cache)] if kind == "burst, cache" else []
                            cmds = [[gitinit, "clone", "-q", "--report", "-", "--url", url, "--dest", str(d), *extra]
                                    for d in dests]
                        secs, outs = burst(cmds, env)
                        if kind == "burst, git":
                            remote = sum(pack_bytes(d) for d in dests)
                            kinds_seen = {}
                        else:
                            reps = reports(outs)
                            remote = sum(rep["received_bytes"] for rep in reps)
                            kinds_seen = {k: sum(1 for rep in reps if rep["cache"] == k) for k in ["hit", "filled", "off"]}
                        rows[kind].append({"secs": secs, "remote_bytes": remote, "cache": kinds_seen})
                        print(f"  round {r}: {kind:16} {secs:7.2f} s  remote {remote / 2**20:8.1f} MiB  {kinds_seen}",
                              flush=True)
                    finally:
                        shutil.rmtree(scratch, ignore_errors=True)
                # One cold clone against one run on a warm cache, alternating.
                scratch = Path(tempfile.mkdtemp(dir=scratch_root))
                try:
                    cache = scratch / "cache"
                    bench.sh([gitinit, "clone", "-q", "--url", url, "--dest", str(scratch / "fill"),
                              "--cache", str(cache)], env)
                    pair = [("cold", []), ("hit", ["--cache", str(cache)])]
                    for kind, extra in (pair if r % 2 == 0 else list(reversed(pair))):
                        dest = scratch / kind
                        secs, rss, _ = bench.timed([[gitinit, "clone", "-q", "--url", url, "--dest", str(dest), *extra]],
                                                   env)
                        rows[kind].append({"secs": secs, "rss_kib": rss})
                        shutil.rmtree(dest, ignore_errors=True)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
            med = {k: statistics.median(x["secs"] for x in v) for k, v in rows.items()}
            remote = {k: statistics.median(x["remote_bytes"] for x in v) for k, v in rows.items() if k.startswith("burst")}
            print(f"## {name}, {a.pods} pods (medians of {a.rounds})")
            for k in ["burst, git", "burst, no cache", "burst, cache"]:
                print(f"  {k:16} {med[k]:7.2f} s   remote {remote[k] / 2**20:8.1f} MiB")
            print(f"  cache / no cache: time {med['burst, cache'] / med['burst, no cache']:.2f}x, "
                  f"remote bytes {remote['burst, cache'] / max(remote['burst, no cache'], 1):.3f}x")
            print(f"  one run on a warm cache / one cold clone: {med['hit'] / med['cold']:.2f}x "
                  f"({med['hit']:.3f} s / {med['cold']:.3f} s)", flush=True)
            results.append({"repo": name, "pods": a.pods, "rounds": rows, "medians": med, "remote": remote})
    finally:
        server.stop()
    Path(a.out).write_text(json.dumps(results, indent=1))
    print(f"# written {a.out}")


def args_summary(repo: Path, env) -> str:
    info = bench.repo_info(repo, env)
    return f"pack {info['pack_mib']:.1f} MiB, {info['commits']} commits, tip tree {info['tree_files']} files"


if __name__ == "__main__":
    main()
