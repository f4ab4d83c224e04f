"""The monitoring pages in a real browser (issue 4, item 5): log in, the live map shows the
user's vehicles (and not another lender's), a fix sent through the gateway by a tracker moves
its marker, an alarm it raises appears in the alarm centre without a reload. Screenshots of
every step are kept under var/screenshots/ (CI artefacts).

Real clock, real sockets: the gateway checks fix times against now, so the frames carry now."""

from __future__ import annotations

import datetime as dt
import socket

import pytest
from django.contrib.auth.models import Permission
from django.contrib.gis.geos import Point
from django.utils import timezone

from devices.models import Device
from gateway.simulator import frames
from tests.browser.conftest import SCREENSHOTS, browser_missing

pytestmark = [
    pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing())),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "browser-test-pass"  # noqa: S105
WAIT = 20  # seconds for anything the page should show
# Where each world vehicle stands, spread over Xi'an so the markers are not clustered.
SPOTS = {
    "platform": (34.34, 108.80),
    "a": (34.30, 108.90),
    "a1": (34.22, 108.95),
    "a2": (34.26, 109.02),
    "b": (34.18, 108.86),
    "b1": (34.33, 109.05),
}
MOVED_TO = (34.2455, 108.9612)  # ~3 km from a1's spot


class Tracker:
    """A GT06 tracker on a blocking socket: what a device in a car sends."""

    def __init__(self, port: int, imei: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.imei = imei
        self.serial = 0

    def _send(self, frame: bytes, *, ack: bool) -> None:
        self.sock.sendall(frame)
        if ack:
            assert self.sock.recv(1024), "the gateway closed the connection"

    def login(self) -> None:
        self.serial += 1
        self._send(frames.gt06_login(self.imei, self.serial), ack=True)

    def fix(self, lat: float, lon: float, speed_kmh: float) -> None:
        self.serial += 1
        self._send(
            frames.gt06_location(
                self.serial,
                fix_time=timezone.now().replace(microsecond=0),
                lat=lat,
                lon=lon,
                speed_kmh=speed_kmh,
                course=90,
                satellites=9,
                valid=True,
                acc=True,
            ),
            ack=False,
        )

    def sos(self, lat: float, lon: float) -> None:
        self.serial += 1
        self._send(
            frames.gt06_alarm(
                self.serial,
                fix_time=timezone.now().replace(microsecond=0),
                lat=lat,
                lon=lon,
                speed_kmh=0.0,
                course=0,
                satellites=9,
                valid=True,
                acc=True,
                alarm_code=0x01,  # SOS
            ),
            ack=True,
        )

    def close(self) -> None:
        self.sock.close()


def until(driver, script: str, what: str):
    """Wait until the page's `script` (a JS expression) is truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: d.execute_script("return " + script), message=what
    )


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_live_map_follows_the_gateway_and_the_alarm_centre_gets_the_alarm(
    world, live_url, gateway_ports, live_feed, browser
):
    from selenium.webdriver.common.by import By

    user = world.users["a_admin"]
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    user.role.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="alarms", codename__in=["view_alarm", "handle_alarm"]
        )
    )
    five_minutes_ago = timezone.now() - dt.timedelta(minutes=5)
    for key, device in world.devices.items():
        lat, lon = SPOTS[key]
        Device.all_objects.filter(pk=device.pk).update(
            last_position=Point(lon, lat, srid=4326),
            last_fix_at=five_minutes_ago,
            last_speed_kmh=0.0,
            online=False,
        )
    mine = {world.vehicles[k].plate for k in world.visible_keys("a_admin")}
    others = {world.vehicles[k].plate for k in ("b", "b1")}

    # Log in: the login page, then the dashboard.
    browser.get(live_url + "/login/")
    browser.find_element(By.NAME, "username").send_keys(user.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    shot(browser, "01-login")
    browser.find_element(By.CSS_SELECTOR, "form.login-card button[type=submit]").click()
    until(browser, "location.pathname === '/' && !!document.querySelector('.tiles')", "dashboard")
    assert browser.find_element(By.CSS_SELECTOR, ".tiles .tile b").text == str(len(mine))
    shot(browser, "02-dashboard")

    # The live map: one marker per visible vehicle, the WebSocket connected.
    browser.get(live_url + "/monitor/")
    until(browser, "document.body.dataset.vehicles === '3'", "the snapshot painted")
    until(browser, "document.body.dataset.ws === 'connected'", "the WebSocket connected")
    listed = {
        li.text.split(" · ")[0] for li in browser.find_elements(By.CSS_SELECTOR, "#vehicle-list li")
    }
    assert listed == mine and not listed & others
    markers = browser.execute_script(
        "return Array.from(CarloanMonitor.vehicles.values())"
        ".filter(v => v.marker && CarloanMonitor.cluster.hasLayer(v.marker)).length"
    )
    assert markers == 3
    shot(browser, "03-live-map")

    # A tracker reports a new position through the gateway: its marker moves, now "moving".
    vehicle = world.vehicles["a1"]
    tracker = Tracker(gateway_ports["gt06"], world.devices["a1"].identifier)
    try:
        tracker.login()
        tracker.fix(*MOVED_TO, speed_kmh=42.0)
        moved = until(
            browser,
            f"(v => v && Math.abs(v.marker.getLatLng().lat - {MOVED_TO[0]}) < 1e-4"
            f" && Math.abs(v.marker.getLatLng().lng - {MOVED_TO[1]}) < 1e-4"
            f" && v.state)(CarloanMonitor.vehicles.get({vehicle.pk}))",
            "the marker to move to the tracker's fix",
        )
        assert moved == "moving"
        assert browser.find_element(By.CSS_SELECTOR, '[data-count="moving"]').text == "1"
        shot(browser, "04-marker-moved")

        # The alarm centre: an SOS from the same tracker appears as a new row, live.
        browser.get(live_url + "/alarms/")
        until(browser, "document.body.dataset.alarmsLoaded === '1'", "the alarm list")
        until(browser, "document.body.dataset.ws === 'connected'", "the WebSocket connected")
        assert browser.find_elements(By.CSS_SELECTOR, "#alarm-rows tr") == []
        tracker.sos(*MOVED_TO)
        until(browser, "document.querySelectorAll('#alarm-rows tr').length === 1", "the alarm row")
        cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#alarm-rows tr td")]
        assert cells[1] == vehicle.plate
        assert "SOS" in cells[2]
        assert cells[5] == "open"
        toast = until(browser, "document.querySelector('#toasts .toast.alarm')", "the toast")
        assert vehicle.plate in toast.text
        assert browser.find_element(By.ID, "alarm-badge").text == "1"
        shot(browser, "05-alarm-centre")
    finally:
        tracker.close()
