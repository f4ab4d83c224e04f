"""Installer performance (K1): installs per period, on-time rate, rework rate (a repair of the
car within 30 days of the install), average duration; the page and its Excel export."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.test import Client
from openpyxl import load_workbook

from tasks import services
from tasks.completion import Completion
from tasks.selectors import installer_performance
from tests.factories import DeviceFactory, VehicleFactory

H = dt.timedelta(hours=1)
NOV = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def install(field, worker, *, start, minutes, due=None, vehicle=None, fail=False):
    """An install by `worker`, started at `start` and finished `minutes` later."""
    a1 = field.world.customers["a1"]
    vehicle = vehicle or VehicleFactory(customer=a1)
    order = services.work_order_create(
        by=field["a_admin"],
        kind="install",
        vehicle=vehicle,
        due_at=due,
        assignee=field[worker],
        now=start - H,
    )
    services.work_order_accept(order=order, by=field[worker], now=start - H / 2)
    services.work_order_start(order=order, by=field[worker], now=start)
    end = start + dt.timedelta(minutes=minutes)
    if fail:
        return services.work_order_fail(order=order, by=field[worker], reason="no key", now=end)
    device = DeviceFactory(customer=a1)
    return services.work_order_complete(
        order=order, by=field[worker], data=Completion(imeis=(device.identifier,)), now=end
    )


def repair_ordered(field, vehicle, at):
    return services.work_order_create(by=field["a_admin"], kind="repair", vehicle=vehicle, now=at)


@pytest.fixture
def month(field):
    """November 2026: a1_installer did three installs (one late, one reworked after 10 days,
    one reworked only after 40 days, which does not count), a1_installer2 failed one."""
    t = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)
    first = install(field, "a1_installer", start=t, minutes=40, due=t + H)
    late = install(field, "a1_installer", start=t + 24 * H, minutes=60, due=t + 24 * H)
    third = install(field, "a1_installer", start=t + 48 * H, minutes=20)
    install(field, "a1_installer2", start=t, minutes=30, fail=True)
    repair_ordered(field, late.vehicle, late.finished_at + dt.timedelta(days=10))
    repair_ordered(field, third.vehicle, third.finished_at + dt.timedelta(days=40))
    # October's install is outside the period.
    install(field, "a1_installer", start=t - dt.timedelta(days=30), minutes=10)
    return first, late, third


def test_the_figures_per_installer(field, month):
    rows = {
        r.username: r for r in installer_performance(field["a_admin"], since=NOV[0], until=NOV[1])
    }
    mine = rows["a1_installer"]
    assert (mine.installs, mine.with_due, mine.on_time, mine.reworked) == (3, 2, 1, 1)
    assert mine.on_time_rate == 0.5
    assert mine.rework_rate == pytest.approx(1 / 3)
    assert mine.average_minutes == pytest.approx(40.0)
    other = rows["a1_installer2"]
    assert (other.installs, other.failed, other.on_time_rate, other.average_minutes) == (
        0,
        1,
        None,
        None,
    )


def test_another_tenant_sees_nobodys_figures(field, month):
    assert installer_performance(field["b_admin"], since=NOV[0], until=NOV[1]) == []


def test_the_page_shows_the_period_and_the_export_holds_the_same_rows(field, month):
    client = Client()
    client.force_login(field["a_admin"])
    query = "?since=2026-11-01&until=2026-11-30"
    page = client.get("/tasks/performance/" + query)
    assert page.status_code == 200
    assert [r.username for r in page.context["rows"]] == ["a1_installer", "a1_installer2"]
    assert "format=xlsx" in page.content.decode()

    export = client.get("/tasks/performance/" + query + "&format=xlsx")
    assert export.status_code == 200
    assert export["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "installer-performance-2026-11-01-2026-11-30.xlsx" in export["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(export.content)).active
    values = list(sheet.values)
    assert values[0][:2] == ("Period", "2026-11-01 – 2026-11-30")
    header, first = values[1], dict(zip(values[1], values[2], strict=True))
    assert header[0] == "Installer"
    assert first["Username"] == "a1_installer"
    assert (first["Installs"], first["On-time rate %"], first["Rework rate %"]) == (3, 50.0, 33.3)
    assert first["Average duration (min)"] == 40.0


def test_bad_periods_are_said_and_fixed_not_failed(field, month):
    client = Client()
    client.force_login(field["a_admin"])
    page = client.get("/tasks/performance/?since=2026-13-01&until=2026-11-30")
    assert page.status_code == 200
    assert any("not a date" in str(e) for e in page.context["errors"])
    page = client.get("/tasks/performance/?since=2026-11-30&until=2026-11-01")
    assert (page.context["since"], page.context["until"]) == (
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
    )


def test_names_cannot_become_formulas_in_excel(field, month):
    installer = field["a1_installer"]
    installer.first_name = "=HYPERLINK(1)"
    installer.save(update_fields=["first_name"])
    client = Client()
    client.force_login(field["a_admin"])
    export = client.get("/tasks/performance/?since=2026-11-01&until=2026-11-30&format=xlsx")
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert list(sheet.values)[2][0] == "'=HYPERLINK(1)"


def test_the_pages_need_the_view_permission(field):
    client = Client()
    client.force_login(field["a1_installer"])
    for url in ("/tasks/", "/tasks/map/", "/tasks/map.json", "/tasks/performance/"):
        assert client.get(url).status_code == 403, url
