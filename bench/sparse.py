#!/usr/bin/env python3
"""A monorepo, one directory (issue #17): gitinit's sparse partial clone against git doing the
same, in the same run, alternating: a program, not a test.

The generated monorepo (bench/gen.py: 20,000 text files in src/mNN/pNN/, 80 incompressible
256 KiB blobs in assets/, 1,000 commits) is served by lighttpd + git-http-backend with
uploadpack.allowFilter. Cases, each timed for both tools:

  one directory     gitinit clone --sparse src/m05 --filter=blob:none
                    git clone --sparse --filter=blob:none + git sparse-checkout set src/m05
  whole tree        gitinit clone  /  git clone (no filter, no sparse), for reference

Prints medians of wall time, bytes received (gitinit's report; for git, the packs it wrote) and
disk used by the destination (du), and the ratios gitinit / git.

    python3 bench/sparse.py [--rounds 3] [--dir src/m05]
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
import bench  # noqa: E402

ROOT = bench.ROOT
bench.SIZES["monorepo"] = ["--files", "20000", "--commits", "1000", "--binaries", "80", "--edit-kib", "8"]


def disk(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def packs(dest: Path) -> int:
    return sum(p.stat().st_size for p in (dest / ".git/objects/pack").glob("*.pack"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="src/m05")
    ap.add_argument("--gitinit", metavar="PATH")
    ap.add_argument("--scratch", default="/dev/shm/gitinit-sparse-bench")
    ap.add_argument("--out", default=str(ROOT / "target/bench/sparse.json"))
    a = ap.parse_args()
    gitinit = bench.gitinit_binary(a.gitinit)
    work = ROOT / "target/bench"
    (work / "repos").mkdir(parents=True, exist_ok=True)
    scratch_root = Path(a.scratch)
    scratch_root.mkdir(parents=True, exist_ok=True)
    env = bench.clean_env(Path(tempfile.mkdtemp()))
    t0 = time.perf_counter()
    repo = bench.make_repo("monorepo", work / "repos", env)
    for k in ["uploadpack.allowFilter", "uploadpack.allowAnySHA1InWant"]:
        bench.sh(["git", "-C", str(repo), "config", k, "true"], env)
    info = bench.repo_info(repo, env)
    print(f"# monorepo: {time.perf_counter() - t0:.0f}s to make, pack {info['pack_mib']:.1f} MiB, {info['commits']} commits, "
          f"tip tree {info['tree_files']} files / {info['tree_mib']:.1f} MiB; one directory: {a.dir}", flush=True)
    server = bench.Lighttpd(work / "repos", work, env)
    url = server.url(repo.name)
    cases = {
        "one directory": {
            "gitinit": lambda d: [[gitinit, "clone", "-q", "--report", str(d) + ".json", "--url", url, "--dest", str(d),
                                   "--sparse", a.dir, "--filter", "blob:none"]],
            "git": lambda d: [["git", "clone", "-q", "--sparse", "--filter=blob:none", url, str(d)],
                              ["git", "-C", str(d), "sparse-checkout", "set", a.dir]],
        },
        "whole tree": {
            "gitinit": lambda d: [[gitinit, "clone", "-q", "--report", str(d) + ".json", "--url", url, "--dest", str(d)]],
            "git": lambda d: [["git", "clone", "-q", url, str(d)]],
        },
    }
    rows = []
    try:
        for case, tools in cases.items():
            samples = {t: [] for t in tools}
            for r in range(a.rounds):
                order = list(tools) if r % 2 == 0 else list(reversed(list(tools)))
                for tool in order:
                    scratch = Path(tempfile.mkdtemp(dir=scratch_root))
                    dest = scratch / "dest"
                    try:
                        secs, rss, _ = bench.timed(tools[tool](dest), env)
                        if tool == "gitinit":
                            received = json.loads(Path(str(dest) + ".json").read_text())["received_bytes"]
                        else:
                            received = packs(dest)
                        samples[tool].append({"secs": secs, "rss_kib": rss, "received": received, "disk": disk(dest)})
                    finally:
                        shutil.rmtree(scratch, ignore_errors=True)
            med = {t: {k: statistics.median(s[k] for s in v) for k in v[0]} for t, v in samples.items()}
            g, i = med["git"], med["gitinit"]
            print(f"## {case}: gitinit {i['secs']:.2f} s, {i['received'] / 2**20:.1f} MiB received, "
                  f"{i['disk'] / 2**20:.1f} MiB on disk, {i['rss_kib'] / 1024:.0f} MiB RSS | git {g['secs']:.2f} s, "
                  f"{g['received'] / 2**20:.1f} MiB, {g['disk'] / 2**20:.1f} MiB, {g['rss_kib'] / 1024:.0f} MiB | ratios: "
                  f"time {i['secs'] / g['secs']:.2f}, received {i['received'] / g['received']:.2f}, "
                  f"disk {i['disk'] / g['disk']:.2f}, RSS {i['rss_kib'] / g['rss_kib']:.2f}", flush=True)
            rows.append({"case": case, "medians": med, "samples": samples})
    finally:
        server.stop()
    Path(a.out).write_text(json.dumps({"repo": info, "dir": a.dir, "rows": rows}, indent=1))
    print(f"# written {a.out}")


if __name__ == "__main__":
    main()
