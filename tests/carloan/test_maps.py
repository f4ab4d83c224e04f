"""The configured map provider (carloan.maps): what the pages' maps are given, and the start-up
check that refuses an unknown provider."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from carloan import maps


def test_each_provider_gives_its_tiles_datum_and_grid(settings):
    settings.MAP_TILE_URL = ""
    expected = {
        "osm": ("wgs84", "web_mercator", "tile.openstreetmap.org"),
        "amap": ("gcj02", "web_mercator", "autonavi.com"),
        "tencent": ("gcj02", "web_mercator", "gtimg.com"),
        "baidu": ("bd09", "baidu", "bdimg.com"),
    }
    for provider, (datum, grid, host) in expected.items():
        settings.MAP_PROVIDER = provider
        config = maps.map_config()
        assert (config["provider"], config["crs"], config["grid"]) == (provider, datum, grid)
        assert host in config["tiles"]
        assert config["center"] == [34.26, 108.94]  # WGS-84; the page converts it


def test_an_intranet_tile_url_replaces_the_providers(settings):
    settings.MAP_PROVIDER = "baidu"
    settings.MAP_TILE_URL = "http://tiles.lan/baidu?x={x}&y={y}&z={z}"
    config = maps.map_config(zoom=5, geom_type="Point")
    assert config["tiles"] == "http://tiles.lan/baidu?x={x}&y={y}&z={z}"
    assert (config["grid"], config["zoom"], config["geom_type"]) == ("baidu", 5, "Point")


def test_an_unknown_provider_stops_every_command_at_start_up(settings):
    settings.MAP_PROVIDER = "google"
    errors = maps.check_map_provider()
    assert [e.id for e in errors] == ["carloan.E001"]
    assert "MAP_PROVIDER='google'" in errors[0].msg
    assert "osm, amap, tencent, baidu" in errors[0].hint
    with pytest.raises(SystemCheckError, match="carloan.E001"):
        call_command("check")


def test_a_known_provider_passes_the_check(settings):
    settings.MAP_PROVIDER = "baidu"
    assert maps.check_map_provider() == []


@pytest.mark.django_db
def test_the_live_map_page_carries_the_baidu_grid(client, world, settings):
    settings.MAP_PROVIDER = "baidu"
    settings.MAP_TILE_URL = ""
    client.force_login(world.users["a_admin"])
    page = client.get("/monitor/").content.decode()
    start = page.index('id="map-config"')
    config = json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])
    assert config["grid"] == "baidu" and config["crs"] == "bd09"
    assert config["max_zoom"] == 19 and config["min_zoom"] == 3
