"""The places index: which risk points, annotations and geofences a position is in, answered in
memory (DESIGN.md "Spatial checks on the hot path never query the database per position").

- Risk points (server-wide) and annotations (per customer) are circles in metres. They share one
  shapely 2 `STRtree` over their bounding boxes in degrees; each candidate the tree returns is
  then checked exactly with the haversine distance, so a circle is matched in metres at any
  latitude (a box in degrees is only the coarse filter). A bitmap of 0.01-degree cells touched
  by any box lets the many positions near no circle skip the tree; `prefetch(batch)` answers a
  whole gateway batch with one vectorised query (figures in docs/PERFORMANCE.md).
- Geofences are looked up per vehicle (only the fences bound to it): a bounding-box test first,
  then a prepared polygon (holes respected, the boundary counts as inside) or a haversine circle.
- `within(key, lat, lon, margin_m)` answers "is the position inside this place grown by
  `margin_m`" for the engine's hysteresis (leave only once clearly outside).

Annotations apply to the vehicles of their customer's subtree, so `annotations_at` takes the
vehicle customer's *ancestor path*: the ids of the customer and all its ancestors. An annotation
applies when its customer id is in that path. Ids (not MPTT `lft`/`rght` bounds) because they
never change when the tree grows elsewhere; the index loads the parent of every customer, so
`customer_path(customer_id)` (or passing the plain customer id) costs no query. Private
annotations apply too: who sees the alarms they raise is the alarm list's business.

`load_place_index()` reads each table once (values_list, coordinates as plain floats through
ST_X/ST_Y, no GEOS object per row); `PlaceIndexCache.get()` returns the current index and
rebuilds it only when a table's cheap version (row count + last update) changed, checked at most
every `check_every_s` seconds. Nothing in the query path touches the ORM.

Coordinates are WGS-84 degrees (lat, lon) in every signature; shapely works in (x=lon, y=lat).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _import_shapely():
    """Import shapely so that its bundled GEOS binds to itself. SQLite loads SpatiaLite with
    RTLD_GLOBAL, which puts the system's GEOS (3.11) into the global symbol scope; a shapely
    imported after that would bind part of its own GEOS (3.14) to the system one and crash on
    the first polygon with a hole. RTLD_DEEPBIND makes shapely's libraries prefer their own
    symbols (numpy is imported above, normally). Harmless when shapely came first."""
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    flags = sys.getdlopenflags()
    if deepbind:
        sys.setdlopenflags(flags | deepbind)
    try:
        import shapely
    finally:
        sys.setdlopenflags(flags)
    if shapely.has_m(shapely.points(0.0, 0.0)):  # the symptom of a mixed GEOS
        raise RuntimeError(
            "shapely was first imported after SpatiaLite was loaded and is bound to the "
            "system's GEOS: import alarms.spatial (or shapely) before opening the database."
        )
    return shapely


shapely = _import_shapely()

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG), the same as alarms.rules.base
M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180.0  # ~111,195 m
# Padding of a circle's bounding box: the exact test follows, so a bigger box only costs a few
# more candidates, while a box that is too small would miss a circle.
_BOX_PAD = 1.02
RISK_POINT, ANNOTATION, FENCE = "riskpoint", "annotation", "fence"

try:  # The ufunc behind shapely.points(): the same object, ~3x cheaper for a single point.
    from shapely import lib as _lib

    _HANDLE_NAN = np.intc(0)
    _lib.points(np.zeros((1, 2)), _HANDLE_NAN)

    def _point_array(lon: float, lat: float) -> np.ndarray:
        return _lib.points(np.array(((lon, lat),)), _HANDLE_NAN)

except (ImportError, AttributeError, TypeError):  # pragma: no cover - another shapely build

    def _point_array(lon: float, lat: float) -> np.ndarray:
        return shapely.points(np.array(((lon, lat),)))


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_many(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Vectorised haversine (numpy arrays or scalars, broadcast), metres."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.subtract(lon2, lon1)) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def circle_bounds(lat, lon, radius_m):
    """Bounding boxes (min_lon, min_lat, max_lon, max_lat) in degrees of circles given in metres
    (numpy arrays or scalars). A degree of longitude shrinks with cos(latitude): the box uses the
    latitude of its poleward edge, where the circle is widest in degrees."""
    lat, lon, radius_m = np.asarray(lat), np.asarray(lon), np.asarray(radius_m)
    dlat = radius_m / M_PER_DEG_LAT * _BOX_PAD
    edge = np.minimum(np.abs(lat) + dlat, 89.9)
    dlon = np.minimum(dlat / np.cos(np.radians(edge)), 180.0)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


@dataclass(frozen=True, slots=True)
class Place:
    """A place a position can be in. `key` is what alarms target: "riskpoint:12", "annotation:5",
    "fence:3". `kind`: the risk point kind, "annotation", or the fence shape. Circles carry their
    centre and radius; polygons their representative point and `bounds` (min_lon, min_lat,
    max_lon, max_lat). `customer_id` is None for risk points (shared by the whole server).
    `options` are a fence's alarm switches (enter, leave, inside, parking, parking_minutes)."""

    key: str
    kind: str
    name: str
    lat: float
    lon: float
    radius_m: float | None
    customer_id: int | None = None
    bounds: tuple[float, float, float, float] | None = None
    shared: bool = True
    owner_id: int | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def id(self) -> int:
        return int(self.key.rsplit(":", 1)[1])


