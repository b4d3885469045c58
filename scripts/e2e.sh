#!/usr/bin/env bash
# End-to-end tests with the real official Mixpanel SDKs against a Hearth binary:
#   pytest -q tests/e2e/python        Python SDK, SIGKILL crash safety, IP privacy
#   node --test tests/e2e/node/       Node SDK, mixpanel-browser in Chromium (playwright-core)
# Needs scripts/install-test-deps.sh first, and the binary (target/debug/hearth, or HEARTH_BIN).
# Both suites always run; the exit status is non-zero when either fails.
set -euo pipefail

repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$repo_root"

export HEARTH_BIN="${HEARTH_BIN:-$repo_root/target/debug/hearth}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
venv="$repo_root/.test-deps/venv"

fail() { echo "e2e: error: $*" >&2; exit 2; }
[[ -x $HEARTH_BIN ]] || fail "no Hearth binary at $HEARTH_BIN (cargo build, or set HEARTH_BIN)"
[[ -x $venv/bin/python ]] || fail "no test venv: run scripts/install-test-deps.sh"
[[ -d tests/e2e/node/node_modules/playwright-core ]] || fail "no node_modules: run scripts/install-test-deps.sh"

status=0

echo "== e2e: Python (pytest -q tests/e2e/python)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/e2e/python "$@" || status=1

echo "== e2e: Node (node --test tests/e2e/node/)"
# Explicit file list: the same on every Node version (directory arguments changed meaning in 21).
node_tests=(tests/e2e/node/*.test.mjs)
node --test "${node_tests[@]}" || status=1

if [[ $status -ne 0 ]]; then
    echo "== e2e: FAILED"
else
    echo "== e2e: all passed"
fi
exit "$status"
