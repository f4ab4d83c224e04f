#!/usr/bin/env bash
# Vendor the JavaScript the server-rendered pages use into static/vendor/ from the npm registry
# (no CDN at run time: users run the platform on closed networks). The built files are committed;
# run this only to upgrade (change the versions below, run, commit the result).
#   leaflet 1.9.4 (BSD-2-Clause), leaflet.markercluster 1.5.3 (MIT), echarts 6.1.0 (Apache-2.0)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LEAFLET=1.9.4
CLUSTER=1.5.3
ECHARTS=6.1.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
( cd "$work" && npm pack --silent "leaflet@$LEAFLET" "leaflet.markercluster@$CLUSTER" "echarts@$ECHARTS" >/dev/null )
for tgz in "$work"/*.tgz; do mkdir -p "$work/x" && tar -xzf "$tgz" -C "$work/x" && mv "$work/x/package" "$work/$(basename "$tgz" .tgz)" && rm -rf "$work/x"; done
dest=static/vendor
rm -rf "$dest/leaflet" "$dest/markercluster" "$dest/echarts"
mkdir -p "$dest/leaflet/images" "$dest/markercluster" "$dest/echarts"
cp "$work/leaflet-$LEAFLET/dist/leaflet.js" "$work/leaflet-$LEAFLET/dist/leaflet.css" "$dest/leaflet/"
cp "$work/leaflet-$LEAFLET/dist/images/"*.png "$dest/leaflet/images/"
cp "$work/leaflet-$LEAFLET/LICENSE" "$dest/leaflet/LICENSE"
cp "$work/leaflet.markercluster-$CLUSTER/dist/leaflet.markercluster.js" \
   "$work/leaflet.markercluster-$CLUSTER/dist/MarkerCluster.css" \
   "$work/leaflet.markercluster-$CLUSTER/dist/MarkerCluster.Default.css" "$dest/markercluster/"
cp "$work/leaflet.markercluster-$CLUSTER/MIT-LICENCE.txt" "$dest/markercluster/LICENSE" 2>/dev/null \
   || cp "$work/leaflet.markercluster-$CLUSTER/LICENSE"* "$dest/markercluster/" 2>/dev/null || true
cp "$work/echarts-$ECHARTS/dist/echarts.min.js" "$work/echarts-$ECHARTS/LICENSE" "$dest/echarts/"
printf 'leaflet %s\nleaflet.markercluster %s\necharts %s\n' "$LEAFLET" "$CLUSTER" "$ECHARTS" > "$dest/VERSIONS-pages.txt"
echo "vendored into $dest: $(cat "$dest/VERSIONS-pages.txt" | tr '\n' ' ')"
