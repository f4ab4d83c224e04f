# Helpers sourced by scripts/*.sh (bash, set -euo pipefail already on).

# apt_ensure PKG...: install the Debian packages that are not installed yet; nothing else.
# `apt-get update` runs only when something is missing (it is the slow part).
apt_ensure() {
    local missing=() pkg
    for pkg in "$@"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if (( ${#missing[@]} )); then
        printf '==> apt: installing %s\n' "${missing[*]}"
        local sudo=()
        if (( EUID != 0 )); then sudo=(sudo); fi
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}
