#!/usr/bin/env bash
# Installs a Python server the tests start (NAME: giftless, the Git LFS server of
# tests/support/lfs.rs; haupt, the Polyaxon API of tests/support/polyaxon.rs) and its pinned
# dependencies (.ci/NAME-requirements.txt) from PyPI into a venv, and prints the venv's path.
# Idempotent and quick when done: a stamp records the requirements it was built from; a lock
# lets test processes that start at once build it once.
# Usage: py-venv.sh NAME [DIR]; DIR defaults to $GITINIT_<NAME>_VENV, else
# ~/.cache/gitinit-test/NAME-venv (the same default as the harness).
set -euo pipefail
name="$1"
req="$(cd "$(dirname "$0")" && pwd)/$name-requirements.txt"
var="GITINIT_$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')_VENV"
venv="${2:-${!var:-$HOME/.cache/gitinit-test/$name-venv}}"
stamp="$(sha256sum "$req" | cut -c1-16)"
done_already() { [ "$(cat "$venv/.gitinit-stamp" 2>/dev/null)" = "$stamp" ]; }
if ! done_already; then
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if ! done_already; then
    python=python3
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; fi # Debian's: python3-venv
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
    echo "$stamp" > "$venv/.gitinit-stamp"
  fi
fi
echo "$venv"
