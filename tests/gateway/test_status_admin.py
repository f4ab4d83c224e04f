"""The operators' gateway status page and the list of devices with dropped frames."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from gateway import services
from gateway.models import GatewayStatus

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def record(name="gw1:100", now=NOW, stopped=False):
    return services.gateway_status_record(
        name=name,
        host="0.0.0.0",  # noqa: S104 (a recorded value)
        ports={"gt06": 5023, "jt808": 5015},
        started_at=NOW - dt.timedelta(hours=1),
        now=now,
        connections=1200,
        sessions=1180,
        queue_depth=3,
        rss_mb=210.5,
        counters={
            "gt06": {"connections": 900, "frames": 52000, "bad_frames": 17, "acked": 40000},
            "jt808": {"connections": 300, "frames": 12000, "bad_frames": 0},
            "all": {"stored": 61000},
        },
        rates={
            "gt06": {"frames": 120.5, "positions": 100.0, "bad_frames": 0.1},
            "all": {"stored": 140.0},
        },
        stopped=stopped,
    )


def test_status_row_is_upserted_per_process_and_old_ones_forgotten(db):
    record(now=NOW - dt.timedelta(days=2), name="gone:1")
    first = record()
    second = record(now=NOW + dt.timedelta(seconds=10))
    assert first.pk == second.pk
    assert list(GatewayStatus.objects.values_list("name", flat=True)) == ["gw1:100"]


@time_machine.travel(NOW + dt.timedelta(seconds=20), tick=False)
def test_platform_admin_sees_counters_and_state(world, client):
    record()
    record(name="gw2:200", now=NOW - dt.timedelta(minutes=5))
    record(name="gw3:300", stopped=True)
    client.force_login(world.users["platform_admin"])
    page = client.get(reverse("admin:gateway_gatewaystatus_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "running" in html and "not reporting" in html and "stopped" in html
    assert "gt06: 120.5 / 100.0 / 0.1" in html
    detail = client.get(
        reverse(
            "admin:gateway_gatewaystatus_change",
            args=[GatewayStatus.objects.get(name="gw1:100").pk],
        )
    )
    assert "<td>52000</td>" in detail.content.decode()


@pytest.mark.parametrize("persona", ["a_admin", "a1_operator", "b_admin"])
def test_tenants_do_not_see_the_gateways(world, client, persona):
    status = record()
    client.force_login(world.users[persona])
    assert client.get(reverse("admin:gateway_gatewaystatus_changelist")).status_code == 403
    change = reverse("admin:gateway_gatewaystatus_change", args=[status.pk])
    assert client.get(change).status_code in (403, 404)


def test_dropped_frames_list_is_scoped_and_worst_first(world, client):
    for key, count in (("a1", 3), ("a2", 9), ("b1", 5)):
        services.device_frames_dropped(device_id=world.devices[key].pk, reason="crc", count=count)
    url = reverse("admin:gateway_devicedrop_changelist")
    client.force_login(world.users["a_admin"])
    listed = [d.pk for d in client.get(url).context["cl"].result_list]
    assert listed == [world.devices["a2"].pk, world.devices["a1"].pk]
    client.force_login(world.users["b_admin"])
    assert [d.pk for d in client.get(url).context["cl"].result_list] == [world.devices["b1"].pk]
    hidden = reverse("admin:gateway_devicedrop_change", args=[world.devices["a1"].pk])
    assert client.get(hidden).status_code == 404
