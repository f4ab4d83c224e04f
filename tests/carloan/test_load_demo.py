"""`manage.py load_demo`: the demo tree, personas that can log in with the printed passwords,
idempotence, --reset, and that the demo shows tenancy (a lender admin sees only their lender)."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.models import Customer, Role, User
from accounts.selectors import branding_for
from carloan.demo import PERSONAS, DemoError, load_demo
from devices.models import Device, DeviceModel, Manufacturer
from devices.services import device_create
from tests.factories import CustomerFactory, UserFactory
from vehicles.models import DeviceBinding, Vehicle
from vehicles.selectors import vehicles_visible_to

pytestmark = pytest.mark.django_db

N = 20
DEMO_CODES = {"platform", "changan", "changan-yanta", "changan-weiyang", "xibu", "xibu-xianyang"}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo", "--vehicles", str(N), *args, stdout=out)
    return out.getvalue()


def printed_credentials(output: str) -> dict[str, str]:
    """username -> password from the table the command prints (rows under the dashed line)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line.split()[:2])
    return dict(rows)


def row_counts() -> dict[str, int]:
    return {
        model.__name__: manager.count()
        for model, manager in (
            (Customer, Customer.objects),
            (Role, Role.objects),
            (User, User.objects),
            (Manufacturer, Manufacturer.objects),
            (DeviceModel, DeviceModel.objects),
            (Vehicle, Vehicle.all_objects),
            (Device, Device.all_objects),
            (DeviceBinding, DeviceBinding.objects),
        )
    }


def subtree_vehicle_ids(code: str) -> set[int]:
    customer = Customer.objects.get(code=code)
    return set(
        Vehicle.objects.filter(
            customer__in=customer.get_descendants(include_self=True)
        ).values_list("pk", flat=True)
    )


def visible_ids(username: str) -> set[int]:
    return set(
        vehicles_visible_to(User.objects.get(username=username)).values_list("pk", flat=True)
    )


def test_builds_the_tree_with_branding_inherited_from_the_lenders():
    result = load_demo(vehicles=N)

    assert result.created
    nodes = {
        c.code: c for c in Customer.objects.get(code="platform").get_descendants(include_self=True)
    }
    assert set(nodes) == DEMO_CODES
    assert nodes["changan"].parent_id == nodes["xibu"].parent_id == nodes["platform"].pk
    assert (
        nodes["changan-yanta"].parent_id
        == nodes["changan-weiyang"].parent_id
        == nodes["changan"].pk
    )
    assert nodes["xibu-xianyang"].parent_id == nodes["xibu"].pk
    # Branches have no title of their own and show their lender's.
    assert nodes["changan-yanta"].brand_title == ""
    assert branding_for(nodes["changan-yanta"]).title == nodes["changan"].brand_title != ""
    assert branding_for(nodes["xibu-xianyang"]).title == nodes["xibu"].brand_title != ""
    assert nodes["changan"].brand_title != nodes["xibu"].brand_title


def test_vehicles_carry_valid_trackers_over_all_protocols_and_lenders_keep_stock():
    load_demo(vehicles=N)

    vehicles = list(Vehicle.objects.all())
    assert len(vehicles) == N
    for vehicle in vehicles:
        vehicle.full_clean()  # plate, VIN, borrower ID number and phone all pass the validators
        assert vehicle.borrower_id_number.startswith("6101")
        assert 50_000 <= vehicle.loan_principal <= 300_000
        assert vehicle.loan_term_months in (12, 24, 36)
    mounted = Counter(
        DeviceBinding.objects.filter(unbound_at__isnull=True).values_list(
            "vehicle_id", "device__kind"
        )
    )
    for vehicle in vehicles:
        assert mounted[(vehicle.pk, "wired")] == 1
        assert mounted[(vehicle.pk, "wireless")] in (0, 1)
    devices = list(Device.objects.all())
    for device in devices:
        device.full_clean()  # identifiers valid for their protocol, model matches
    assert {d.protocol for d in devices} == {"gt06", "jt808", "h02"}
    installed = [d for d in devices if d.status == Device.Status.INSTALLED]
    assert all(d.last_seen_at and d.last_position for d in installed)
    assert all(
        abs(d.last_position.y - 34.26) <= 0.4 and abs(d.last_position.x - 108.94) <= 0.4
        for d in installed
    )
    for lender in ("changan", "xibu"):
        subtree = Customer.objects.get(code=lender).get_descendants(include_self=True)
        assert Device.objects.filter(customer__in=subtree, status=Device.Status.STOCK).exists()
    assert any(d.status == Device.Status.FAULTY for d in devices)


