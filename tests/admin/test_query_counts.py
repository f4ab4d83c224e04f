"""Admin changelists cost the same number of queries whatever the page holds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import DeviceFactory, VehicleFactory
from vehicles.services import device_bind


def queries_for(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:vehicles_vehicle_changelist",
        "admin:devices_device_changelist",
        "admin:vehicles_devicebinding_changelist",
        "admin:accounts_customer_changelist",
    ],
)
def test_changelist_query_count_is_constant(world, client, url_name):
    client.force_login(world.users["a_admin"])
    url = reverse(url_name)
    client.get(url)  # warm per-process caches (content types, permissions)
    few = queries_for(client, url)
    for _ in range(30):
        vehicle = VehicleFactory(customer=world.customers["a1"])
        device_bind(vehicle=vehicle, device=DeviceFactory(customer=world.customers["a1"]))
    many = queries_for(client, url)
    assert few == many
