#!/usr/bin/env python3
"""gitinit's LFS downloads against `git lfs pull` on the same server, in the same run: a program,
not a test.

A local bare repository whose `.lfsconfig` points at giftless (the LFS server of the tests,
from the venv .ci/py-venv.sh builds) holds N objects of M MiB of random bytes. Each round,
alternating the order, times:

  gitinit       gitinit clone of the repository (the clone, then its LFS stage)
  git + lfs     git clone with GIT_LFS_SKIP_SMUDGE=1, then git lfs pull (git-lfs 8 transfers)

into fresh directories, and reports medians, the ratio gitinit / git, and peak RSS.

    python3 bench/lfs.py                       # 16 objects of 8 MiB, 5 rounds
    python3 bench/lfs.py --objects 4 --mib 64 --rounds 3
    python3 bench/lfs.py --gitinit target/release/gitinit
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUNNER = """
import sys
from werkzeug.serving import run_simple
from giftless.app import init_app
run_simple("127.0.0.1", int(sys.argv[1]), init_app(), threaded=True)
"""

CONFIG = """
LEGACY_ENDPOINTS: false
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
PRE_AUTHORIZED_ACTION_PROVIDER:
  factory: giftless.auth.jwt:factory
  options: {{algorithm: HS256, private_key: bench-key, default_lifetime: 3600}}
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options: {{path: {storage}}}
      action_lifetime: 3600
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(home):
    e = {"PATH": os.environ["PATH"], "HOME": home, "LANG": "C", "GIT_CONFIG_NOSYSTEM": "1",
         "GIT_CONFIG_GLOBAL": os.path.join(home, ".gitconfig"), "GIT_TERMINAL_PROMPT": "0"}
    return e


def run(cmd, cwd, e, check=True):
    """Wall seconds and peak RSS (KiB) of one command, through /usr/bin/time."""
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, cwd=cwd, env=e,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if check and p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    rss = int(p.stderr.strip().splitlines()[-1]) if p.stderr.strip() else 0
    return wall, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=16)
    ap.add_argument("--mib", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gitinit", default=os.path.join(ROOT, "target/release/gitinit"))
    ap.add_argument("--scratch", default=None)
    a = ap.parse_args()
    if not os.path.exists(a.gitinit):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    venv = subprocess.run(["bash", os.path.join(ROOT, ".ci/py-venv.sh"), "giftless"], check=True,
                          capture_output=True, text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="gitinit-lfs-bench-", dir=a.scratch)
    home = os.path.join(work, "home")
    os.makedirs(home)
    e = env(home)
    subprocess.run(["git", "lfs", "install", "--skip-repo"], env=e, check=True, capture_output=True)
    storage = os.path.join(work, "storage")
    os.makedirs(storage)
    with open(os.path.join(work, "giftless.yaml"), "w") as f:
        f.write(CONFIG.format(storage=storage))
    with open(os.path.join(work, "run.py"), "w") as f:
        f.write(RUNNER)
    port = free_port()
    server = subprocess.Popen([os.path.join(venv, "bin/python"), os.path.join(work, "run.py"), str(port)],
                              env={**e, "GIFTLESS_CONFIG_FILE": os.path.join(work, "giftless.yaml")},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        lfs_url = f"http://127.0.0.1:{port}/bench/models.git/info/lfs"
        src = os.path.join(work, "src")
        os.makedirs(src)
        g = lambda *args: subprocess.run(["git", *args], cwd=src, env=e, check=True, capture_output=True)
        g("init", "-q", "-b", "main", ".")
        with open(os.path.join(src, ".lfsconfig"), "w") as f:
            f.write(f"[lfs]\n\turl = {lfs_url}\n")
        g("lfs", "track", "*.bin")
        for i in range(a.objects):
            with open(os.path.join(src, f"w{i:03}.bin"), "wb") as f:
                f.write(os.urandom(a.mib << 20))
        g("add", "-A")
        g("-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "models")
        g("lfs", "push", "--all", lfs_url)
        bare = os.path.join(work, "models.git")
        subprocess.run(["git", "clone", "-q", "--bare", "--no-local", src, bare], env={**e, "GIT_LFS_SKIP_SMUDGE": "1"},
                       check=True, capture_output=True)
        tools = {
            "gitinit": lambda d: [run([a.gitinit, "clone", "-q", "--url", bare, "--dest", d], work, e)],
            "git + lfs": lambda d: [run(["git", "clone", "-q", bare, d], work, {**e, "GIT_LFS_SKIP_SMUDGE": "1"}),
                                    run(["git", "lfs", "pull"], d, e)],
        }
        samples = {k: [] for k in tools}
        names = list(tools)
        for r in range(a.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                d = os.path.join(work, f"out-{r}-{name.replace(' ', '')}")
                steps = tools[name](d)
                samples[name].append((sum(s[0] for s in steps), max(s[1] for s in steps)))
                shutil.rmtree(d)
        total = a.objects * a.mib
        print(f"{a.objects} objects of {a.mib} MiB ({total} MiB), {a.rounds} rounds, giftless on loopback")
        med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v)) for k, v in samples.items()}
        for k, (w, m) in med.items():
            print(f"  {k:10} {w:7.2f} s  {total / w:7.1f} MiB/s  peak RSS {m / 1024:6.1f} MiB")
        print(f"  gitinit / git+lfs: time {med['gitinit'][0] / med['git + lfs'][0]:.2f}, "
              f"peak RSS {med['gitinit'][1] / max(med['git + lfs'][1], 1):.2f}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