def test_every_printed_persona_logs_in_with_the_printed_password():
    output = run()

    credentials = printed_credentials(output)
    assert set(credentials) == {p.username for p in PERSONAS}
    for username, password in credentials.items():
        user = User.objects.get(username=username)
        assert user.customer.name in output
        assert Client().login(username=username, password=password), username
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.customer.code == "platform"
    installer = User.objects.get(username="yanta_installer")
    assert installer.kind == User.Kind.INSTALLER and not installer.is_staff
    assert installer.has_perm("vehicles.add_devicebinding")
    assert not installer.has_perm("vehicles.change_vehicle")
    assert {User.objects.get(username=u).kind for u in credentials} >= {
        User.Kind.STAFF,
        User.Kind.INSTALLER,
        User.Kind.SALESMAN,
        User.Kind.RECOVERY,
    }


def test_a_second_run_creates_nothing_and_prints_the_credentials_again():
    first = run()
    before = row_counts()

    second = run()

    assert row_counts() == before
    assert "nothing created" in second
    assert printed_credentials(second) == printed_credentials(first)


def test_reset_deletes_the_demo_and_rebuilds_the_same_data():
    run()
    old_vehicle_ids = set(Vehicle.objects.values_list("pk", flat=True))
    old_plates = set(Vehicle.objects.values_list("plate", flat=True))
    old_platform = Customer.objects.get(code="platform").pk
    before = row_counts()
    # Things a demo user leaves behind: login events, an API token, a soft-deleted vehicle.
    assert Client().login(username="changan_admin", password="demo-changan-2026")
    Token.objects.create(user=User.objects.get(username="yanta_operator"))
    Vehicle.objects.filter(pk=min(old_vehicle_ids)).update(deleted_at="2026-01-01T00:00:00Z")

    output = run("--reset")

    assert "Deleted the demo data set" in output
    assert Customer.objects.get(code="platform").pk != old_platform
    assert row_counts() == before
    assert (
        set(Vehicle.objects.values_list("plate", flat=True)) == old_plates
    )  # same seed, same data
    assert Vehicle.history.filter(id__in=old_vehicle_ids).count() == 0
    assert Client().login(username="changan_admin", password="demo-changan-2026")


def test_a_different_seed_gives_different_vehicles():
    load_demo(vehicles=N)
    plates = set(Vehicle.objects.values_list("plate", flat=True))

    load_demo(vehicles=N, seed=7, reset=True)

    assert set(Vehicle.objects.values_list("plate", flat=True)) != plates


def test_a_lender_admin_sees_only_their_lender_s_vehicles():
    load_demo(vehicles=N)

    changan, xibu = subtree_vehicle_ids("changan"), subtree_vehicle_ids("xibu")
    assert changan and xibu and not changan & xibu
    assert visible_ids("changan_admin") == changan
    assert visible_ids("xibu_admin") == xibu
    assert visible_ids("yanta_operator") == subtree_vehicle_ids("changan-yanta") < changan
    assert visible_ids("admin") == set(Vehicle.objects.values_list("pk", flat=True))


def test_an_unrelated_platform_customer_is_neither_reused_nor_deleted():
    CustomerFactory(code="platform", name="A real platform")

    with pytest.raises(CommandError, match="not the demo"):
        run()
    with pytest.raises(DemoError):
        load_demo(vehicles=N, reset=True)

    assert Customer.objects.filter(code="platform", name="A real platform").exists()
    assert not Vehicle.all_objects.exists()


def test_a_taken_username_stops_the_load_before_anything_is_written():
    UserFactory(username="changan_admin", customer=CustomerFactory(code="elsewhere"))

    with pytest.raises(DemoError, match="changan_admin"):
        load_demo(vehicles=N)

    assert not Customer.objects.filter(code="platform").exists()


def test_reset_refuses_when_data_outside_the_demo_uses_the_demo_catalogue():
    load_demo(vehicles=N)
    before = row_counts()
    outsider = CustomerFactory(code="elsewhere")
    # Someone outside the demo picked a device model of the demo's catalogue.
    device_create(
        customer=outsider,
        identifier="123456789012",
        protocol="jt808",
        kind="wired",
        model=DeviceModel.objects.get(name="JT808"),
    )

    with pytest.raises(CommandError, match="referenced by other data"):
        run("--reset")

    assert row_counts() == {
        **before,
        "Customer": before["Customer"] + 1,
        "Device": before["Device"] + 1,
    }
