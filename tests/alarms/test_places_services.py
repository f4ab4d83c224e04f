"""Services of the places (alarms.services.places): who may write what, geometry checks, fence
binding scope, the vehicle's current position for arming and annotations, settings validation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.utils import timezone

from alarms.models import AlarmSetting, Annotation, Arming, RiskPoint
from alarms.services import places as svc
from carloan.errors import ApplicationError
from devices.models import Device
from tests.factories import DeviceFactory
from vehicles.services import device_bind, device_unbind

XIAN = (34.2610, 108.9423)
SQUARE = [[108.90, 34.20], [109.00, 34.20], [109.00, 34.30], [108.90, 34.30], [108.90, 34.20]]
HOLE = [[108.94, 34.24], [108.96, 34.24], [108.96, 34.26], [108.94, 34.26], [108.94, 34.24]]


def report(device, lat, lon, minutes_ago=0):
    """What the gateway writes on a valid realtime fix (the device's last-known state)."""
    Device.objects.filter(pk=device.pk).update(
        last_position=Point(lon, lat, srid=4326),
        last_fix_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
    )


def code_of(excinfo) -> str:
    return excinfo.value.code


# --- Risk points ----------------------------------------------------------------------------------
def test_only_platform_admins_write_risk_points(world):
    with pytest.raises(ApplicationError) as exc:
        svc.risk_point_create(
            name="x", kind="repair_shop", lat=34.2, lon=108.9, by=world.users["a_admin"]
        )
    assert code_of(exc) == "permission_denied"
    rp = svc.risk_point_create(
        name="车管所",
        kind="registration_office",
        lat=34.2,
        lon=108.9,
        by=world.users["platform_admin"],
    )
    with pytest.raises(ApplicationError):
        svc.risk_point_update(risk_point=rp, name="y", by=world.users["b_admin"])
    with pytest.raises(ApplicationError):
        svc.risk_point_delete(risk_point=rp, by=world.users["a1_operator"])
    svc.risk_point_update(risk_point=rp, lat=35.0, radius_m=500, by=world.users["platform_admin"])
    rp.refresh_from_db()
    assert (rp.point.y, rp.point.x, rp.radius_m) == (35.0, 108.9, 500)


def test_risk_point_values_are_checked(world):
    with pytest.raises(ApplicationError, match="Latitude"):
        svc.risk_point_create(name="x", kind="custom", lat=134.0, lon=34.0)
    with pytest.raises(ValidationError) as exc:
        svc.risk_point_create(name="x", kind="custom", lat=34.0, lon=108.0, radius_m=5)
    assert "radius_m" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        svc.risk_point_create(name="x", kind="casino", lat=34.0, lon=108.0)
    assert "kind" in exc.value.message_dict
    assert not RiskPoint.objects.exists()


# --- Annotations ----------------------------------------------------------------------------------
def test_annotation_needs_a_visible_customer(world):
    with pytest.raises(ApplicationError) as exc:
        svc.annotation_create(
            customer=world.customers["b"], name="x", lat=34, lon=108, by=world.users["a_admin"]
        )
    assert code_of(exc) == "not_found"
    note = svc.annotation_create(
        customer=world.customers["a1"], name="yard", lat=34, lon=108, by=world.users["a_admin"]
    )
    assert note.created_by == world.users["a_admin"] and note.shared


def test_annotation_from_vehicle_uses_the_freshest_valid_fix_of_its_mounted_devices(world):
    vehicle, user = world.vehicles["a1"], world.users["a1_operator"]
    with pytest.raises(ApplicationError, match="no valid position") as exc:
        svc.annotation_from_vehicle(vehicle=vehicle, name="here", by=user)
    assert code_of(exc) == "no_position"

    second = DeviceFactory(customer=world.customers["a1"])
    device_bind(vehicle=vehicle, device=second)
    report(world.devices["a1"], *XIAN, minutes_ago=30)
    report(second, 34.30, 108.99, minutes_ago=2)  # fresher
    note = svc.annotation_from_vehicle(
        vehicle=vehicle, name="here", radius_m=300, shared=False, by=user
    )
    assert (note.point.y, note.point.x) == (34.30, 108.99)
    assert (note.customer_id, note.radius_m, note.shared) == (vehicle.customer_id, 300, False)

    binding = second.bindings.get(unbound_at__isnull=True)
    device_unbind(binding=binding)  # an unmounted device no longer says where the car is
    note = svc.annotation_from_vehicle(vehicle=vehicle, name="again", by=user)
    assert (note.point.y, note.point.x) == XIAN


def test_annotation_from_an_invisible_vehicle_is_not_found(world):
    report(world.devices["b1"], *XIAN)
    with pytest.raises(ApplicationError) as exc:
        svc.annotation_from_vehicle(
            vehicle=world.vehicles["b1"], name="x", by=world.users["a_admin"]
        )
    assert code_of(exc) == "not_found"


def test_private_annotations_belong_to_their_author(world):
    author, colleague = world.users["a1_operator"], world.users["a_admin"]
    note = svc.annotation_create(
        customer=world.customers["a1"], name="mine", lat=34, lon=108, shared=False, by=author
    )
    with pytest.raises(ApplicationError) as exc:
        svc.annotation_update(annotation=note, name="ours", by=colleague)
    assert code_of(exc) == "not_found"  # the colleague does not even see it
    svc.annotation_update(annotation=note, name="still mine", lat=34.5, by=author)
    svc.annotation_update(annotation=note, shared=True, by=author)
    with pytest.raises(ApplicationError) as exc:
        svc.annotation_update(annotation=note, shared=False, by=colleague)
    assert code_of(exc) == "permission_denied"
    svc.annotation_delete(annotation=note, by=colleague)  # shared now: the subtree may
    assert not Annotation.objects.exists()


# --- Geofences ------------------------------------------------------------------------------------
def test_polygon_fence_from_geojson_with_a_hole_and_rings_left_open(world):
    open_ring = SQUARE[:-1]
    fence = svc.geofence_create(
        customer=world.customers["a"],
        name="yard",
        shape="polygon",
        polygon={"type": "Polygon", "coordinates": [open_ring, HOLE]},
        by=world.users["a_admin"],
    )
    fence.refresh_from_db()
    assert len(fence.polygon) == 2  # exterior + hole
    assert fence.polygon.contains(Point(108.91, 34.21)) and not fence.polygon.contains(
        Point(108.95, 34.25)
    )


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1]]]}, "not valid"),
        ({"type": "Point", "coordinates": [108, 34]}, "one GeoJSON Polygon"),
        ({"type": "Polygon", "coordinates": [[[108, 34], [109, 34]]]}, "at least 3"),
        ({"type": "Polygon", "coordinates": [[[108, 34], [109, 34], [109, 95]]]}, "Latitude"),
        ("POLYGON nonsense", "neither GeoJSON nor WKT"),
        ("MULTIPOINT ((0 0), (1 1))", "one polygon"),
    ],
)
def test_bad_polygons_are_refused_with_a_reason(world, polygon, message):
    with pytest.raises(ApplicationError, match=message):
        svc.geofence_create(
            customer=world.customers["a"], name="bad", shape="polygon", polygon=polygon
        )


