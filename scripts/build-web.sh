#!/usr/bin/env bash
# Builds the dashboard (web/, TypeScript bundled by esbuild) into web/dist,
# which the hearth binary embeds. Installs Node and npm from Debian when
# missing, and web/node_modules (`npm ci`, pinned by web/package-lock.json)
# when the lock file changed. Called by the server crate's build script, so
# every `cargo build` has a current dashboard; Node is needed only to build.
set -euo pipefail
repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
web="$repo_root/web"

log() { echo "build-web: $*" >&2; }
fail() { echo "build-web: error: $*" >&2; exit 1; }
# shellcheck source=lib/apt.sh
source "$repo_root/scripts/lib/apt.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi
stamp="$web/node_modules/.hearth-lock.sha256"
if [[ ! -f $stamp ]] || [[ "$(cat -- "$stamp")" != "$(sha256sum <"$web/package-lock.json" | cut -d' ' -f1)" ]]; then
    log "npm ci in web/"
    (cd -- "$web" && npm ci --no-audit --no-fund --loglevel=error >&2)
    sha256sum <"$web/package-lock.json" | cut -d' ' -f1 >"$stamp"
fi
cd -- "$web"
node build.mjs >&2
