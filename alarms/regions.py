"""China's provincial-level divisions, answered offline in memory: which province a position is
in, how far it is from a given province, and which province an ID number comes from.

Data: `alarms/data/provinces.geojson`, the 31 mainland divisions plus Taiwan, Hong Kong and Macao
with their GB/T 2260 two-digit codes, derived from Natural Earth 1:10m admin-1 (public domain)
by `scripts/build_provinces.py`; source, version, simplification and caveats are in
`alarms/data/PROVENANCE.md`. The simplified borders are within `simplify_error_m` (244 m) of
Natural Earth's; Natural Earth itself is a 1:10,000,000 map and differs from another public
source (DCW, 1:1M) by ~1 km typically and several km in places. Callers that must not flap at a
border (the "leaving the home province" rule) only act once `distance_to_province_m()` exceeds
their margin.

Lookups: the index is built once per process, on first use (`get_index()`, thread-safe). A
uniform grid of 1/16 degree cells (~7 km) over China says for each cell "inside province k",
"outside every province" or "mixed"; only a position in a mixed cell (4.6 % of random positions
in China; none within 30 km of Xi'an) is tested exactly, with shapely 2's point-in-polygon on
the prepared polygons of the cell's candidate provinces (a point on a shared border goes to the
lower code). The grid is built from the polygons with an STRtree, coarse blocks first and only
mixed blocks split further, so it costs a fraction of a second at load and nothing in the data
file.

Coordinates are WGS-84 degrees, (lat, lon) in every signature; shapely works in (x=lon, y=lat).
"""

from __future__ import annotations

import json
import math
import re
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from django.utils.translation import gettext as _

from carloan.errors import ApplicationError
from carloan.geo import EARTH_RADIUS_M, haversine_m

M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180.0
DATA_FILE = Path(__file__).resolve().parent / "data" / "provinces.geojson"
CELL_DEG = 1 / 16  # grid cell (a power of two: block edges are exact in binary)
_TOP_BLOCK = 32  # cells per side of the coarsest blocks (2 degrees)


def _check_geos_binding() -> None:
    """Refuse to run on a shapely whose bundled GEOS got bound to another GEOS.

    SQLite loads SpatiaLite with dlopen(RTLD_GLOBAL), which exports Debian's GEOS (3.11) C++
    symbols to the whole process. A shapely imported *after* that binds its bundled GEOS C API
    to those symbols: versions still read right, but WKT output fails and prepared-geometry
    predicates crash the interpreter (segfault). Importing shapely before the first SpatiaLite
    connection (in settings) avoids it; here the cheap WKT probe turns a crash into an error."""
    try:
        ok = shapely.to_wkt(shapely.Point(0.5, 0.0)) == "POINT (0.5 0)"
    except shapely.errors.GEOSException:
        ok = False
    if not ok:
        raise RuntimeError(
            "shapely was imported after SpatiaLite loaded another GEOS into the process; its "
            "geometry operations would crash. Import shapely before the first database "
            "connection (e.g. at the top of the settings module)."
        )


_check_geos_binding()

try:  # the ufunc behind shapely.intersects_xy: ~1.2 us instead of ~2.2 us for one point
    from shapely import lib as _lib

    _lib.intersects_xy(shapely.box(0, 0, 1, 1), 0.5, 0.5)
    _intersects_xy = _lib.intersects_xy
except (ImportError, AttributeError, TypeError):  # pragma: no cover - another shapely build
    _intersects_xy = shapely.intersects_xy


@dataclass(frozen=True, slots=True)
class Province:
    """A provincial-level division. `code` is its GB/T 2260 two-digit code ("61")."""

    code: str
    name_zh: str
    name_en: str

    @property
    def name(self) -> str:
        """The name in the active language (Chinese for zh-*, English otherwise)."""
        try:
            from django.utils.translation import get_language

            language = get_language() or ""
        except Exception:  # Django not configured (a script): Chinese
            language = "zh"
        return self.name_zh if language.lower().startswith("zh") else self.name_en

    def __str__(self) -> str:
        return self.name


