#!/usr/bin/env bash
# A CI smoke test as a pipeline would run it: `gitinit check` resolves the revision, a shallow
# `gitinit clone` puts it in place, and the checkout must be at exactly the commit check printed.
#   GITINIT=./gitinit URL=https://github.com/BurntSushi/ripgrep REVISION=master ./smoke.sh
set -euo pipefail
GITINIT=${GITINIT:-gitinit}
URL=${URL:-https://github.com/BurntSushi/ripgrep}
REVISION=${REVISION:-master}
DEST=${DEST:-$(mktemp -d)/repo}

expected=$("$GITINIT" check --url "$URL" --revision "$REVISION" | cut -f1)
echo "check: $REVISION is $expected"
"$GITINIT" clone --url "$URL" --revision "$REVISION" --dest "$DEST" --flags "--depth 1" --report "$DEST.report.json"
actual=$(grep -o '"commit":"[0-9a-f]*"' "$DEST.report.json" | cut -d'"' -f4)
if [ "$actual" != "$expected" ]; then
  echo "smoke test FAILED: cloned $actual, expected $expected" >&2
  exit 1
fi
if [ -n "$(ls -A "$DEST")" ] && [ -d "$DEST/.git" ]; then
  echo "smoke test passed: $DEST is at $actual"
else
  echo "smoke test FAILED: $DEST holds no checkout" >&2
  exit 1
fi