def test_circle_fence_needs_centre_and_radius_and_can_become_a_polygon(world):
    with pytest.raises(ApplicationError, match="centre and a radius"):
        svc.geofence_create(customer=world.customers["a"], name="c", shape="circle", center=XIAN)
    fence = svc.geofence_create(
        customer=world.customers["a"], name="c", shape="circle", center=XIAN, radius_m=800
    )
    assert (fence.center.y, fence.center.x, fence.radius_m) == (*XIAN, 800)
    with pytest.raises(ApplicationError, match="polygon"):
        svc.geofence_update(geofence=fence, shape="polygon")
    svc.geofence_update(
        geofence=fence, shape="polygon", polygon={"type": "Polygon", "coordinates": [SQUARE]}
    )
    fence.refresh_from_db()
    assert (fence.shape, fence.center, fence.radius_m) == ("polygon", None, None)


def test_fences_bind_only_visible_vehicles_of_their_customers_subtree(world):
    a_admin = world.users["a_admin"]
    fence = svc.geofence_create(
        customer=world.customers["a1"],
        name="A1 yard",
        shape="circle",
        center=XIAN,
        radius_m=500,
        by=a_admin,
    )
    assert svc.geofence_bind(geofence=fence, vehicles=[world.vehicles["a1"]], by=a_admin) == 1
    assert svc.geofence_bind(geofence=fence, vehicles=[world.vehicles["a1"]], by=a_admin) == 0
    with pytest.raises(ApplicationError) as exc:  # visible to a_admin, but not A1's
        svc.geofence_bind(geofence=fence, vehicles=[world.vehicles["a2"]], by=a_admin)
    assert code_of(exc) == "outside_subtree"
    with pytest.raises(ApplicationError) as exc:  # another tenant's vehicle
        svc.geofence_bind(geofence=fence, vehicles=[world.vehicles["b1"]], by=a_admin)
    assert code_of(exc) == "not_found"
    with pytest.raises(ApplicationError) as exc:  # B cannot even see the fence
        svc.geofence_bind(geofence=fence, vehicles=[], by=world.users["b_admin"])
    assert code_of(exc) == "not_found"
    assert list(fence.vehicles.all()) == [world.vehicles["a1"]]


