#!/usr/bin/env bash
# Installs haupt (the Polyaxon API server the tests start, tests/support/polyaxon.rs), pinned,
# from PyPI into a venv, and prints the venv's path. `haupt` alone lacks uvicorn and fsspec: the
# `sandbox` extra brings them. Idempotent and quick when done: a stamp records the pin it was
# built from; a lock lets test processes that start at once build it once.
# Usage: haupt-venv.sh [DIR]; DIR defaults to $GITINIT_HAUPT_VENV, else
# ~/.cache/gitinit-test/haupt-venv (the same default as the harness).
set -euo pipefail
pin='haupt[sandbox]==2.18.0'
venv="${1:-${GITINIT_HAUPT_VENV:-$HOME/.cache/gitinit-test/haupt-venv}}"
stamp="$(printf '%s' "$pin" | sha256sum | cut -c1-16)"
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
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$pin" >&2
    echo "$stamp" > "$venv/.gitinit-stamp"
  fi
fi
echo "$venv"
