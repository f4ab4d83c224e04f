"""Coordinates for the map providers, and distances. Pure functions, no Django models, no I/O.

The platform stores WGS-84 (what the trackers send). Maps in China draw in their own datum:

- OpenStreetMap: WGS-84, drawn as stored.
- AMap (Gaode) and Tencent: GCJ-02, the datum required for maps published in China, which moves
  every position by a few hundred metres with a smooth, non-linear offset.
- Baidu: BD-09, Baidu's further offset of GCJ-02.

`to_provider(lat, lon, provider)` gives the coordinates to draw a WGS-84 position with on that
provider's map; `from_provider()` turns a click on that map back into WGS-84. The forward
formulas are the widely published ones (the GCJ-02 offset polynomials on the Krasovsky 1940
ellipsoid, a = 6378245 m, e^2 = 0.00669342162296594323, and Baidu's polar-coordinate
perturbation with x_pi = pi * 3000 / 180 and shifts of 0.0065 / 0.006 degrees). Neither has a
closed-form inverse; the usual one-step "inverse" (subtract the offset computed at the wrong
point) is off by up to 5.6e-5 degrees (~6 m) over China for GCJ-02 and 1.8e-6 degrees for
BD-09. Here the inverses iterate the forward formula until it reproduces the input to 1e-10
degrees (two or three rounds), so a round trip WGS-84 -> GCJ-02 -> WGS-84 (or -> BD-09 -> WGS-84)
returns the start within 2e-10 degrees (measured on a 0.5-degree grid over China).

Outside China the providers draw WGS-84, so nothing is changed there. "Outside" is the widely
used rectangle test (`out_of_china`): it is coarse (it takes in Mongolia, the Korean peninsula
and part of Japan), but it is what the providers' own SDK samples use, so markers agree with
theirs.

Every signature is (lat, lon) in degrees, like the rest of carloan; the published formulas are
usually written (lng, lat).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG), as in alarms.spatial and alarms.regions

# GCJ-02 constants (Krasovsky 1940 ellipsoid).
_A = 6378245.0
_EE = 0.00669342162296594323
# BD-09 constants.
_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON, _BD_DLAT = 0.0065, 0.006

_TOLERANCE_DEG = 1e-10  # the iterative inverses stop when the forward formula is this close
_MAX_ROUNDS = 30


def out_of_china(lat: float, lon: float) -> bool:
    """True when the published China rectangle (lon 72.004..137.8347, lat 0.8293..55.8271) does
    not contain the position: the providers draw such positions in WGS-84."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _check(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):  # also refuses NaN
        raise ValueError(f"not a position in degrees: lat={lat!r}, lon={lon!r}")


def _gcj_offset(lat: float, lon: float) -> tuple[float, float]:
    """The GCJ-02 offset (dlat, dlon) in degrees at a WGS-84 position."""
    x, y = lon - 105.0, lat - 35.0
    sx, sy = math.sqrt(abs(x)), x * math.pi
    common = (20.0 * math.sin(6.0 * sy) + 20.0 * math.sin(2.0 * sy)) * 2.0 / 3.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sx
        + common
        + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sx
        + common
        + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    # Metres of offset -> degrees on the Krasovsky ellipsoid at this latitude.
    rad = math.radians(lat)
    magic = 1.0 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return dlat, dlon


def _wgs_to_gcj(lat: float, lon: float) -> tuple[float, float]:
    dlat, dlon = _gcj_offset(lat, lon)
    return lat + dlat, lon + dlon


def _gcj_to_bd(lat: float, lon: float) -> tuple[float, float]:
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.sin(theta) + _BD_DLAT, z * math.cos(theta) + _BD_DLON


def _bd_to_gcj_estimate(lat: float, lon: float) -> tuple[float, float]:
    """The published one-step inverse of _gcj_to_bd: the starting point of the iteration."""
    x, y = lon - _BD_DLON, lat - _BD_DLAT
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def _invert(forward, lat: float, lon: float, start: tuple[float, float]) -> tuple[float, float]:
    """The (lat, lon) that `forward` maps to (lat, lon), by fixed-point iteration from `start`.
    Both offsets change by ~1e-3 of a step per step, so each round gains ~3 digits."""
    ilat, ilon = start
    for _round in range(_MAX_ROUNDS):
        flat, flon = forward(ilat, ilon)
        elat, elon = flat - lat, flon - lon
        if abs(elat) < _TOLERANCE_DEG and abs(elon) < _TOLERANCE_DEG:
            break
        ilat, ilon = ilat - elat, ilon - elon
    return ilat, ilon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02 (AMap, Tencent). Unchanged outside China."""
    _check(lat, lon)
    if out_of_china(lat, lon):
        return lat, lon
    return _wgs_to_gcj(lat, lon)


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84, iterated to 1e-10 degrees. Unchanged outside China."""
    _check(lat, lon)
    if out_of_china(lat, lon):
        return lat, lon
    dlat, dlon = _gcj_offset(lat, lon)
    return _invert(_wgs_to_gcj, lat, lon, (lat - dlat, lon - dlon))


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 (Baidu). Unchanged outside China."""
    _check(lat, lon)
    if out_of_china(lat, lon):
        return lat, lon
    return _gcj_to_bd(lat, lon)


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 -> GCJ-02, iterated to 1e-10 degrees. Unchanged outside China."""
    _check(lat, lon)
    if out_of_china(lat, lon):
        return lat, lon
    return _invert(_gcj_to_bd, lat, lon, _bd_to_gcj_estimate(lat, lon))


