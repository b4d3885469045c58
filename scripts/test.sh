#!/usr/bin/env bash
# The one test command: installs what the tests need (Debian packages, the
# Python and npm test clients in project-local folders, the geo data), then
# runs every test: the Rust suites (cargo nextest) and the end-to-end suites
# with the official Mixpanel SDKs against the real binary.
set -euo pipefail
repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$repo_root"

bash scripts/install-test-deps.sh
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

echo "== build"
cargo build --locked --bin hearth --tests

echo "== dashboard type check (tsc)"
(cd web && node_modules/.bin/tsc --noEmit -p .)

echo "== rust tests (cargo nextest)"
status=0
cargo nextest run --locked --workspace --no-fail-fast || status=1

echo "== end-to-end tests"
bash scripts/e2e.sh || status=1
exit "$status"