# GB/T 2260-2007 provincial codes and names (also the first two digits of a GB 11643 ID number).
PROVINCES: dict[str, Province] = {
    p.code: p
    for p in (
        Province("11", "北京市", "Beijing"),
        Province("12", "天津市", "Tianjin"),
        Province("13", "河北省", "Hebei"),
        Province("14", "山西省", "Shanxi"),
        Province("15", "内蒙古自治区", "Inner Mongolia"),
        Province("21", "辽宁省", "Liaoning"),
        Province("22", "吉林省", "Jilin"),
        Province("23", "黑龙江省", "Heilongjiang"),
        Province("31", "上海市", "Shanghai"),
        Province("32", "江苏省", "Jiangsu"),
        Province("33", "浙江省", "Zhejiang"),
        Province("34", "安徽省", "Anhui"),
        Province("35", "福建省", "Fujian"),
        Province("36", "江西省", "Jiangxi"),
        Province("37", "山东省", "Shandong"),
        Province("41", "河南省", "Henan"),
        Province("42", "湖北省", "Hubei"),
        Province("43", "湖南省", "Hunan"),
        Province("44", "广东省", "Guangdong"),
        Province("45", "广西壮族自治区", "Guangxi"),
        Province("46", "海南省", "Hainan"),
        Province("50", "重庆市", "Chongqing"),
        Province("51", "四川省", "Sichuan"),
        Province("52", "贵州省", "Guizhou"),
        Province("53", "云南省", "Yunnan"),
        Province("54", "西藏自治区", "Xizang (Tibet)"),
        Province("61", "陕西省", "Shaanxi"),
        Province("62", "甘肃省", "Gansu"),
        Province("63", "青海省", "Qinghai"),
        Province("64", "宁夏回族自治区", "Ningxia"),
        Province("65", "新疆维吾尔自治区", "Xinjiang"),
        Province("71", "台湾省", "Taiwan"),
        Province("81", "香港特别行政区", "Hong Kong"),
        Province("82", "澳门特别行政区", "Macao"),
    )
}
_ID_PREFIX = re.compile(r"\s*(\d\d)", re.ASCII)


class UnknownProvince(ApplicationError, ValueError):
    """Not a GB/T 2260 provincial code (or an ID number that does not start with one)."""

    default_code = "unknown_province"


def province(code: str) -> Province:
    """The province with this GB/T 2260 code; `UnknownProvince` for anything else."""
    try:
        return PROVINCES[code]
    except (KeyError, TypeError):
        raise UnknownProvince(
            _("“%(code)s” is not a province code (GB/T 2260, e.g. 61).") % {"code": code}
        ) from None


def province_for_id_number_prefix(value: str) -> str:
    """The province code of a resident ID number (GB 11643: its first two digits are the GB/T
    2260 code of the issuing province): "610113..." -> "61". Only the prefix is read, so a
    partial number works; `UnknownProvince` when it does not start with a provincial code."""
    match = _ID_PREFIX.match(value if isinstance(value, str) else "")
    if not match or match.group(1) not in PROVINCES:
        raise UnknownProvince(
            _("“%(value)s” does not start with a province code (GB/T 2260).") % {"value": value}
        )
    return match.group(1)


def _check_position(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):  # also refuses NaN
        raise ValueError(f"not a WGS-84 position: lat={lat!r}, lon={lon!r}")


