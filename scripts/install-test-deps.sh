#!/usr/bin/env bash
# Installs everything the end-to-end tests (scripts/e2e.sh) need, from the package registries only:
#
#   /usr/bin/chromium              Debian's chromium (the browser test drives it with playwright-core)
#   /usr/bin/firefox-esr           Debian's Firefox ESR (the Firefox test drives it over WebDriver BiDi
#                                  with puppeteer-core)
#   .test-deps/venv                Python venv with tests/e2e/python/requirements.txt (mixpanel, pytest, ...)
#   tests/e2e/node/node_modules    `npm ci` of tests/e2e/node/package-lock.json
#                                  (mixpanel, mixpanel-browser, playwright-core, puppeteer-core, axe-core)
#   /usr/bin/clickhouse-server     Debian's ClickHouse 18.16 (the ClickHouse backend's tests start
#                                  their own server on free loopback ports; the package's own
#                                  service is not used)
#   /usr/lib/postgresql/*/bin      Debian's PostgreSQL 15 (the metadata backend's tests create and start
#                                  their own throwaway cluster on a free loopback port; run as root,
#                                  it runs as the `postgres` user the package creates)
#   geo/                           scripts/install-geo.sh, when that script exists
#
# Idempotent and quick when everything is in place: each step is skipped when its input
# (requirements.txt, package-lock.json) has not changed since it last succeeded.
# No tool may download a browser of its own: playwright-core only uses /usr/bin/chromium,
# puppeteer-core only /usr/bin/firefox-esr.
set -euo pipefail

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export PUPPETEER_SKIP_DOWNLOAD=1
export DEBIAN_FRONTEND=noninteractive

repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
deps_dir="$repo_root/.test-deps"
venv_dir="$deps_dir/venv"
requirements="$repo_root/tests/e2e/python/requirements.txt"
node_dir="$repo_root/tests/e2e/node"

log() { echo "install-test-deps: $*"; }
fail() { echo "install-test-deps: error: $*" >&2; exit 1; }

# as_root, apt_install: installs the missing Debian packages.
# shellcheck source=lib/apt.sh
source "$repo_root/scripts/lib/apt.sh"

# stamp_ok FILE INPUT: FILE holds the sha256 of INPUT as of the last successful install.
stamp_ok() { [[ -f $1 ]] && [[ "$(cat -- "$1")" == "$(sha256sum <"$2" | cut -d' ' -f1)" ]]; }
stamp_write() { sha256sum <"$2" | cut -d' ' -f1 >"$1"; }

start=$SECONDS

# 1. Chromium (Debian's; fonts come with it as dependencies).
if [[ -x /usr/bin/chromium ]]; then
    log "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
else
    apt_install chromium
    [[ -x /usr/bin/chromium ]] || fail "/usr/bin/chromium missing after apt-get install chromium"
    log "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
fi

# 1b. Firefox ESR (Debian's).
if [[ -x /usr/bin/firefox-esr ]]; then
    log "firefox-esr present: $(/usr/bin/firefox-esr --version 2>/dev/null || echo '?')"
else
    apt_install firefox-esr
    [[ -x /usr/bin/firefox-esr ]] || fail "/usr/bin/firefox-esr missing after apt-get install firefox-esr"
    log "installed $(/usr/bin/firefox-esr --version 2>/dev/null || echo firefox-esr)"
fi

# 1c. ClickHouse (Debian's 18.16): only the binary; each test starts its own server.
if command -v clickhouse-server >/dev/null; then
    log "clickhouse-server present: $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || echo '?')"
else
    apt_install clickhouse-server
    command -v clickhouse-server >/dev/null || fail "clickhouse-server missing after apt-get install clickhouse-server"
    log "installed clickhouse-server"
fi

# 1d. PostgreSQL (Debian's): only the binaries; each test makes its own cluster.
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "postgresql present: $(ls /usr/lib/postgresql | sort -n | tail -1)"
else
    apt_install postgresql
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || fail "initdb missing after apt-get install postgresql"
    log "installed postgresql $(ls /usr/lib/postgresql | sort -n | tail -1)"
fi

# 1e. OpenSSL's command (the TLS tests make throwaway certificates with it).
if command -v openssl >/dev/null; then
    log "openssl present: $(openssl version 2>/dev/null || echo '?')"
else
    apt_install openssl
    command -v openssl >/dev/null || fail "openssl missing after apt-get install openssl"
    log "installed $(openssl version)"
fi

# 2. Python venv.
python=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
        python="$candidate"
        break
    fi
done
if [[ -z $python ]]; then
    apt_install python3 python3-venv
    python=/usr/bin/python3
fi
venv_stamp="$venv_dir/.requirements.sha256"
if [[ -x $venv_dir/bin/python ]] && "$venv_dir/bin/python" -c 'import sys' 2>/dev/null \
    && stamp_ok "$venv_stamp" "$requirements"; then
    log "python venv up to date ($venv_dir)"
else
    if ! [[ -x $venv_dir/bin/python ]] || ! "$venv_dir/bin/python" -c 'import sys' 2>/dev/null; then
        rm -rf -- "$venv_dir"
        mkdir -p -- "$deps_dir"
        log "creating venv $venv_dir with $("$python" --version)"
        "$python" -m venv "$venv_dir"
    fi
    log "pip install -r tests/e2e/python/requirements.txt"
    "$venv_dir/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$requirements"
    stamp_write "$venv_stamp" "$requirements"
fi

# 3. Node packages, exactly as locked.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi
node_stamp="$node_dir/node_modules/.hearth-lock.sha256"
if [[ -d $node_dir/node_modules ]] && stamp_ok "$node_stamp" "$node_dir/package-lock.json"; then
    log "node_modules up to date ($node_dir/node_modules)"
else
    log "npm ci in tests/e2e/node"
    (cd -- "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    stamp_write "$node_stamp" "$node_dir/package-lock.json"
fi

# 4. Geo databases for the enrichment assertions.
if [[ -f $repo_root/scripts/install-geo.sh ]]; then
    bash "$repo_root/scripts/install-geo.sh"
fi

log "done in $((SECONDS - start)) s"
