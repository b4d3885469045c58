#!/usr/bin/env bash
# Builds Hearth, installs the country geolocation data (scripts/install-geo.sh)
# and runs `hearth serve` on the embedded default: data in ./hearth-data,
# listening on 127.0.0.1:8080. Extra arguments go to `hearth serve`.
set -euo pipefail
repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$repo_root"
bash scripts/install-geo.sh
cargo build --locked --release --bin hearth
exec target/release/hearth serve "$@"
