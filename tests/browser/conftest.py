"""What the browser test runs against, all on free 127.0.0.1 ports and started by the test:

- a private redis-server (its own temp dir, no persistence): the channel layer between the
  gateway's live feed and the WebSocket consumers, as in production (the in-memory layer cannot
  wake a consumer from another thread's event loop);
- daphne serving `carloan.asgi:application` on a thread of this process (Twisted's reactor runs
  once per process, so it is started once per session), so the pages read the test database;
- the device gateway on another thread (`gateway.server.Gateway`, its own event loop);
- headless Chromium (Debian's `chromium` + `chromium-driver`, installed by scripts/setup.sh)
  through Selenium.

Everything is skipped, with the reason, only when Chromium or chromedriver is missing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from carloan.localredis import REDIS_SERVER, PrivateRedis

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
START_TIMEOUT = 20.0
# Map tiles would come from the internet: every tile is this 1x1 transparent GIF instead.
BLANK_TILE = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="


def browser_missing() -> str | None:
    """Why the browser test cannot run here (None: it can)."""
    if not CHROMIUM or not CHROMEDRIVER:
        return (
            "headless Chromium is not installed (Debian packages chromium and chromium-driver; "
            "`make setup` installs them)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    if not REDIS_SERVER:
        return "redis-server is not installed (`make setup` installs it)"
    return None


def wait_until(check, timeout: float = START_TIMEOUT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def redis_url():
    """A private redis-server on a free port, stopped (by its pid) at the end of the session."""
    redis = PrivateRedis()
    try:
        redis.start(START_TIMEOUT)
        yield redis.url
    finally:
        redis.stop()


class DaphneThread:
    """daphne on a thread: Twisted's asyncio reactor in a thread, no signal handlers."""

    def __init__(self) -> None:
        from daphne.server import Server  # installs the asyncio reactor first

        from carloan.asgi import application

        self.server = Server(
            application,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            verbosity=0,
        )
        self.thread = threading.Thread(target=self.server.run, name="daphne", daemon=True)

    def start(self) -> str:
        self.thread.start()
        host, port = wait_until(
            lambda: self.server.listening_addresses and self.server.listening_addresses[0],
            what="daphne to listen",
        )
        return f"http://{host}:{port}"

    def stop(self) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(reactor.stop)
        self.thread.join(10)


@pytest.fixture(scope="session")
def live_url():
    """daphne serving the site (once per session: Twisted's reactor cannot restart)."""
    server = DaphneThread()
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


class GatewayThread:
    """The device gateway on its own thread and event loop, GT06 / JT808 / H02 on free ports."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.ports: dict[str, int] = {}
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="gateway", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from django.db import connections

        from gateway.server import Gateway, GatewayConfig

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        gateway = Gateway(GatewayConfig(ports={"gt06": 0, "jt808": 0, "h02": 0}, batch_wait=0.05))
        await gateway.start()
        self.ports = dict(gateway.ports)
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            await gateway.stop()
            await asyncio.to_thread(connections.close_all)

    def start(self) -> dict[str, int]:
        self.thread.start()
        self.ready.wait(START_TIMEOUT)
        if self.error is not None:
            raise self.error
        return self.ports

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(15)


@pytest.fixture
def gateway_ports():
    gateway = GatewayThread()
    ports = gateway.start()
    try:
        yield ports
    finally:
        gateway.stop()


@pytest.fixture
def live_feed(settings, redis_url):
    """This process's live feed and channel layer on the private Redis (restored afterwards)."""
    from django.db import connections

    from carloan import realtime

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }
    settings.LIVE_FLUSH_INTERVAL = 1.0
    # Tiles would come from the internet: every tile is a blank image instead.
    settings.MAP_TILE_URL = BLANK_TILE
    previous = realtime._feed
    realtime._feed = realtime.LiveFeed(interval=1.0)
    # daphne's worker threads close their connections after each request only when they do not
    # persist; a connection left open there would keep PostgreSQL from dropping the test database.
    db_settings = connections["default"].settings_dict
    max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0
    try:
        yield realtime._feed
    finally:
        realtime._feed.stop()
        realtime._feed = previous
        db_settings["CONN_MAX_AGE"] = max_age


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,800",
        "--lang=en-US",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    # Offline: Selenium Manager must not look for a driver on the internet.
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