class ProvinceIndex:
    """Province polygons with a lookup grid. Build it with `ProvinceIndex.from_file()` (or from
    (code, polygon) pairs in tests); share the process-wide one through `get_index()`."""

    def __init__(
        self,
        polygons: Iterable[tuple[str, shapely.Geometry]],
        *,
        simplify_error_m: float = 0.0,
        cell_deg: float = CELL_DEG,
    ) -> None:
        pairs = sorted(polygons, key=lambda pair: pair[0])
        if not pairs:
            raise ValueError("no province polygons")
        for code, _geom in pairs:
            province(code)  # unknown codes fail here
        self.provinces: tuple[Province, ...] = tuple(PROVINCES[code] for code, _ in pairs)
        self._position = {p.code: k for k, p in enumerate(self.provinces)}
        if len(self._position) != len(pairs):
            raise ValueError("a province code appears twice")
        self.geometries = np.array([geom for _, geom in pairs], dtype=object)
        shapely.prepare(self.geometries)
        self._boundaries = shapely.boundary(self.geometries)
        self.simplify_error_m = float(simplify_error_m)
        self.tree = shapely.STRtree(self.geometries)
        self._build_grid(cell_deg)

    @classmethod
    def from_file(cls, path: Path = DATA_FILE) -> ProvinceIndex:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"province data {path} is missing: rebuild it with scripts/build_provinces.py"
            ) from None
        pairs = [
            (f["properties"]["code"], shapely.from_geojson(json.dumps(f["geometry"])))
            for f in data["features"]
        ]
        index = cls(pairs, simplify_error_m=data.get("max_simplify_error_m", 0.0))
        if set(index._position) != set(PROVINCES):
            missing = sorted(set(PROVINCES) - set(index._position))
            raise ValueError(f"{path} lacks provinces {missing}")
        return index

    # -- the grid ---------------------------------------------------------------------------
    def _build_grid(self, cell: float) -> None:
        minx, miny, maxx, maxy = shapely.total_bounds(self.geometries)
        block = cell * _TOP_BLOCK
        self.x0 = math.floor(minx / block) * block
        self.y0 = math.floor(miny / block) * block
        bx = math.ceil((maxx - self.x0) / block)
        by = math.ceil((maxy - self.y0) / block)
        self.nx, self.ny = bx * _TOP_BLOCK, by * _TOP_BLOCK
        self.x1, self.y1 = self.x0 + self.nx * cell, self.y0 + self.ny * cell
        self.inv = 1.0 / cell
        grid = np.full((self.ny, self.nx), -1, dtype=np.int32)
        mixed: list[tuple[int, ...]] = []
        # Blocks as (ix, iy) of their lower-left cell and their size in cells; each level keeps
        # the blocks that cross a border and splits them in four, down to single cells.
        iy, ix = np.mgrid[0:by, 0:bx] * _TOP_BLOCK
        ix, iy, size = ix.ravel(), iy.ravel(), _TOP_BLOCK
        while len(ix):
            boxes = shapely.box(
                self.x0 + ix * cell,
                self.y0 + iy * cell,
                self.x0 + (ix + size) * cell,
                self.y0 + (iy + size) * cell,
            )
            hits, inside = self._classify(boxes)
            whole = np.full(len(boxes), -1, dtype=np.int64)
            whole[inside[0]] = inside[1]
            for b in np.flatnonzero(whole >= 0):
                grid[iy[b] : iy[b] + size, ix[b] : ix[b] + size] = whole[b]
            crossing = np.zeros(len(boxes), dtype=bool)
            crossing[hits[0]] = True
            crossing &= whole < 0
            if size == 1:
                candidates: dict[int, list[int]] = {}
                for b, k in zip(hits[0], hits[1], strict=True):
                    if crossing[b]:
                        candidates.setdefault(int(b), []).append(int(k))
                for b, ks in candidates.items():
                    grid[iy[b], ix[b]] = -2 - len(mixed)
                    mixed.append(tuple(sorted(ks)))
                break
            half = size // 2
            ix, iy = ix[crossing], iy[crossing]
            ix = np.concatenate([ix, ix + half, ix, ix + half])
            iy = np.concatenate([iy, iy, iy + half, iy + half])
            size = half
        self._grid_np = grid
        self._grid = array("i", grid.ravel().tobytes())
        self._mixed = mixed
        self._mixed_has = np.zeros((max(len(mixed), 1), len(self.provinces)), dtype=bool)
        for m, ks in enumerate(mixed):
            self._mixed_has[m, list(ks)] = True

    def _classify(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(box, province) pairs where the box meets the province, and where it lies wholly
        inside it. The tree only pairs bounding boxes; the exact tests then run per province
        against its *prepared* polygon (a tree predicate would prepare the small box instead
        and walk the whole province outline for every box: ~20x slower)."""
        pairs = self.tree.query(boxes)
        meets = np.zeros(pairs.shape[1], dtype=bool)
        within = np.zeros(pairs.shape[1], dtype=bool)
        for k in np.unique(pairs[1]):
            sel = np.flatnonzero(pairs[1] == k)
            some = shapely.intersects(self.geometries[k], boxes[pairs[0, sel]])
            meets[sel] = some
            sel = sel[some]
            within[sel] = shapely.contains(self.geometries[k], boxes[pairs[0, sel]])
        return pairs[:, meets], pairs[:, within]

    def grid_stats(self) -> dict[str, float]:
        """How much of the grid needs an exact test (for the bench and the provenance notes)."""
        cells = self._grid_np
        return {
            "cells": int(cells.size),
            "inside": int((cells >= 0).sum()),
            "outside": int((cells == -1).sum()),
            "mixed": int((cells <= -2).sum()),
        }

    # -- lookups ----------------------------------------------------------------------------
    def province_at(self, lat: float, lon: float) -> Province | None:
        """The province containing the position, or None (sea, abroad)."""
        _check_position(lat, lon)
        if not (self.x0 <= lon < self.x1 and self.y0 <= lat < self.y1):
            return None
        v = self._grid[int((lat - self.y0) * self.inv) * self.nx + int((lon - self.x0) * self.inv)]
        if v >= 0:
            return self.provinces[v]
        if v == -1:
            return None
        for k in self._mixed[-2 - v]:
            if _intersects_xy(self.geometries[k], lon, lat):
                return self.provinces[k]
        return None

    def provinces_at(
        self, lats: Sequence[float] | np.ndarray, lons: Sequence[float] | np.ndarray
    ) -> list[Province | None]:
        """`province_at` for many positions at once (numpy inside; same answers)."""
        lat = np.asarray(lats, dtype=float).ravel()
        lon = np.asarray(lons, dtype=float).ravel()
        if lat.shape != lon.shape:
            raise ValueError(f"{lat.size} latitudes but {lon.size} longitudes")
        bad = ~((lat >= -90) & (lat <= 90) & (lon >= -180) & (lon <= 180))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"not a WGS-84 position at index {i}: lat={lat[i]}, lon={lon[i]}")
        found = np.full(lat.size, -1, dtype=np.int64)
        on_grid = (lon >= self.x0) & (lon < self.x1) & (lat >= self.y0) & (lat < self.y1)
        idx = np.flatnonzero(on_grid)
        j = ((lat[idx] - self.y0) * self.inv).astype(np.int64)
        i = ((lon[idx] - self.x0) * self.inv).astype(np.int64)
        value = self._grid_np[j, i]
        found[idx[value >= 0]] = value[value >= 0]
        is_mixed = value <= -2
        todo, mid = idx[is_mixed], -2 - value[is_mixed]
        for k in range(len(self.provinces)):  # ascending code: a shared border goes to the lower
            sel = self._mixed_has[mid, k]
            if not sel.any():
                continue
            hit = shapely.intersects_xy(self.geometries[k], lon[todo[sel]], lat[todo[sel]])
            found[todo[sel][hit]] = k
            keep = np.ones(len(todo), dtype=bool)
            keep[np.flatnonzero(sel)[hit]] = False
            todo, mid = todo[keep], mid[keep]
        return [self.provinces[k] if k >= 0 else None for k in found]

    def geometry(self, code: str) -> shapely.Geometry:
        """The (simplified) polygon of a province, WGS-84, x=lon, y=lat."""
        return self.geometries[self._index_of(code)]

    def _index_of(self, code: str) -> int:
        try:
            return self._position[code]
        except (KeyError, TypeError):
            province(code)  # raises UnknownProvince for a code that does not exist
            raise UnknownProvince(_("No polygon for province %(code)s.") % {"code": code}) from None

    def distance_to_province_m(self, code: str, lat: float, lon: float) -> float:
        """Metres from the position to the province's polygon (0 inside or on its border).

        The nearest border point is found in degrees first, then again in a local frame around
        the position scaled by cos(latitude) (so metres east and north weigh the same); the
        answer is the great-circle distance to the better of the two points. Within a few
        hundred km this is within 1 % of the true distance, and never below it."""
        k = self._index_of(code)
        _check_position(lat, lon)
        if _intersects_xy(self.geometries[k], lon, lat):
            return 0.0
        border = self._boundaries[k]
        here = shapely.Point(lon, lat)
        qx, qy = shapely.get_coordinates(shapely.shortest_line(border, here))[0]
        best = haversine_m(lat, lon, qy, qx)
        # Every point within `best` metres lies in this box; the nearest one in metres is there.
        dlat = math.degrees(best / EARTH_RADIUS_M) * 1.001
        edge = min(abs(lat) + dlat, 89.0)
        dlon = min(dlat / math.cos(math.radians(edge)), 180.0)
        near = shapely.clip_by_rect(border, lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        if not near.is_empty:
            scale = math.cos(math.radians(lat))
            local = shapely.transform(near, lambda xy: (xy - (lon, lat)) * (scale, 1.0))
            px, py = shapely.get_coordinates(shapely.shortest_line(local, shapely.Point(0, 0)))[0]
            best = min(best, haversine_m(lat, lon, lat + py, lon + px / scale))
        return best


_index: ProvinceIndex | None = None
_lock = threading.Lock()


def get_index() -> ProvinceIndex:
    """The process-wide index, built from the data file on first use."""
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = ProvinceIndex.from_file()
    return _index


def province_at(lat: float, lon: float) -> Province | None:
    """The province containing a WGS-84 position, or None (sea, abroad)."""
    return get_index().province_at(lat, lon)


def provinces_at(lats: Sequence[float], lons: Sequence[float]) -> list[Province | None]:
    """`province_at` for many positions (numpy arrays or sequences) at once."""
    return get_index().provinces_at(lats, lons)


def distance_to_province_m(code: str, lat: float, lon: float) -> float:
    """Metres from a WGS-84 position to province `code` (0 inside); see ProvinceIndex."""
    return get_index().distance_to_province_m(code, lat, lon)
