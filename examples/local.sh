#!/usr/bin/env bash
# Debugging on a laptop: the same run as the init container, with debug logs and the JSON result.
# Needs gitinit on PATH (`cargo install --path . --locked`), or GITINIT=path/to/gitinit:
#   GITINIT=target/debug/gitinit URL=https://github.com/org/repo ./examples/local.sh
#   URL=https://github.com/org/repo REVISION=main ./examples/local.sh
#   POLYAXON_GIT_CREDENTIALS=user:token URL=https://bitbucket.org/org/private ./examples/local.sh
set -euo pipefail
: "${URL:?set URL to the repository}"
DEST=${DEST:-$(mktemp -d)/code}
GITINIT=${GITINIT:-gitinit}
# First prove URL, credentials and revision without writing anything...
"$GITINIT" check --url "$URL" ${REVISION:+--revision "$REVISION"}
# ...then clone, with debug logs; the JSON result is the last line on stderr.
"$GITINIT" clone -v --url "$URL" ${REVISION:+--revision "$REVISION"} --dest "$DEST" --flags "${FLAGS:---depth 1}"
echo "checked out into $DEST"
