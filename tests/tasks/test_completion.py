"""What completing an order does: installs bind the scanned devices, repairs swap them, covert
visits record what was found, repossessions mark the car recovered. All or nothing."""

from __future__ import annotations

import pytest

from carloan.errors import ApplicationError, ConflictError
from devices.models import Device
from tasks import services
from tasks.completion import Completion
from tasks.models import WorkOrderDevice
from tests.factories import DeviceFactory
from tests.tasks.conftest import started
from vehicles.models import DeviceBinding
from vehicles.services import device_bind


def mounted(vehicle) -> set[str]:
    return set(
        DeviceBinding.objects.filter(vehicle=vehicle, unbound_at__isnull=True).values_list(
            "device__identifier", flat=True
        )
    )


def complete(field, order, worker="a1_installer", **data):
    return services.work_order_complete(order=order, by=field[worker], data=Completion(**data))


def test_an_install_binds_every_scanned_imei_and_marks_the_devices_installed(field, api):
    world = field.world
    vehicle = world.vehicles["a1"]
    # One from the branch's stock, one from the lender's (an ancestor's stock may be installed).
    branch_stock = world.stock["a1"]
    lender_stock = world.stock["a"]
    order = started(field)
    answer = api(field["a1_installer"]).post(
        f"/api/v1/mobile/orders/{order.pk}/complete/",
        {
            "imeis": [
                f" {branch_stock.identifier} ",
                lender_stock.identifier,
                branch_stock.identifier,
            ],
            "note": "both under the dashboard",
            "lat": 34.26,
            "lon": 108.94,
        },
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["status"] == "done" and body["result_note"] == "both under the dashboard"
    assert sorted(d["imei"] for d in body["devices"]) == sorted(
        [branch_stock.identifier, lender_stock.identifier]
    )
    assert {branch_stock.identifier, lender_stock.identifier} <= mounted(vehicle)
    for device in (branch_stock, lender_stock):
        device.refresh_from_db()
        assert device.status == Device.Status.INSTALLED
        binding = DeviceBinding.objects.get(device=device, unbound_at__isnull=True)
        assert binding.bound_by_id == field["a1_installer"].pk


@pytest.mark.parametrize(
    "imeis,code",
    [
        ([], "imeis_required"),
        (["359999999999999"], "unknown_device"),  # nobody's device
    ],
)
def test_a_bad_install_binds_nothing_and_stays_in_progress(field, api, imeis, code):
    world = field.world
    good = world.stock["a1"]
    order = started(field)
    answer = api(field["a1_installer"]).post(
        f"/api/v1/mobile/orders/{order.pk}/complete/",
        {"imeis": [good.identifier, *imeis] if imeis else []},
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    order.refresh_from_db()
    assert order.status == "in_progress" and order.finished_at is None
    good.refresh_from_db()
    assert good.status == Device.Status.STOCK  # rolled back with the rest
    assert not WorkOrderDevice.objects.exists()


def test_another_tenants_device_reads_as_unknown(field):
    order = started(field)
    other = field.world.stock["b1"]
    with pytest.raises(ApplicationError) as exc:
        complete(field, order, imeis=(other.identifier,))
    assert exc.value.code == "unknown_device" and other.identifier in exc.value.message
    other.refresh_from_db()
    assert other.status == Device.Status.STOCK


def test_a_sibling_branchs_stock_cannot_be_installed(field):
    order = started(field)
    with pytest.raises(ApplicationError) as exc:
        complete(field, order, imeis=(field.world.stock["a2"].identifier,))
    assert exc.value.code == "unknown_device"


def test_a_device_already_on_another_car_is_a_conflict_naming_it(field, api):
    world = field.world
    on_other_car = world.devices["a1"]  # mounted on the a1 vehicle by the world
    from tests.factories import VehicleFactory

    installer = field["a1_installer"]
    order = services.work_order_create(
        by=field["a_admin"],
        kind="install",
        vehicle=VehicleFactory(customer=world.customers["a1"]),
        assignee=installer,
    )
    services.work_order_accept(order=order, by=installer)
    services.work_order_start(order=order, by=installer)
    answer = api(field["a1_installer"]).post(
        f"/api/v1/mobile/orders/{order.pk}/complete/",
        {"imeis": [on_other_car.identifier]},
        format="json",
    )
    assert answer.status_code == 409
    assert on_other_car.identifier in answer.json()["detail"]
    assert world.vehicles["a1"].plate in answer.json()["detail"]


def test_faulty_devices_cannot_be_installed(field):
    device = field.world.stock["a1"]
    device.status = Device.Status.FAULTY
    device.save(update_fields=["status"])
    order = started(field)
    with pytest.raises(ConflictError):
        complete(field, order, imeis=(device.identifier,))


def test_a_repair_unbinds_the_faulty_device_and_binds_the_new_one(field):
    world = field.world
    vehicle = world.vehicles["a1"]
    old, new = world.devices["a1"], world.stock["a1"]
    order = started(field, kind="repair")
    complete(field, order, removed_imeis=(old.identifier,), imeis=(new.identifier,))
    assert mounted(vehicle) == {new.identifier}
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == (Device.Status.FAULTY, Device.Status.INSTALLED)
    actions = set(order.devices.values_list("device__identifier", "action"))
    assert actions == {(old.identifier, "removed"), (new.identifier, "installed")}


def test_a_repair_can_only_remove_what_is_on_the_car(field):
    world = field.world
    order = started(field, kind="repair")
    with pytest.raises(ConflictError) as exc:
        complete(field, order, removed_imeis=(world.stock["a1"].identifier,))
    assert "is not mounted on" in exc.value.message
    with pytest.raises(ApplicationError):
        complete(
            field,
            order,
            removed_imeis=(world.devices["a1"].identifier,),
            imeis=(world.devices["a1"].identifier,),
        )
    assert mounted(world.vehicles["a1"]) == {world.devices["a1"].identifier}


def test_a_repair_without_a_swap_is_fine(field):
    order = started(field, kind="repair")
    complete(field, order)
    order.refresh_from_db()
    assert order.status == "done"
    assert mounted(field.world.vehicles["a1"]) == {field.world.devices["a1"].identifier}


def test_a_covert_visit_must_say_whether_car_and_owner_were_found(field, api):
    order = started(field, kind="covert_visit", worker="a1_salesman")
    client = api(field["a1_salesman"])
    url = f"/api/v1/mobile/orders/{order.pk}/complete/"
    answer = client.post(url, {"car_found": True}, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "found_required" and "owner_found" in answer.json()["detail"]
    answer = client.post(url, {"car_found": True, "owner_found": False}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["car_found"], answer.json()["owner_found"]) == (True, False)


def test_visits_and_repossessions_do_not_touch_devices(field):
    order = started(field, kind="repossession", worker="a1_recovery")
    with pytest.raises(ApplicationError) as exc:
        complete(field, order, worker="a1_recovery", imeis=(field.world.stock["a1"].identifier,))
    assert exc.value.code == "unexpected_devices"
    complete(field, order, worker="a1_recovery")
    order.refresh_from_db()
    assert (order.status, order.car_found) == ("done", True)


def test_an_install_on_a_deleted_vehicle_is_refused(field):
    from vehicles.services import vehicle_soft_delete

    order = started(field)
    vehicle_soft_delete(vehicle=field.world.vehicles["a1"])
    order.refresh_from_db()
    with pytest.raises(ConflictError):
        complete(field, order, imeis=(field.world.stock["a1"].identifier,))


def test_rescanning_a_device_already_on_this_car_is_not_counted_again(field):
    world = field.world
    device = DeviceFactory(customer=world.customers["a1"])
    device_bind(vehicle=world.vehicles["a1"], device=device)
    order = started(field)
    complete(field, order, imeis=(device.identifier, world.stock["a1"].identifier))
    assert list(order.devices.values_list("device__identifier", flat=True)) == [
        world.stock["a1"].identifier
    ]
