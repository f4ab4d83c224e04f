"""Vehicles, devices and bindings through their services: the rules a user runs into."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from carloan.errors import ApplicationError, ConflictError
from devices.models import Device
from devices.services import device_create, device_restore, device_soft_delete, devices_move
from tests.factories import DeviceFactory, VehicleFactory
from vehicles.models import DeviceBinding, Vehicle
from vehicles.selectors import vehicles_visible_to
from vehicles.services import (
    device_bind,
    device_unbind,
    vehicle_create,
    vehicle_hard_delete,
    vehicle_restore,
    vehicle_soft_delete,
    vehicle_update,
)


def test_vehicle_create_validates_and_normalises(world):
    vehicle = vehicle_create(
        by=world.users["a_admin"],
        customer=world.customers["a1"],
        plate="陕a·d1234 5",
        vin="1m8gdm9axkp042788",
        borrower_id_number="11010519491231002x",
        borrower_phone="+86 138 0013 8000",
    )
    assert (vehicle.plate, vehicle.vin) == ("陕AD12345", "1M8GDM9AXKP042788")
    assert vehicle.borrower_id_number == "11010519491231002X"
    assert vehicle.borrower_phone == "13800138000"
    assert vehicle.history.get().history_user == world.users["a_admin"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plate", "陕A1234"),
        ("vin", "1M8GDM9A1KP042788"),
        ("borrower_id_number", "110105194912310021"),
        ("borrower_phone", "12345"),
    ],
)
def test_vehicle_create_refuses_bad_identifiers(world, field, value):
    fields = {"plate": "陕A12345", "vin": "1M8GDM9AXKP042788", field: value}
    with pytest.raises(ValidationError) as exc:
        vehicle_create(customer=world.customers["a1"], **fields)
    assert field in exc.value.message_dict


def test_plate_is_unique_among_live_vehicles(world):
    taken = world.vehicles["a1"].plate
    with pytest.raises(ValidationError):
        vehicle_create(customer=world.customers["a1"], plate=taken, vin="1M8GDM9AXKP042788")


def test_customer_outside_the_subtree_is_refused(world):
    with pytest.raises(ApplicationError):
        vehicle_create(
            by=world.users["a1_operator"],
            customer=world.customers["a2"],
            plate="陕A12345",
            vin="1M8GDM9AXKP042788",
        )


def test_bind_marks_installed_and_a_device_is_on_one_vehicle(world):
    vehicle, device = world.vehicles["a1"], world.stock["a1"]
    binding = device_bind(vehicle=vehicle, device=device, by=world.users["a1_installer"])
    device.refresh_from_db()
    assert device.status == Device.Status.INSTALLED
    assert binding.bound_by == world.users["a1_installer"]
    assert vehicle.bindings.filter(unbound_at__isnull=True).count() == 2  # wired + this one
    other = VehicleFactory(customer=world.customers["a1"])
    with pytest.raises(ConflictError, match="already on"):
        device_bind(vehicle=other, device=device)


def test_unbind_keeps_history_and_returns_device_to_stock(world):
    binding = world.vehicles["a1"].bindings.get()
    device_unbind(
        binding=binding, by=world.users["a1_operator"], device_status=Device.Status.FAULTY
    )
    binding.refresh_from_db()
    assert binding.unbound_at is not None and binding.unbound_by == world.users["a1_operator"]
    device = Device.objects.get(pk=binding.device_id)
    assert device.status == Device.Status.FAULTY
    with pytest.raises(ConflictError):
        device_bind(vehicle=world.vehicles["a1"], device=device)  # faulty devices are not installed
    with pytest.raises(ConflictError):
        device_unbind(binding=binding)


def test_a_device_of_another_branch_cannot_be_bound(world):
    with pytest.raises(ConflictError, match="move it first"):
        device_bind(vehicle=world.vehicles["a1"], device=world.stock["a2"])
    # a lender's stock can go on its branches' vehicles
    device_bind(vehicle=world.vehicles["a1"], device=world.stock["a"])


def test_soft_delete_hides_and_restore_brings_devices_back(world):
    vehicle, device = world.vehicles["a1"], world.devices["a1"]
    user = world.users["a_admin"]
    vehicle_soft_delete(vehicle=vehicle, by=user)
    assert not vehicles_visible_to(user).filter(pk=vehicle.pk).exists()
    assert not Vehicle.objects.filter(pk=vehicle.pk).exists()
    device.refresh_from_db()
    assert device.status == Device.Status.STOCK
    skipped = vehicle_restore(vehicle=Vehicle.all_objects.get(pk=vehicle.pk), by=user)
    assert skipped == []
    assert vehicles_visible_to(user).filter(pk=vehicle.pk).exists()
    active = DeviceBinding.objects.get(vehicle=vehicle, unbound_at__isnull=True)
    assert active.device_id == device.pk
    device.refresh_from_db()
    assert device.status == Device.Status.INSTALLED


def test_restore_reports_devices_that_moved_on(world):
    vehicle, device = world.vehicles["a1"], world.devices["a1"]
    vehicle_soft_delete(vehicle=vehicle)
    device_bind(vehicle=VehicleFactory(customer=world.customers["a1"]), device=device)
    skipped = vehicle_restore(vehicle=Vehicle.all_objects.get(pk=vehicle.pk))
    assert len(skipped) == 1 and device.identifier in skipped[0]


def test_restore_refused_when_plate_was_reused(world):
    vehicle = world.vehicles["a1"]
    vehicle_soft_delete(vehicle=vehicle)
    vehicle_create(customer=world.customers["a1"], plate=vehicle.plate, vin="1M8GDM9AXKP042788")
    with pytest.raises(ConflictError):
        vehicle_restore(vehicle=Vehicle.all_objects.get(pk=vehicle.pk))


def test_device_soft_delete_and_restore_with_binding(world):
    device = world.devices["a1"]
    device_soft_delete(device=device, by=world.users["a_admin"])
    assert not Device.objects.filter(pk=device.pk).exists()
    assert not world.vehicles["a1"].bindings.filter(unbound_at__isnull=True).exists()
    assert device_restore(device=Device.all_objects.get(pk=device.pk)) == []
    assert world.vehicles["a1"].bindings.get(unbound_at__isnull=True).device_id == device.pk


def test_deleted_identifier_can_be_reused_but_then_not_restored(world):
    device = world.stock["a1"]
    device_soft_delete(device=device)
    device_create(
        customer=world.customers["a1"], identifier=device.identifier, protocol="gt06", kind="wired"
    )
    with pytest.raises(ConflictError):
        device_restore(device=Device.all_objects.get(pk=device.pk))


def test_hard_delete_only_for_platform_admins_and_only_from_the_bin(world):
    vehicle = world.vehicles["a1"]
    with pytest.raises(ApplicationError):
        vehicle_hard_delete(vehicle=vehicle, by=world.users["platform_admin"])  # not in the bin
    vehicle_soft_delete(vehicle=vehicle)
    vehicle = Vehicle.all_objects.get(pk=vehicle.pk)
    with pytest.raises(ApplicationError):
        vehicle_hard_delete(vehicle=vehicle, by=world.users["a_admin"])
    vehicle_hard_delete(vehicle=vehicle, by=world.users["platform_admin"])
    assert not Vehicle.all_objects.filter(pk=vehicle.pk).exists()


def test_stock_moves_are_recorded_and_mounted_devices_stay_in_line(world):
    stock = world.stock["a"]
    assert (
        devices_move(
            devices=[stock],
            to_customer=world.customers["a1"],
            by=world.users["a_admin"],
            note="to branch",
        )
        == 1
    )
    move = stock.stock_moves.get()
    assert (move.from_customer, move.to_customer, move.moved_by.username) == (
        world.customers["a"],
        world.customers["a1"],
        "a_admin",
    )
    with pytest.raises(ConflictError, match="unbind it first"):
        devices_move(devices=[world.devices["a1"]], to_customer=world.customers["a2"])
    with pytest.raises(ApplicationError):
        devices_move(devices=[stock], to_customer=world.customers["b"], by=world.users["a_admin"])


def test_device_identifier_validated_per_protocol(world):
    with pytest.raises(ValidationError) as exc:
        device_create(
            customer=world.customers["a1"],
            identifier="490154203237517",
            protocol="gt06",
            kind="wired",
        )
    assert "identifier" in exc.value.message_dict
    device = device_create(
        customer=world.customers["a1"],
        identifier="013912345678",
        protocol="jt808",
        kind="wireless",
        work_mode="alarm_clock",
        work_params={"times": ["20:00", "08:00"]},
    )
    assert device.work_params == {"times": ["08:00", "20:00"]}
    with pytest.raises(ValidationError) as exc:
        device_create(
            customer=world.customers["a1"],
            identifier="013912345679",
            protocol="jt808",
            kind="wireless",
            work_mode="deep_sleep",
            work_params={"days": 40},
        )
    assert "work_params" in exc.value.message_dict


def test_status_changes_follow_the_binding(world):
    from devices.services import device_update

    with pytest.raises(ApplicationError):
        device_update(device=world.stock["a1"], status=Device.Status.INSTALLED)
    with pytest.raises(ConflictError):
        device_update(device=world.devices["a1"], status=Device.Status.FAULTY)
    device_update(device=world.stock["a1"], status=Device.Status.SCRAPPED)


def test_vehicle_update_resets_overdue_days_when_not_overdue(world):
    vehicle = vehicle_update(
        vehicle=world.vehicles["a1"], repayment_status="overdue", overdue_days=12
    )
    assert vehicle.overdue_days == 12
    vehicle = vehicle_update(vehicle=vehicle, repayment_status="settled")
    vehicle.refresh_from_db()
    assert vehicle.overdue_days == 0


def test_factories_make_valid_rows(world):
    DeviceFactory(customer=world.customers["a1"]).full_clean()
    VehicleFactory(customer=world.customers["a1"]).full_clean()
