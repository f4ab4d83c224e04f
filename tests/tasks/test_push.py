"""New-assignment pushes (issue 6, item 5): the worker's phone, connected to /ws/live/ with its
token, gets a "task" item when an order is assigned to them, taken from them or cancelled; nobody
else gets it, and nothing is sent for a refused or rolled-back change.

The consumer reads the database from its own threads, so these tests commit
(transaction=True), as tests/carloan/test_consumers.py does."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from carloan import realtime
from carloan.asgi import application
from carloan.errors import ApplicationError
from carloan.realtime import LiveFeed
from tasks import services
from tests.tasks.conftest import make_order

LIMIT = 10.0


def run(scenario):
    async def main():
        try:
            return await asyncio.wait_for(scenario(), LIMIT)
        finally:
            await database_sync_to_async(connections.close_all)()

    try:
        return asyncio.run(main())
    finally:
        connections.close_all()


async def phone(user_token: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/ws/live/?token={user_token}")
    connected, _sub = await comm.connect(timeout=5)
    assert connected
    return comm


@pytest.fixture
def feed(monkeypatch):
    feed = LiveFeed(autostart=False)  # flushed by the test in its own event loop
    monkeypatch.setattr(realtime, "_feed", feed)
    return feed


@pytest.mark.django_db(transaction=True)
def test_the_assigned_worker_gets_the_order_on_the_websocket_and_nobody_else(field, feed):
    order = make_order(field, lat=34.261, lon=108.9423, address="Bell tower")
    tokens = {
        name: Token.objects.get_or_create(user=field[name])[0].key
        for name in ("a1_installer", "a1_installer2")
    }

    async def scenario():
        mine, other = await phone(tokens["a1_installer"]), await phone(tokens["a1_installer2"])
        await database_sync_to_async(services.work_order_assign)(
            order=order, assignee=field["a1_installer"], by=field["a_admin"]
        )
        await feed.flush()
        message = await mine.receive_json_from(timeout=2)
        assert await other.receive_nothing(timeout=0.3)
        # Given to the other installer: the first is told it is gone, the second gets it.
        await database_sync_to_async(services.work_order_assign)(
            order=order, assignee=field["a1_installer2"], by=field["a_admin"]
        )
        await feed.flush()
        gone = await mine.receive_json_from(timeout=2)
        got = await other.receive_json_from(timeout=2)
        await mine.disconnect()
        await other.disconnect()
        return message, gone, got

    message, gone, got = run(scenario)
    [item] = message["items"]
    assert item["type"] == "task" and item["event"] == "assigned"
    assert (item["order_id"], item["kind"], item["status"]) == (order.pk, "install", "assigned")
    assert (item["plate"], item["address"], item["lat"]) == (
        order.vehicle.plate,
        "Bell tower",
        34.261,
    )
    assert [i["event"] for i in gone["items"]] == ["unassigned"]
    assert [i["event"] for i in got["items"]] == ["assigned"]


@pytest.mark.django_db
def test_a_push_waits_for_the_commit_and_a_refused_assignment_sends_nothing(
    field, django_capture_on_commit_callbacks, feed
):
    order = make_order(field)
    # A salesman does not install.
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError):
        services.work_order_assign(order=order, assignee=field["a1_salesman"], by=None)
    assert callbacks == []
    with django_capture_on_commit_callbacks() as callbacks:
        services.work_order_assign(order=order, assignee=field["a1_installer"], by=None)
        services.work_order_cancel(order=order, by=None, reason="Customer paid up")
    assert len(callbacks) == 2  # assigned, then cancelled: one push each, after the commit
