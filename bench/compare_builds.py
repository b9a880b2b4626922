#!/usr/bin/env python3
"""Several gitinit binaries against each other on the same repository, alternating: e.g. the glibc
build against a musl build (issue #7). Reuses bench.py's repositories, server and timing.

    python3 bench/compare_builds.py glibc=target/release/gitinit \\
        musl=target/x86_64-unknown-linux-musl/release/gitinit --size medium --rounds 7

Times a cold full clone and a cold depth-1 clone of main over HTTP (lighttpd + git-http-backend on
127.0.0.1). Each round runs every binary once, in an order rotated each round. Prints the median
wall time, its spread (min-max), the largest peak RSS, the median user+sys CPU, the binary's size,
and ratios against the first binary; writes JSON.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import bench

SCENARIOS = {
    "cold full clone": ["--revision", "main"],
    "cold depth-1 branch": ["--revision", "main", "--flags", "--depth 1"],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="+", metavar="LABEL=PATH")
    ap.add_argument("--size", default="medium", choices=list(bench.SIZES))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--scratch", metavar="DIR", help="where the clones go (default: target/bench); see bench.py")
    ap.add_argument("--out", default=str(bench.ROOT / "target/bench/compare_builds.json"))
    a = ap.parse_args()
    builds = {}
    for b in a.builds:
        label, _, path = b.partition("=")
        if not path:
            ap.error(f"{b}: expected LABEL=PATH")
        builds[label] = str(Path(path).resolve())
    work = bench.ROOT / "target/bench"
    work.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp())
    env = bench.clean_env(home)
    repos = work / "repos"
    repos.mkdir(exist_ok=True)
    repo = bench.make_repo(a.size, repos, env)
    scratch_root = Path(a.scratch) if a.scratch else work
    scratch_root.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
               "size": a.size, "rounds": a.rounds, "scratch": str(scratch_root), "load_before": os.getloadavg(),
               "builds": {l: {"path": p, "bytes": os.path.getsize(p),
                              "version": subprocess.run([p, "--version"], capture_output=True, text=True).stdout.strip()}
                          for l, p in builds.items()},
               "results": []}
    server = bench.Lighttpd(repos, work, env)
    labels = list(builds)
    try:
        url = server.url(repo.name)
        for name, args in SCENARIOS.items():
            samples = {l: [] for l in labels}
            for r in range(a.rounds):
                for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                    scratch = Path(tempfile.mkdtemp(dir=scratch_root))
                    try:
                        cmd = [builds[label], "clone", "-q", "--url", url, "--dest", str(scratch / "dest"), *args]
                        samples[label].append(bench.timed([cmd], env))
                    finally:
                        shutil.rmtree(scratch, ignore_errors=True)
            row = {"scenario": name, "builds": {}}
            for label, s in samples.items():
                secs = [x[0] for x in s]
                row["builds"][label] = {"median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
                                        "samples_s": secs, "peak_rss_kib": max(x[1] for x in s),
                                        "median_cpu_s": statistics.median(x[2] for x in s)}
            results["results"].append(row)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2))
    first = labels[0]
    print(f"| scenario | build | wall median (min-max) | ÷ {first} | peak RSS | ÷ {first} | CPU (user+sys) |")
    print("|---|---|---|---|---|---|---|")
    for row in results["results"]:
        base = row["builds"][first]
        for label, v in row["builds"].items():
            print(f"| {row['scenario']} | {label} | {v['median_s']:.3f} s ({v['min_s']:.3f}-{v['max_s']:.3f}) "
                  f"| {v['median_s'] / base['median_s']:.2f} | {v['peak_rss_kib'] / 1024:.1f} MiB "
                  f"| {v['peak_rss_kib'] / base['peak_rss_kib']:.2f} | {v['median_cpu_s']:.2f} s |")
    print("\n| build | binary size | version |")
    print("|---|---|---|")
    for label, b in results["builds"].items():
        print(f"| {label} | {b['bytes'] / 2**20:.1f} MiB ({b['bytes']} bytes) | {b['version']} |")
    print(f"\n{results['machine']}; size {a.size}; {a.rounds} rounds, medians; load {results['load_before'][0]:.2f} "
          f"before, {results['load_after'][0]:.2f} after\nJSON: {a.out}")


if __name__ == "__main__":
    main()
