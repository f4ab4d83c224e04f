#!/usr/bin/env bash
# Vendor the admin's map-editing JavaScript into static/vendor/ from the npm registry:
# Leaflet-Geoman (drawing and editing polygons, circles and markers on a Leaflet map), pinned,
# checked against its registry integrity (sha512) before anything is copied, built dist files and
# licence only. Leaflet itself (1.9.4) is vendored by scripts/vendor_pages.sh for the monitoring
# pages and shared. The files are committed: setup, tests and the admin pages need no network and
# no CDN (closed networks). Run this only to upgrade: change a line below, run it, look at the
# diff, commit.
#
#   scripts/vendor_js.sh            fetch unless static/vendor/.stamp says these versions are there
#   scripts/vendor_js.sh --force    fetch again anyway
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# name version integrity target-dir files...(relative to the package root)
PACKAGES=(
    "@geoman-io/leaflet-geoman-free|2.20.2|sha512-KQpSe0VKyuVCudq/08rMjJW1vvIwFldTwBny2wZ7ABcyyUAP7/eoFo967hCu9yRqAAHb4QOxC6gY5dGqttY68g==|leaflet-geoman|LICENSE dist/leaflet-geoman.min.js dist/leaflet-geoman.css"
)
VENDOR=static/vendor
STAMP="$VENDOR/.stamp"
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        *) echo "vendor_js: unknown option $arg" >&2; exit 2 ;;
    esac
done

wanted="$(printf '%s\n' "${PACKAGES[@]}" | cut -d'|' -f1-3)"
if (( ! FORCE )) && [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$wanted" ]]; then
    echo "==> vendored JS is up to date ($VENDOR)"
    exit 0
fi
command -v npm >/dev/null || { echo "vendor_js: npm is needed (apt-get install npm)" >&2; exit 1; }
[[ -f "$VENDOR/leaflet/leaflet.js" ]] || echo "vendor_js: note: Leaflet comes from scripts/vendor_pages.sh" >&2

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for line in "${PACKAGES[@]}"; do
    IFS='|' read -r name version integrity target files <<<"$line"
    echo "==> $name@$version"
    tarball="$(cd "$tmp" && npm pack --silent "$name@$version" 2>/dev/null | tail -n 1)"
    actual="sha512-$(openssl dgst -sha512 -binary "$tmp/$tarball" | base64 -w0)"
    if [[ "$actual" != "$integrity" ]]; then
        echo "vendor_js: $name@$version does not match its pinned integrity" >&2
        echo "  expected $integrity" >&2
        echo "  got      $actual" >&2
        exit 1
    fi
    mkdir -p "$tmp/$target"
    tar -xzf "$tmp/$tarball" -C "$tmp/$target"
    rm -rf "${VENDOR:?}/$target"
    for file in $files; do
        mkdir -p "$VENDOR/$target/$(dirname "${file#dist/}")"
        cp "$tmp/$target/package/$file" "$VENDOR/$target/${file#dist/}"
    done
    printf '%s %s\n' "$name" "$version" >"$VENDOR/$target/VERSION"
done
printf '%s\n' "$wanted" >"$STAMP"
echo "==> vendored into $VENDOR: $(du -sh "$VENDOR" | cut -f1)"
