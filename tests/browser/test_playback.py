"""Track playback in a real browser: a range longer than one API page is read whole (the page
follows `next_since`), and drawn with its stops."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from gateway.ingest import Inbound, ingest_batch
from gateway.protocols import messages as m
from tests.browser.conftest import SCREENSHOTS, browser_missing
from tests.browser.test_live_pages import until
from tests.browser.test_map_providers import login

pytestmark = [
    pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing())),
    pytest.mark.django_db(transaction=True),
]


def test_playback_reads_every_page_of_a_long_range(world, live_url, settings, browser, monkeypatch):
    import gateway.apis

    monkeypatch.setattr(gateway.apis, "MAX_TRACK_POINTS", 4)  # 9 fixes: three pages
    tile = "/static/vendor/leaflet/images/layers.png"
    settings.MAP_TILE_URL = f"{live_url}{tile}?x={{x}}&y={{y}}&z={{z}}"
    vehicle, device = world.vehicles["a1"], world.devices["a1"]
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=30)
    fixes = tuple(
        m.Position(
            fix_time=start + dt.timedelta(minutes=i),
            lat=34.26 + 0.001 * i,
            lon=108.94,
            valid=True,
            speed_kmh=6.0,
        )
        for i in range(9)
    )
    ingest_batch(
        [
            Inbound(
                device_id=device.pk,
                message=m.Message(
                    protocol="gt06", type=m.POSITION, device_id=None, positions=fixes
                ),
                received_at=fixes[-1].fix_time,
            )
        ]
    )

    login(browser, live_url, world.users["a_admin"])
    browser.get(f"{live_url}/playback/?vehicle={vehicle.pk}")  # loads the last 24 hours
    text = until(
        browser,
        "document.getElementById('play').disabled === false"
        " && document.getElementById('track-info').textContent.includes(' · ')"
        " && document.getElementById('track-info').textContent",
        "the track to load",
    )
    browser.save_screenshot(str(SCREENSHOTS / "playback-pages.png"))
    assert text.startswith("9 ")
    assert not browser.find_elements("css selector", ".toast.error")