def test_setting_a_fences_vehicles_keeps_bindings_of_vehicles_in_the_recycle_bin(world):
    from vehicles.services import vehicle_restore, vehicle_soft_delete

    a_admin = world.users["a_admin"]
    a1, a2 = world.vehicles["a1"], world.vehicles["a2"]
    fence = svc.geofence_create(
        customer=world.customers["a"], name="A", shape="circle", center=XIAN, radius_m=500
    )
    svc.geofence_bind(geofence=fence, vehicles=[a1, a2], by=a_admin)
    vehicle_soft_delete(vehicle=a2, by=a_admin)
    svc.geofence_set_vehicles(geofence=fence, vehicles=[], by=a_admin)  # the form's empty list
    assert list(fence.vehicles.all()) == []
    vehicle_restore(vehicle=a2, by=a_admin)
    assert list(fence.vehicles.all()) == [a2]  # back from the bin with its fence


# --- Arming and usual areas -----------------------------------------------------------------------
def test_arming_at_the_current_position_and_disarming(world):
    vehicle, user = world.vehicles["a1"], world.users["a1_operator"]
    with pytest.raises(ApplicationError, match="cannot be armed") as exc:
        svc.vehicle_arm(vehicle=vehicle, by=user)
    assert code_of(exc) == "no_position"
    report(world.devices["a1"], *XIAN)
    arming = svc.vehicle_arm(vehicle=vehicle, by=user)
    assert (arming.point.y, arming.point.x, arming.radius_m) == (*XIAN, 200)
    assert arming.armed_by == user
    report(world.devices["a1"], 34.27, 108.95)
    svc.vehicle_arm(vehicle=vehicle, radius_m=500, by=user)  # re-arm where it is now
    arming = Arming.objects.get(vehicle=vehicle)
    assert (arming.point.y, arming.radius_m) == (34.27, 500)
    with pytest.raises(ValidationError):
        svc.vehicle_arm(vehicle=vehicle, radius_m=5, by=user)
    assert svc.vehicle_disarm(vehicle=vehicle, by=user) is True
    assert svc.vehicle_disarm(vehicle=vehicle, by=user) is False
    with pytest.raises(ApplicationError) as exc:
        svc.vehicle_arm(vehicle=world.vehicles["b1"], by=user)
    assert code_of(exc) == "not_found"


