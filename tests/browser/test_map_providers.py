"""Issue 4, M4: on every map provider the tiles the page asks for are the ones under the positions
it draws. The live map opens at Xi'an (WGS-84); for each provider the tile that must hold that
point, and where in the tile it must be, are computed here independently (the provider's datum
from carloan.geo, then its tile grid: Web Mercator XYZ / TMS, or Baidu's Mercator, which is checked
first against Baidu's published BD-09 -> Mercator vectors). The page must have loaded exactly that
tile and placed it so that the point lies under the map's centre.

Tiles come from the live server (a static image with the tile numbers in its query string): the
test never goes to the internet."""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlparse

import pytest

from carloan import geo, maps
from tests.browser.conftest import SCREENSHOTS, browser_missing, wait_until

pytestmark = [
    pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing())),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "map-test-pass"  # noqa: S105
ZOOM = 11  # what map_config() opens at
# Baidu's own BD-09 -> Baidu Mercator vectors, (lon, lat) -> (x, y) metres, as published with its
# JS API's converter (convertLL2MC).
BAIDU_VECTORS = [
    ((116.403874, 39.914889), (12958160.97, 4825907.72)),
    ((116.404, 39.915), (12958175.0, 4825923.77)),
    ((121.499, 31.240), (13525353.98, 3641593.36)),
]
# The tile numbers the test's tile server sees; Tencent numbers rows from the south (TMS).
TILE_QUERY = {
    "osm": "x={x}&y={y}&z={z}",
    "amap": "x={x}&y={y}&z={z}",
    "tencent": "x={x}&y={-y}&z={z}",
    "baidu": "x={x}&y={y}&z={z}",
}


def baidu_mercator(lon: float, lat: float) -> tuple[float, float]:
    """Mercator on the Clarke 1866 ellipsoid, the reference the page's Baidu grid is checked by."""
    a, b = 6378206.0, 6356584.314245179
    e = math.sqrt(1 - (b / a) ** 2)
    phi = math.radians(lat)
    con = e * math.sin(phi)
    y = a * math.log(math.tan(math.pi / 4 + phi / 2) * ((1 - con) / (1 + con)) ** (e / 2))
    return a * math.radians(lon), y


def expected_tile(provider: str, lat: float, lon: float, zoom: int):
    """(tile x, tile y as the tile server numbers it, pixel x and y of the point in that tile)."""
    dlat, dlon = geo.to_provider(lat, lon, provider)
    if geo.PROVIDERS[provider].grid == geo.BAIDU_MERCATOR:
        mx, my = baidu_mercator(dlon, dlat)
        px, py = mx * 2 ** (zoom - 18), my * 2 ** (zoom - 18)  # y grows north
        tx, ty = math.floor(px / 256), math.floor(py / 256)
        return tx, ty, px - 256 * tx, 256 * (ty + 1) - py
    world = 256 * 2**zoom
    px = (dlon + 180) / 360 * world
    phi = math.radians(dlat)
    py = (1 - math.log(math.tan(phi) + 1 / math.cos(phi)) / math.pi) / 2 * world
    tx, ty = math.floor(px / 256), math.floor(py / 256)
    ty_server = 2**zoom - 1 - ty if "{-y}" in TILE_QUERY[provider] else ty
    return tx, ty_server, px - 256 * tx, py - 256 * ty


def test_the_reference_projection_reproduces_baidus_published_vectors():
    for (lon, lat), (x, y) in BAIDU_VECTORS:
        mx, my = baidu_mercator(lon, lat)
        assert abs(mx - x) < 1.0 and abs(my - y) < 1.0, ((lon, lat), (mx, my))


def login(browser, live_url, user) -> None:
    from selenium.webdriver.common.by import By

    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    browser.get(live_url + "/login/")
    browser.find_element(By.NAME, "username").send_keys(user.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login-card button[type=submit]").click()
    wait_until(lambda: "/login/" not in browser.current_url, what="the login to go through")


@pytest.mark.parametrize("provider", list(geo.PROVIDERS))
def test_the_tiles_under_the_map_centre_are_the_providers_tiles_for_that_position(
    provider, world, live_url, settings, browser
):
    settings.MAP_PROVIDER = provider
    tile = "/static/vendor/leaflet/images/layers.png"
    settings.MAP_TILE_URL = f"{live_url}{tile}?{TILE_QUERY[provider]}"
    login(browser, live_url, world.users["a_admin"])
    browser.get(live_url + "/monitor/")

    lat, lon = maps.DEFAULT_CENTER
    tx, ty, off_x, off_y = expected_tile(provider, lat, lon, ZOOM)

    if provider == "baidu":
        # The page's Baidu grid against Baidu's own vectors (metres).
        for (vlon, vlat), (x, y) in BAIDU_VECTORS:
            got = browser.execute_script(
                "const p = CarloanGeo.BaiduCRS.projection"
                ".project(L.latLng(arguments[0], arguments[1])); return [p.x, p.y];",
                vlat,
                vlon,
            )
            assert abs(got[0] - x) < 1.5 and abs(got[1] - y) < 1.5, (vlon, vlat, got)

    def tiles():
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('#map img.leaflet-tile')).map((img) => {"
            "  const r = img.getBoundingClientRect(); return [img.src, r.left, r.top, r.width]; });"
        )

    def tile_numbers(src: str) -> tuple[int, int, int]:
        q = parse_qs(urlparse(src).query)
        return int(q["x"][0]), int(q["y"][0]), int(q["z"][0])

    loaded = wait_until(tiles, what="the map's tiles")
    browser.save_screenshot(str(SCREENSHOTS / f"map-{provider}.png"))
    by_number = {tile_numbers(src): (left, top, width) for src, left, top, width in loaded}
    assert all(z == ZOOM for _x, _y, z in by_number), by_number
    assert (tx, ty, ZOOM) in by_number, (provider, (tx, ty), sorted(by_number))

    left, top, width = by_number[(tx, ty, ZOOM)]
    assert width == 256
    box = browser.execute_script(
        "const r = document.getElementById('map').getBoundingClientRect();"
        "return [r.left + r.width / 2, r.top + r.height / 2];"
    )
    # The map's centre (where Xi'an is drawn) is where the reference puts it in that tile.
    assert abs(box[0] - left - off_x) <= 2, (provider, box, left, off_x)
    assert abs(box[1] - top - off_y) <= 2, (provider, box, top, off_y)