# --- Input rows (what the loader reads; tests build them directly) ----------------------------
# risk point: (id, kind, name, lat, lon, radius_m)
# annotation: (id, name, lat, lon, radius_m, customer_id, shared, created_by_id)
# fence:      (id, name, shape, polygon (shapely Polygon | None), center lat, center lon,
#              radius_m, options dict)
# binding:    (fence_id, vehicle_id); customer: (id, parent_id)
RiskPointRow = tuple[int, str, str, float, float, float]
AnnotationRow = tuple[int, str, float, float, float, int, bool, int | None]
FenceRow = tuple[int, str, str, Any, float | None, float | None, float | None, dict]


class _Occupancy:
    """A bitmap of grid cells touched by any circle's box: most positions are in no risk point
    or annotation at all, and a bit lookup (~0.2 us) tells them apart before the tree query
    (~2.5 us with the point it needs). Cells are square in degrees; the grid covers the boxes'
    extent with at most `max_cells` cells (0.01 degree ~ 1.1 km: China's box is 2.7 MB)."""

    __slots__ = ("x0", "y0", "inv", "nx", "ny", "bits", "flat")

    def __init__(self, minx, miny, maxx, maxy, *, cell: float = 0.01, max_cells=24_000_000):
        self.x0, self.y0 = float(minx.min()), float(miny.min())
        width, height = float(maxx.max()) - self.x0, float(maxy.max()) - self.y0
        cell = max(cell, math.sqrt(max(width * height, 1e-12) / max_cells))
        self.inv = 1.0 / cell
        self.nx = int(width * self.inv) + 1
        self.ny = int(height * self.inv) + 1
        grid = np.zeros((self.ny, self.nx), dtype=np.uint8)
        ix0, ix1 = self._cells(minx, self.x0), self._cells(maxx, self.x0)
        iy0, iy1 = self._cells(miny, self.y0), self._cells(maxy, self.y0)
        small = ((ix1 - ix0) <= 1) & ((iy1 - iy0) <= 1)
        # A box of at most 2 x 2 cells is covered by its corners' cells (most circles).
        for ys, xs in ((iy0, ix0), (iy0, ix1), (iy1, ix0), (iy1, ix1)):
            grid[ys[small], xs[small]] = 1
        for a, b, c, d in zip(
            iy0[~small].tolist(),
            iy1[~small].tolist(),
            ix0[~small].tolist(),
            ix1[~small].tolist(),
            strict=True,
        ):
            grid[a : b + 1, c : d + 1] = 1
        # One bit per cell (little bit order: cell i is bit i & 7 of byte i >> 3).
        self.flat = np.packbits(grid.reshape(-1), bitorder="little")
        self.bits = self.flat.tobytes()

    def _cells(self, values: np.ndarray, origin: float) -> np.ndarray:
        # The same expression as in `occupied()`, so a position inside a box lands on a cell
        # the box marked (float rounding included).
        return ((values - origin) * self.inv).astype(np.int64)

    @property
    def nbytes(self) -> int:
        return len(self.bits)

    def occupied(self, lat: float, lon: float) -> bool:
        ix = int((lon - self.x0) * self.inv)
        iy = int((lat - self.y0) * self.inv)
        if not (0 <= ix < self.nx and 0 <= iy < self.ny):
            return False
        i = iy * self.nx + ix
        return (self.bits[i >> 3] >> (i & 7)) & 1 == 1

    def occupied_many(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        ix = ((lon - self.x0) * self.inv).astype(np.int64)  # truncates like int() above
        iy = ((lat - self.y0) * self.inv).astype(np.int64)
        ok = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        out = np.zeros(len(lat), dtype=bool)
        i = iy[ok] * self.nx + ix[ok]
        out[ok] = (self.flat[i >> 3] >> (i & 7).astype(np.uint8)) & 1 == 1
        return out


class _Fence:
    __slots__ = ("place", "polygon", "minx", "miny", "maxx", "maxy", "_metric", "_scale")

    def __init__(self, place: Place, polygon) -> None:
        self.place = place
        self.polygon = polygon
        if polygon is not None:
            shapely.prepare(polygon)
            self.minx, self.miny, self.maxx, self.maxy = polygon.bounds
        else:
            box = circle_bounds(place.lat, place.lon, place.radius_m)
            self.minx, self.miny, self.maxx, self.maxy = (float(v) for v in box)
        self._metric = None  # the polygon in local metres, made on the first margin test
        self._scale = 1.0

    def contains(self, lat: float, lon: float) -> bool:
        if not (self.minx <= lon <= self.maxx and self.miny <= lat <= self.maxy):
            return False
        if self.polygon is None:
            p = self.place
            return haversine_m(lat, lon, p.lat, p.lon) <= p.radius_m
        # intersects: a position exactly on the edge counts as inside (holes are outside).
        return bool(shapely.intersects_xy(self.polygon, lon, lat))

    def distance_to_edge_m(self, lat: float, lon: float) -> float:
        """Metres from the position to the fence's edge (0 on it)."""
        if self.polygon is None:
            p = self.place
            return abs(haversine_m(lat, lon, p.lat, p.lon) - p.radius_m)
        if self._metric is None:
            # Local equirectangular metres around the fence: x = lon * cos(lat0). Good to well
            # under 1 % for fences of a few hundred km, which is all a margin test needs.
            lat0 = (self.miny + self.maxy) / 2
            self._scale = math.cos(math.radians(lat0)) * M_PER_DEG_LAT
            self._metric = shapely.transform(
                self.polygon.boundary, lambda c: c * (self._scale, M_PER_DEG_LAT)
            )
        here = shapely.Point(lon * self._scale, lat * M_PER_DEG_LAT)
        return float(shapely.distance(self._metric, here))


class PlaceIndex:
    """An immutable snapshot of risk points, annotations, geofences and their vehicle bindings.

    Built from plain tuples (see the row shapes above); `load_place_index()` reads them from the
    database. Query methods never touch the database and are safe to call from several threads.
    """

    def __init__(
        self,
        *,
        risk_points: Iterable[RiskPointRow] = (),
        annotations: Iterable[AnnotationRow] = (),
        fences: Iterable[FenceRow] = (),
        bindings: Iterable[tuple[int, int]] = (),
        customers: Iterable[tuple[int, int | None]] = (),
        version: Any = None,
    ) -> None:
        started = time.perf_counter()
        self.version = version
        # Interned kinds: 100k rows share five strings instead of holding one each.
        self._risk = [(r[0], sys.intern(r[1]), *r[2:]) for r in risk_points]
        self._notes = list(annotations)
        self._n_risk = len(self._risk)
        # Risk point id -> row, by binary search (a dict of 100k keys costs ~10 MB more): only
        # within() and get() need it, never the per-fix lookups.
        risk_ids = np.fromiter((r[0] for r in self._risk), dtype=np.int64, count=self._n_risk)
        self._risk_order = np.argsort(risk_ids, kind="stable")
        self._risk_ids = risk_ids[self._risk_order]
        self._note_slot = {r[0]: self._n_risk + i for i, r in enumerate(self._notes)}
        self._place_cache: dict[int, Place] = {}  # rows already turned into Places
        n = self._n_risk + len(self._notes)
        lat = np.empty(n)
        lon = np.empty(n)
        radius = np.empty(n)
        for i, r in enumerate(self._risk):
            lat[i], lon[i], radius[i] = r[3], r[4], r[5]
        for i, r in enumerate(self._notes, start=self._n_risk):
            lat[i], lon[i], radius[i] = r[2], r[3], r[4]
        self._check_coordinates(lat, lon, radius)
        # Plain lists: indexing a list with a Python int is ~10x cheaper than a numpy scalar.
        self._lat, self._lon, self._radius = lat.tolist(), lon.tolist(), radius.tolist()
        self._arrays = (lat, lon, radius)  # for prefetch()
        self._note_customer = [r[5] for r in self._notes]
        self._tree = self._occupancy = None
        if n:
            boxes = circle_bounds(lat, lon, radius)
            self._tree = shapely.STRtree(shapely.box(*boxes))
            self._occupancy = _Occupancy(*boxes)

        self._fences: dict[int, _Fence] = {}
        for row in fences:
            fence = self._make_fence(row)
            self._fences[fence.place.id] = fence
        by_vehicle: dict[int, list[_Fence]] = {}
        for fence_id, vehicle_id in bindings:
            fence = self._fences.get(fence_id)
            if fence is not None:
                by_vehicle.setdefault(vehicle_id, []).append(fence)
        self._by_vehicle = {v: tuple(fs) for v, fs in by_vehicle.items()}

        self._parent: dict[int, int | None] = dict(customers)
        self._paths: dict[int, frozenset[int]] = {}
        self._memo: tuple[float, float, list[int]] = (math.nan, math.nan, [])
        self._batch: dict[tuple[float, float], list[int]] = {}
        self.build_seconds = time.perf_counter() - started

    # -- building --
    @staticmethod
    def _check_coordinates(lat: np.ndarray, lon: np.ndarray, radius: np.ndarray) -> None:
        bad = ~((np.abs(lat) <= 90) & (np.abs(lon) <= 180) & (radius > 0))
        if bad.any():
            raise ValueError(f"{int(bad.sum())} places have coordinates or a radius out of range")

    @staticmethod
    def _make_fence(row: FenceRow) -> _Fence:
        fence_id, name, shape, polygon, lat, lon, radius_m, options = row
        if polygon is not None:
            point = polygon.representative_point()
            place = Place(
                key=f"{FENCE}:{fence_id}",
                kind=shape,
                name=name,
                lat=point.y,
                lon=point.x,
                radius_m=None,
                bounds=tuple(polygon.bounds),
                options=dict(options or {}),
            )
            return _Fence(place, polygon)
        if lat is None or lon is None or not radius_m:
            raise ValueError(f"fence {fence_id} has neither a polygon nor a centre and radius")
        place = Place(
            key=f"{FENCE}:{fence_id}",
            kind=shape,
            name=name,
            lat=lat,
            lon=lon,
            radius_m=float(radius_m),
            options=dict(options or {}),
        )
        return _Fence(place, None)

    # -- sizes --
    @property
    def counts(self) -> dict[str, int]:
        return {
            "risk_points": self._n_risk,
            "annotations": len(self._notes),
            "fences": len(self._fences),
            "bound_vehicles": len(self._by_vehicle),
        }

    # -- areas: risk points and annotations --
    def _area_place(self, i: int) -> Place:
        place = self._place_cache.get(i)
        if place is None:
            place = self._place_cache[i] = self._make_area_place(i)
        return place

    def _make_area_place(self, i: int) -> Place:
        if i < self._n_risk:
            rid, kind, name, lat, lon, radius = self._risk[i]
            return Place(f"{RISK_POINT}:{rid}", kind, name, lat, lon, radius)
        aid, name, lat, lon, radius, customer_id, shared, owner = self._notes[i - self._n_risk]
        return Place(
            f"{ANNOTATION}:{aid}",
            ANNOTATION,
            name,
            lat,
            lon,
            radius,
            customer_id=customer_id,
            shared=bool(shared),
            owner_id=owner,
        )

    def _hits(self, lat: float, lon: float) -> list[int]:
        """Rows (risk points first, then annotations) whose circle holds the position."""
        memo = self._memo
        if memo[0] == lat and memo[1] == lon:
            # The engine asks for risk points and then annotations of the same fix.
            return memo[2]
        hits = self._batch.get((lat, lon)) if self._batch else None
        if hits is None:
            hits = []
            if self._occupancy is not None and self._occupancy.occupied(lat, lon):
                candidates = self._tree.query(_point_array(lon, lat))[1].tolist()
                rlat, rlon, rad = self._lat, self._lon, self._radius
                hits = [i for i in candidates if haversine_m(lat, lon, rlat[i], rlon[i]) <= rad[i]]
        self._memo = (lat, lon, hits)
        return hits

    def prefetch(self, positions: Sequence[tuple[float, float]]) -> None:
        """Answer the area lookups of a whole batch of (lat, lon) with one vectorised tree query
        and one vectorised distance test; later `risk_points_at` / `annotations_at` calls for
        those positions are dictionary lookups. Replaces the previous batch's answers."""
        if self._tree is None:
            self._batch = {}
            return
        # One entry per distinct position (a batch repeats the positions of parked vehicles).
        found: dict[tuple[float, float], list[int]] = {
            (float(lat), float(lon)): [] for lat, lon in positions
        }
        if not found:
            self._batch = found
            return
        keys = list(found)
        coords = np.array(keys, dtype=float)
        # Only positions on an occupied cell need the tree (most are in no place at all).
        todo = np.flatnonzero(self._occupancy.occupied_many(coords[:, 0], coords[:, 1]))
        if not len(todo):
            self._batch = found
            return
        query_i, rows = self._tree.query(shapely.points(coords[todo][:, ::-1]))
        query_i = todo[query_i]
        lat, lon, radius = self._arrays
        inside = (
            haversine_many(coords[query_i, 0], coords[query_i, 1], lat[rows], lon[rows])
            <= radius[rows]
        )
        for q, row in zip(query_i[inside].tolist(), rows[inside].tolist(), strict=True):
            found[keys[q]].append(row)
        self._batch = found

    def risk_points_at(self, lat: float, lon: float) -> list[Place]:
        n = self._n_risk
        return [self._area_place(i) for i in self._hits(lat, lon) if i < n]

    def annotations_at(
        self, lat: float, lon: float, customer_path: int | Collection[int] | None
    ) -> list[Place]:
        """Annotations holding the position that apply to a vehicle whose customer's ancestor
        path is `customer_path` (a collection of ids), or pass the vehicle's customer id."""
        n = self._n_risk
        hits = [i for i in self._hits(lat, lon) if i >= n]
        if not hits or customer_path is None:
            return []
        path = self.customer_path(customer_path) if isinstance(customer_path, int) else None
        if path is None:
            path = customer_path
        owners = self._note_customer
        return [self._area_place(i) for i in hits if owners[i - n] in path]

    def areas_at(
        self, lat: float, lon: float, customer_path: int | Collection[int] | None
    ) -> list[Place]:
        """Risk points and the applicable annotations at once."""
        return [*self.risk_points_at(lat, lon), *self.annotations_at(lat, lon, customer_path)]

    # -- fences --
    def fences_of(self, vehicle_id: int) -> tuple[Place, ...]:
        return tuple(f.place for f in self._by_vehicle.get(vehicle_id, ()))

    def fences_at(self, vehicle_id: int, lat: float, lon: float) -> list[Place]:
        """Fences bound to the vehicle that hold the position."""
        return [f.place for f in self._by_vehicle.get(vehicle_id, ()) if f.contains(lat, lon)]

    # -- any place by key --
    def get(self, key: str) -> Place | None:
        slot = self._slot_of(key)
        if slot is not None:
            return self._area_place(slot)
        fence = self._fence(key)
        return fence.place if fence is not None else None

    def _slot_of(self, key: str) -> int | None:
        """The areas row of "riskpoint:<id>" / "annotation:<id>"; None for anything else."""
        prefix, _, ident = key.partition(":")
        if not ident.isdigit():
            return None
        if prefix == ANNOTATION:
            return self._note_slot.get(int(ident))
        if prefix != RISK_POINT or not self._n_risk:
            return None
        wanted = int(ident)
        at = int(np.searchsorted(self._risk_ids, wanted))
        if at < self._n_risk and self._risk_ids[at] == wanted:
            return int(self._risk_order[at])
        return None

    def _fence(self, key: str) -> _Fence | None:
        prefix, _, ident = key.partition(":")
        if prefix != FENCE or not ident.isdigit():
            return None
        return self._fences.get(int(ident))

    def within(self, place_key: str, lat: float, lon: float, margin_m: float = 0.0) -> bool:
        """Is the position inside the place grown by `margin_m` metres (shrunk when negative)?
        The engine leaves a place only when this is False for a positive margin, so a vehicle
        parked on the edge does not flap in and out. An unknown (deleted) place: False."""
        slot = self._slot_of(place_key)
        if slot is not None:
            d = haversine_m(lat, lon, self._lat[slot], self._lon[slot])
            return d <= self._radius[slot] + margin_m
        fence = self._fence(place_key)
        if fence is None:
            return False
        if fence.polygon is None:
            p = fence.place
            return haversine_m(lat, lon, p.lat, p.lon) <= p.radius_m + margin_m
        inside = bool(shapely.intersects_xy(fence.polygon, lon, lat))
        if margin_m >= 0:
            return inside or fence.distance_to_edge_m(lat, lon) <= margin_m
        return inside and fence.distance_to_edge_m(lat, lon) >= -margin_m

    # -- customers --
    def customer_path(self, customer_id: int) -> frozenset[int]:
        """The customer's id and its ancestors' ids (the index's copy of the tree)."""
        path = self._paths.get(customer_id)
        if path is None:
            ids, node, seen = [], customer_id, set()
            while node is not None and node not in seen:  # `seen`: a cycle cannot hang us
                seen.add(node)
                ids.append(node)
                node = self._parent.get(node)
            path = frozenset(ids)
            self._paths[customer_id] = path
        return path


# --- Loading from the database -------------------------------------------------------------------
def _fence_options(alarm_enter, alarm_leave, alarm_inside, alarm_parking, parking_minutes) -> dict:
    # The keys alarms.rules.position reads from Area.options.
    return {
        "enter": alarm_enter,
        "leave": alarm_leave,
        "inside": alarm_inside,
        "parking": alarm_parking,
        "parking_minutes": parking_minutes,
    }


def place_versions() -> tuple:
    """What changes whenever a row the index holds changes: count and last update per table
    (a delete lowers the count, an insert or edit moves the last update), the fence bindings'
    count and last id (ids are never reused), and the customers' parents (a moved customer
    changes the sum). Six cheap aggregate queries; `updated_at` is indexed."""
    from django.db.models import Count, Max, Sum

    from accounts.models import Customer
    from alarms.models import Annotation, Geofence, RiskPoint

    out: list = []
    for model in (RiskPoint, Annotation, Geofence):
        agg = model.objects.aggregate(n=Count("id"), t=Max("updated_at"))
        out += [agg["n"], agg["t"]]
    through = Geofence.vehicles.through
    agg = through.objects.aggregate(n=Count("id"), m=Max("id"))
    out += [agg["n"], agg["m"]]
    agg = Customer.objects.aggregate(n=Count("id"), m=Max("id"), p=Sum("parent_id"))
    out += [agg["n"], agg["m"], agg["p"]]
    return tuple(out)


def load_place_index(*, version: Any = None) -> PlaceIndex:
    """Read every risk point, annotation, fence, fence binding and customer parent: one query
    per table, no model instances, coordinates as floats."""
    from django.db.models import FloatField, Func

    from accounts.models import Customer
    from alarms.models import Annotation, Geofence, RiskPoint

    def y(column: str) -> Func:
        return Func(column, function="ST_Y", output_field=FloatField())  # PostGIS and SpatiaLite

    def x(column: str) -> Func:
        return Func(column, function="ST_X", output_field=FloatField())

    risk_points = (
        RiskPoint.objects.order_by()
        .annotate(lat=y("point"), lon=x("point"))
        .values_list("id", "kind", "name", "lat", "lon", "radius_m")
    )
    annotations = (
        Annotation.objects.order_by()
        .annotate(lat=y("point"), lon=x("point"))
        .values_list(
            "id", "name", "lat", "lon", "radius_m", "customer_id", "shared", "created_by_id"
        )
    )
    fences = []
    for row in (
        Geofence.objects.order_by()
        .annotate(lat=y("center"), lon=x("center"))
        .values_list(
            "id",
            "name",
            "shape",
            "polygon",
            "lat",
            "lon",
            "radius_m",
            "alarm_enter",
            "alarm_leave",
            "alarm_inside",
            "alarm_parking",
            "parking_minutes",
        )
    ):
        fence_id, name, shape, polygon, lat, lon, radius = row[:7]
        if shape == Geofence.Shape.POLYGON:
            if polygon is None:
                continue  # refused by Geofence.clean(); never let one bad row stop the engine
            geometry, lat, lon, radius = shapely.from_wkb(bytes(polygon.wkb)), None, None, None
        else:
            if lat is None or not radius:
                continue
            geometry = None
        fences.append((fence_id, name, shape, geometry, lat, lon, radius, _fence_options(*row[7:])))
    bindings = Geofence.vehicles.through.objects.values_list("geofence_id", "vehicle_id")
    customers = Customer.objects.order_by().values_list("id", "parent_id")
    return PlaceIndex(
        risk_points=risk_points,
        annotations=annotations,
        fences=fences,
        bindings=bindings,
        customers=customers,
        version=version,
    )


class PlaceIndexCache:
    """The current `PlaceIndex` of a process. `get()` checks the tables' version at most every
    `check_every_s` seconds and rebuilds only when it changed (the engine calls it once per
    batch). The version is read *before* loading, so a change made while loading is seen at the
    next check. Thread-safe: one rebuild at a time, readers keep the index they got."""

    def __init__(
        self,
        *,
        check_every_s: float = 5.0,
        loader: Callable[..., PlaceIndex] = load_place_index,
        versions: Callable[[], tuple] = place_versions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check_every_s = check_every_s
        self._loader, self._versions, self._clock = loader, versions, clock
        self._index: PlaceIndex | None = None
        self._checked: float | None = None
        self._lock = threading.Lock()
        self.rebuilds = 0

    def get(self) -> PlaceIndex:
        now = self._clock()
        index = self._index
        if (
            index is not None
            and self._checked is not None
            and now - self._checked < self.check_every_s
        ):
            return index
        with self._lock:
            checked = self._checked
            if (
                self._index is not None
                and checked is not None
                and now - checked < self.check_every_s
            ):
                return self._index  # another thread checked meanwhile
            self._checked = now
            version = self._versions()
            if self._index is None or version != self._index.version:
                self._index = self._loader(version=version)
                self.rebuilds += 1
            return self._index

    def invalidate(self) -> None:
        """Check the version at the next `get()` whatever the time."""
        self._checked = None