def wgs84_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 -> BD-09 (through GCJ-02). Unchanged outside China."""
    _check(lat, lon)
    if out_of_china(lat, lon):
        return lat, lon
    return _gcj_to_bd(*_wgs_to_gcj(lat, lon))


def bd09_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 -> WGS-84 (through GCJ-02), each step iterated. Unchanged outside China."""
    _check(lat, lon)
    if out_of_china(lat, lon):
        return lat, lon
    glat, glon = _invert(_gcj_to_bd, lat, lon, _bd_to_gcj_estimate(lat, lon))
    dlat, dlon = _gcj_offset(glat, glon)
    return _invert(_wgs_to_gcj, glat, glon, (glat - dlat, glon - dlon))


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on the mean-radius sphere (within 0.5 % of the
    ellipsoid; exact enough for fences, alarms and mileage)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# -- map providers (a registry: a new provider is one line) --------------------------------------
WGS84, GCJ02, BD09 = "wgs84", "gcj02", "bd09"
_FROM_WGS = {WGS84: lambda lat, lon: (lat, lon), GCJ02: wgs84_to_gcj02, BD09: wgs84_to_bd09}
_TO_WGS = {WGS84: lambda lat, lon: (lat, lon), GCJ02: gcj02_to_wgs84, BD09: bd09_to_wgs84}


# The tile grids: "web_mercator" is the usual XYZ grid of EPSG:3857 (OpenStreetMap, AMap, Tencent);
# "baidu" is Baidu's own: a Mercator on the Clarke 1866 ellipsoid (a = 6378206 m,
# b = 6356584.314245179 m), origin at (0, 0), 2^(18 - z) metres per pixel at zoom z, tile rows
# counted northwards from the equator. That ellipsoid reproduces Baidu's published BD-09 ->
# Mercator vectors within 0.9 m (under a pixel up to zoom 18); static/pages/geo.js implements it as
# a Leaflet CRS.
WEB_MERCATOR, BAIDU_MERCATOR = "web_mercator", "baidu"


@dataclass(frozen=True)
class MapProvider:
    label: str
    datum: str  # WGS84 | GCJ02 | BD09
    tiles: str  # Leaflet URL template
    attribution: str
    subdomains: str = "abc"
    grid: str = WEB_MERCATOR
    min_zoom: int = 1
    max_zoom: int = 18


PROVIDERS: dict[str, MapProvider] = {
    "osm": MapProvider(
        _("OpenStreetMap"),
        WGS84,
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "© OpenStreetMap",
        max_zoom=19,
    ),
    "amap": MapProvider(
        _("AMap (Gaode)"),
        GCJ02,
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
        "&x={x}&y={y}&z={z}",
        "© 高德地图",
        subdomains="1234",
    ),
    "tencent": MapProvider(
        _("Tencent Maps"),
        GCJ02,
        "https://rt{s}.map.gtimg.com/realtimerender?z={z}&x={x}&y={-y}&type=vector&style=0",
        "© 腾讯地图",
        subdomains="0123",
    ),
    "baidu": MapProvider(
        _("Baidu Maps"),
        BD09,
        "https://maponline{s}.bdimg.com/tile/?qt=vtile&x={x}&y={y}&z={z}&styles=pl&scaler=1",
        "© 百度地图",
        subdomains="0123",
        grid=BAIDU_MERCATOR,
        min_zoom=3,
        max_zoom=19,
    ),
}
DEFAULT_PROVIDER = "osm"


def provider_choices() -> list[tuple[str, str]]:
    return [(key, p.label) for key, p in PROVIDERS.items()]


def get_provider(name: str) -> MapProvider:
    try:
        return PROVIDERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown map provider {name!r}; expected one of {', '.join(PROVIDERS)}"
        ) from None


def to_provider(lat: float, lon: float, provider: str) -> tuple[float, float]:
    """The (lat, lon) to draw a WGS-84 position with on `provider`'s map."""
    return _FROM_WGS[get_provider(provider).datum](lat, lon)


def from_provider(lat: float, lon: float, provider: str) -> tuple[float, float]:
    """The WGS-84 position of a point read off `provider`'s map (a click, a drawn fence)."""
    return _TO_WGS[get_provider(provider).datum](lat, lon)
