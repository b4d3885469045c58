# Shared by the project's scripts: Debian packages installed on demand.
# The caller defines log() and fail().

# as_root COMMAND...: runs COMMAND as root, through sudo when needed; fails (status 1, with a
# message) when neither is possible, so that a caller may fall back.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "need root (or sudo) for: $*" >&2
        return 1
    fi
}

# apt_install PACKAGE...: installs the missing Debian packages; `apt-get update` first only when
# the package lists are missing, and once more if the install fails (stale lists).
apt_updated=0
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || fail "apt-get not found; install ${missing[*]} by hand"
    if [[ $apt_updated -eq 0 ]] && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        log "apt-get update (no package lists yet)"
        as_root apt-get update -q
        apt_updated=1
    fi
    log "apt-get install ${missing[*]}"
    if ! as_root apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        [[ $apt_updated -eq 0 ]] || fail "apt-get install ${missing[*]} failed"
        log "apt-get install failed; apt-get update and one more try"
        as_root apt-get update -q
        apt_updated=1
        as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}
