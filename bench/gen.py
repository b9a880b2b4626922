#!/usr/bin/env python3
"""Writes a git fast-import stream for a deterministic synthetic repository.

Realistic shape: many small text files in nested directories, a long history where each commit
edits a few files, and some binary blobs. The same arguments always give the same repository
(and so the same SHAs): content comes from a seeded PRNG, dates are fixed.

    python3 bench/gen.py --files 20000 --commits 5000 --edit-kib 12 --binaries 100 | git fast-import

A big working tree with little history (about 1 GiB checked out, a few commits):

    python3 bench/gen.py --files 4000 --text-kib 64 --binaries 3100 --commits 3 | git fast-import

Blobs are written as they are generated (the whole tree is never held in memory); the defaults of
--text-kib and --binary-kib give the same stream as before these options existed.
"""
import argparse
import random
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--edits", type=int, default=5, help="files changed per commit")
    ap.add_argument("--edit-kib", type=int, default=4, help="size of an edited file")
    ap.add_argument("--binaries", type=int, default=10, help="binary blobs (--binary-kib each)")
    ap.add_argument("--text-kib", type=int, default=1, help="size of a text file in the first commit")
    ap.add_argument("--binary-kib", type=int, default=256, help="size of a binary blob (incompressible)")
    ap.add_argument("--extra", type=int, default=10, help="commits on branch main-plus10")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    out = sys.stdout.buffer
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(4000)]

    def text(kib: int) -> bytes:
        parts, size = [], 0
        while size < kib * 1024:
            line = b" ".join(rnd.choice(words) for _ in range(rnd.randint(4, 14))) + b"\n"
            parts.append(line)
            size += len(line)
        return b"".join(parts)

    def path(i: int) -> str:
        return f"src/m{i % 37:02d}/p{(i // 37) % 23:02d}/file{i:05d}.txt"

    mark = 0
    t = 1_600_000_000

    def commit(branch: str, msg: str, changes, parent: int | None) -> int:
        nonlocal mark, t
        blobs = []
        for p, data in changes:
            mark += 1
            out.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
            blobs.append((p, mark))
        mark += 1
        t += 60
        m = msg.encode()
        out.write(b"commit refs/heads/%s\nmark :%d\n" % (branch.encode(), mark))
        out.write(b"author Bench <bench@example.com> %d +0000\ncommitter Bench <bench@example.com> %d +0000\n" % (t, t))
        out.write(b"data %d\n%s\n" % (len(m), m))
        if parent is not None:
            out.write(b"from :%d\n" % parent)
        for p, bm in blobs:
            out.write(b"M 100644 :%d %s\n" % (bm, p.encode()))
        out.write(b"\n")
        return mark

    # The first commit holds the whole tree. A generator, in the same order as the list it replaces
    # (all text, then all binaries), so the PRNG stream and the output are unchanged.
    def initial():
        for i in range(a.files):
            yield path(i), text(a.text_kib)
        for i in range(a.binaries):
            yield f"assets/blob{i:03d}.bin", rnd.randbytes(a.binary_kib * 1024)

    head = commit("main", "initial import", initial(), None)
    for c in range(1, a.commits):
        changes = [(path(rnd.randrange(a.files)), text(a.edit_kib)) for _ in range(a.edits)]
        head = commit("main", f"change {c}", changes, head)
    extra = head
    for c in range(a.extra):
        changes = [(path(rnd.randrange(a.files)), text(a.edit_kib)) for _ in range(a.edits)]
        extra = commit("main-plus10", f"upstream change {c}", changes, extra)
    out.write(b"reset refs/tags/v1.0\nfrom :%d\n\n" % head)


if __name__ == "__main__":
    main()