def test_usual_areas_per_vehicle(world):
    user = world.users["a1_operator"]
    area = svc.usual_area_create(vehicle=world.vehicles["a1"], name="home", lat=34.2, lon=108.9)
    assert area.radius_m == 500
    svc.usual_area_update(usual_area=area, name="work", lon=109.0, by=user)
    area.refresh_from_db()
    assert (area.name, area.point.x, area.point.y) == ("work", 109.0, 34.2)
    with pytest.raises(ApplicationError) as exc:
        svc.usual_area_delete(usual_area=area, by=world.users["b_admin"])
    assert code_of(exc) == "not_found"
    svc.usual_area_delete(usual_area=area, by=user)


# --- Custom types and settings --------------------------------------------------------------------
def test_custom_alarm_types_need_a_sound_condition(world):
    a = world.customers["a"]
    with pytest.raises(ApplicationError, match="at least one condition"):
        svc.custom_alarm_type_create(customer=a, name="nothing")
    with pytest.raises(ApplicationError, match="lowest speed"):
        svc.custom_alarm_type_create(customer=a, name="x", min_speed_kmh=80, max_speed_kmh=20)
    fence = svc.geofence_create(customer=a, name="f", shape="circle", center=XIAN, radius_m=300)
    note = svc.annotation_create(customer=a, name="n", lat=34, lon=108)
    with pytest.raises(ApplicationError, match="not both"):
        svc.custom_alarm_type_create(customer=a, name="x", geofence=fence, annotation=note)
    with pytest.raises(ApplicationError) as exc:  # B cannot use A's fence
        svc.custom_alarm_type_create(
            customer=world.customers["b"], name="x", geofence=fence, by=world.users["b_admin"]
        )
    assert code_of(exc) == "not_found"
    ct = svc.custom_alarm_type_create(
        customer=a, name="night moves", time_from=dt.time(22), time_to=dt.time(5), acc=True
    )
    svc.custom_alarm_type_update(custom_type=ct, geofence=fence, duration_s=60)
    ct.refresh_from_db()
    assert (ct.geofence_id, ct.duration_s) == (fence.pk, 60)


def test_alarm_setting_upsert_validates_kind_target_and_params(world):
    a = world.customers["a"]
    with pytest.raises(ApplicationError, match="Unknown alarm kind"):
        svc.alarm_setting_upsert(kind="teleport", customer=a)
    with pytest.raises(ApplicationError, match="either a customer or a vehicle"):
        svc.alarm_setting_upsert(kind="overspeed")
    with pytest.raises(ApplicationError, match="Parameter"):
        svc.alarm_setting_upsert(kind="overspeed", customer=a, params={"limit_kmh": {"x": 1}})
    with pytest.raises(ApplicationError) as exc:
        svc.alarm_setting_upsert(kind="overspeed", customer=a, params={"top_speed": 90})
    assert code_of(exc) == "bad_params"  # not a parameter of the overspeed rule
    with pytest.raises(ApplicationError) as exc:
        svc.alarm_setting_upsert(
            kind="overspeed", customer=world.customers["b"], by=world.users["a_admin"]
        )
    assert code_of(exc) == "not_found"

    setting = svc.alarm_setting_upsert(
        kind="overspeed", customer=a, level=3, params={"limit_kmh": 100}
    )
    again = svc.alarm_setting_upsert(kind="overspeed", customer=a, params={"limit_kmh": 90})
    assert again.pk == setting.pk and AlarmSetting.objects.count() == 1
    assert (again.level, again.params) == (None, {"limit_kmh": 90})
    on_vehicle = svc.alarm_setting_upsert(
        kind="overspeed", vehicle=world.vehicles["a1"], enabled=False
    )
    assert on_vehicle.customer_id is None and AlarmSetting.objects.count() == 2
