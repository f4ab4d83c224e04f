"""The places index (alarms.spatial): exact answers in metres against brute force, polygons with
holes, fences only for their vehicles, hysteresis margins, annotations by customer subtree, the
loader's query count and the cache that rebuilds only when the data changed."""

from __future__ import annotations

import math
import random

import pytest
import shapely

from alarms import spatial
from alarms.services import places as svc
from alarms.spatial import (
    M_PER_DEG_LAT,
    PlaceIndex,
    PlaceIndexCache,
    haversine_m,
    load_place_index,
)

XIAN = (34.2610, 108.9423)


def offset(lat: float, lon: float, north_m: float = 0.0, east_m: float = 0.0):
    """A position `north_m` / `east_m` metres away (small distances, spherical earth)."""
    return (
        lat + north_m / M_PER_DEG_LAT,
        lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat))),
    )


def keys(places) -> set[str]:
    return {p.key for p in places}


# --- Exactness against brute force ----------------------------------------------------------------
def _random_world(seed: int):
    rng = random.Random(seed)
    lat0, lon0 = XIAN
    risk = []
    for i in range(3_000):
        radius = rng.choice([10, 50, 200, 500, 2_000, 5_000])
        lat, lon = lat0 + rng.uniform(-0.5, 0.5), lon0 + rng.uniform(-0.5, 0.5)
        risk.append((i + 1, "repair_shop", f"rp{i}", lat, lon, radius))
    for i in range(5):  # a few huge ones overlap everything near them
        risk.append((10_000 + i, "custom", f"big{i}", lat0, lon0 + i * 0.2, 50_000))
    notes = []
    for i in range(500):
        lat, lon = lat0 + rng.uniform(-0.5, 0.5), lon0 + rng.uniform(-0.5, 0.5)
        customer = rng.choice([2, 3, 4, 5])
        shared = rng.random() < 0.7
        notes.append((i + 1, f"n{i}", lat, lon, rng.choice([100, 800, 3_000]), customer, shared, 9))
    # 1 platform -> 2 lender A -> 3 branch A1 ; 1 -> 4 lender B -> 5 branch B1
    customers = [(1, None), (2, 1), (3, 2), (4, 1), (5, 4)]
    positions = [
        (lat0 + rng.uniform(-0.6, 0.6), lon0 + rng.uniform(-0.6, 0.6)) for _ in range(4_000)
    ]
    # Positions right at a circle's edge, both sides, where rounding would show.
    for _, _, _, lat, lon, radius in rng.sample(risk, 200):
        bearing = rng.uniform(0, 2 * math.pi)
        for d in (radius - 0.5, radius + 0.5):
            positions.append(offset(lat, lon, d * math.cos(bearing), d * math.sin(bearing)))
    return risk, notes, customers, positions


def test_circles_match_brute_force_haversine_on_random_data():
    risk, notes, customers, positions = _random_world(seed=20261122)
    index = PlaceIndex(risk_points=risk, annotations=notes, customers=customers)
    paths = {3: {1, 2, 3}, 5: {1, 4, 5}, 1: {1}}
    found = 0
    for lat, lon in positions:
        expected = {f"riskpoint:{r[0]}" for r in risk if haversine_m(lat, lon, r[3], r[4]) <= r[5]}
        assert keys(index.risk_points_at(lat, lon)) == expected
        found += len(expected)
        for customer_id, path in paths.items():
            expected_notes = {
                f"annotation:{n[0]}"
                for n in notes
                if n[5] in path and haversine_m(lat, lon, n[2], n[3]) <= n[4]
            }
            assert keys(index.annotations_at(lat, lon, customer_id)) == expected_notes
            assert keys(index.annotations_at(lat, lon, frozenset(path))) == expected_notes
    assert found > 1_000  # the data really overlaps: the test compares something


def test_prefetched_batch_gives_the_same_answers_as_single_lookups():
    risk, notes, customers, positions = _random_world(seed=7)
    single = PlaceIndex(risk_points=risk, annotations=notes, customers=customers)
    batched = PlaceIndex(risk_points=risk, annotations=notes, customers=customers)
    batch = positions[:500] + positions[:50]  # repeated positions (parked cars) too
    batched.prefetch(batch)
    for lat, lon in batch:
        assert keys(batched.risk_points_at(lat, lon)) == keys(single.risk_points_at(lat, lon))
        assert keys(batched.annotations_at(lat, lon, 3)) == keys(single.annotations_at(lat, lon, 3))
    # A position outside the prefetched batch is still answered.
    lat, lon = risk[0][3], risk[0][4]
    assert "riskpoint:1" in keys(batched.risk_points_at(lat, lon))


@pytest.mark.parametrize("lat", [0.0, 34.26, 53.5, 60.0, 75.0])
def test_circles_are_metres_at_any_latitude(lat):
    """A degree of longitude at 60 N is half a degree of latitude: a circle drawn in degrees
    would be twice too wide east-west there."""
    index = PlaceIndex(risk_points=[(1, "custom", "office", lat, 100.0, 1_000)])
    for north, east in ((995, 0), (0, 995), (-700, 700), (0, -995)):
        assert keys(index.risk_points_at(*offset(lat, 100.0, north, east))) == {"riskpoint:1"}
    for north, east in ((1_005, 0), (0, 1_005), (-720, 720), (0, -1_005)):
        assert index.risk_points_at(*offset(lat, 100.0, north, east)) == []


# --- Fences -----------------------------------------------------------------------------------
def _square(lat, lon, half_m):
    (s, w), (n, e) = offset(lat, lon, -half_m, -half_m), offset(lat, lon, half_m, half_m)
    return [(w, s), (e, s), (e, n), (w, n), (w, s)]


def _fence_index():
    lat, lon = XIAN
    ring = shapely.Polygon(_square(lat, lon, 1_000), holes=[_square(lat, lon, 300)])
    fences = [
        (1, "yard with a hole", "polygon", ring, None, None, None, {"enter": True}),
        (2, "circle", "circle", None, lat + 0.1, lon, 500, {"parking": True}),
    ]
    return PlaceIndex(fences=fences, bindings=[(1, 7), (2, 7), (2, 8)])


def test_polygon_fences_respect_holes_and_count_the_edge_as_inside():
    index = _fence_index()
    lat, lon = XIAN
    assert index.fences_at(7, *offset(lat, lon, 600, 0))[0].key == "fence:1"  # in the ring
    assert index.fences_at(7, lat, lon) == []  # in the hole
    assert index.fences_at(7, *offset(lat, lon, 0, 1_200)) == []  # outside
    edge_lon = _square(lat, lon, 1_000)[1][0]
    assert keys(index.fences_at(7, lat + 0.001, edge_lon)) == {"fence:1"}


def test_fences_apply_only_to_their_vehicles_and_carry_their_options():
    index = _fence_index()
    lat, lon = XIAN
    inside_ring = offset(lat, lon, 600, 0)
    assert index.fences_at(8, *inside_ring) == []  # fence 1 is not bound to vehicle 8
    assert index.fences_at(99, *inside_ring) == []
    circle = index.fences_at(8, *offset(lat + 0.1, lon, 0, 480))
    assert keys(circle) == {"fence:2"}
    assert circle[0].options == {"parking": True}
    assert index.fences_at(8, *offset(lat + 0.1, lon, 0, 520)) == []
    assert keys(index.fences_of(7)) == {"fence:1", "fence:2"}


def test_within_grows_or_shrinks_a_place_by_the_margin():
    lat, lon = XIAN
    index = PlaceIndex(risk_points=[(1, "custom", "p", lat, lon, 200)], fences=[], bindings=[])
    out_230 = offset(lat, lon, 0, 230)
    assert index.within("riskpoint:1", *out_230, margin_m=50)
    assert not index.within("riskpoint:1", *out_230, margin_m=20)
    assert not index.within("riskpoint:1", *out_230)
    assert index.within("riskpoint:1", *offset(lat, lon, 150, 0), margin_m=-40)
    assert not index.within("riskpoint:1", *offset(lat, lon, 150, 0), margin_m=-60)
    assert not index.within("riskpoint:2", lat, lon, 1_000)  # deleted: the vehicle left it

    fences = _fence_index()
    outside_30 = offset(lat, lon, 0, 1_030)
    assert fences.within("fence:1", *outside_30, margin_m=50)
    assert not fences.within("fence:1", *outside_30, margin_m=10)
    inside_30 = offset(lat, lon, 0, 970)
    assert fences.within("fence:1", *inside_30, margin_m=-20)
    assert not fences.within("fence:1", *inside_30, margin_m=-40)
    in_hole_40 = offset(lat, lon, 0, 260)  # 40 m inside the hole, i.e. outside the fence
    assert fences.within("fence:1", *in_hole_40, margin_m=50)
    assert not fences.within("fence:1", *in_hole_40, margin_m=30)
    assert fences.within("fence:2", *offset(lat + 0.1, lon, 530, 0), margin_m=50)


def test_annotations_apply_down_the_customer_tree_private_ones_too():
    lat, lon = XIAN
    notes = [
        (1, "lender A's yard", lat, lon, 300, 2, True, 10),
        (2, "branch A1's private spot", lat, lon, 300, 3, False, 11),
    ]
    index = PlaceIndex(annotations=notes, customers=[(1, None), (2, 1), (3, 2), (4, 1)])
    assert index.customer_path(3) == frozenset({1, 2, 3})
    assert keys(index.annotations_at(lat, lon, 3)) == {"annotation:1", "annotation:2"}
    assert keys(index.annotations_at(lat, lon, 2)) == {"annotation:1"}  # not a child's
    assert index.annotations_at(lat, lon, 4) == []  # a sibling lender sees nothing
    private = index.annotations_at(lat, lon, 3)[1]
    assert (private.shared, private.owner_id, private.customer_id) == (False, 11, 3)
    assert index.risk_points_at(lat, lon) == []


def test_places_out_of_range_are_refused():
    with pytest.raises(ValueError, match="out of range"):
        PlaceIndex(risk_points=[(1, "custom", "x", 95.0, 100.0, 100)])
    with pytest.raises(ValueError, match="out of range"):
        PlaceIndex(risk_points=[(1, "custom", "x", 30.0, 100.0, 0)])


# --- Loading and caching ------------------------------------------------------------------------
def _seed_places(world):
    lat, lon = XIAN
    rp = svc.risk_point_create(name="车管所", kind="registration_office", lat=lat, lon=lon)
    note = svc.annotation_create(
        customer=world.customers["a"], name="yard", lat=lat + 0.01, lon=lon, radius_m=300
    )
    polygon = {"type": "Polygon", "coordinates": [_square(lat + 0.05, lon, 500)]}
    fence = svc.geofence_create(
        customer=world.customers["a"],
        name="depot",
        shape="polygon",
        polygon=polygon,
        alarm_inside=True,
        vehicles=[world.vehicles["a1"]],
    )
    circle = svc.geofence_create(
        customer=world.customers["b"],
        name="ring",
        shape="circle",
        center=(lat - 0.05, lon),
        radius_m=400,
        vehicles=[world.vehicles["b1"]],
    )
    return rp, note, fence, circle


def test_loader_reads_each_table_once_and_answers_from_memory(world, django_assert_num_queries):
    rp, note, fence, circle = _seed_places(world)
    lat, lon = XIAN
    with django_assert_num_queries(5):
        index = load_place_index()
    a1, b1 = world.vehicles["a1"], world.vehicles["b1"]
    with django_assert_num_queries(0):
        assert keys(index.risk_points_at(lat, lon)) == {f"riskpoint:{rp.pk}"}
        found = index.annotations_at(lat + 0.01, lon, a1.customer_id)
        assert keys(found) == {f"annotation:{note.pk}"}
        assert index.annotations_at(lat + 0.01, lon, b1.customer_id) == []
        depot = index.fences_at(a1.pk, lat + 0.05, lon)
        assert keys(depot) == {f"fence:{fence.pk}"}
        assert depot[0].options["inside"] is True and depot[0].kind == "polygon"
        assert index.fences_at(b1.pk, lat + 0.05, lon) == []
        assert keys(index.fences_at(b1.pk, lat - 0.05, lon + 0.003)) == {f"fence:{circle.pk}"}
    assert index.counts == {"risk_points": 1, "annotations": 1, "fences": 2, "bound_vehicles": 2}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_cache_rebuilds_only_when_the_places_change(world, django_assert_num_queries):
    rp, note, fence, circle = _seed_places(world)
    clock = FakeClock()
    cache = PlaceIndexCache(check_every_s=5, clock=clock)
    first = cache.get()
    assert cache.rebuilds == 1
    with django_assert_num_queries(0):  # within the check interval: not even a version query
        assert cache.get() is first
    clock.now += 6
    assert cache.get() is first  # checked, nothing changed
    assert cache.rebuilds == 1

    lat, lon = XIAN
    svc.risk_point_update(risk_point=rp, lat=lat + 1, lon=lon)
    assert cache.get() is first  # not yet: the interval has not passed
    clock.now += 6
    second = cache.get()
    assert cache.rebuilds == 2
    assert second.risk_points_at(lat, lon) == []
    assert keys(second.risk_points_at(lat + 1, lon)) == {f"riskpoint:{rp.pk}"}

    # Binding a vehicle, deleting an annotation: each seen at the next check.
    svc.geofence_bind(geofence=fence, vehicles=[world.vehicles["a2"]])
    clock.now += 6
    third = cache.get()
    assert cache.rebuilds == 3
    assert keys(third.fences_at(world.vehicles["a2"].pk, lat + 0.05, lon)) == {f"fence:{fence.pk}"}
    svc.annotation_delete(annotation=note)
    cache.invalidate()
    assert cache.get().annotations_at(lat + 0.01, lon, world.customers["a1"].pk) == []
    assert cache.rebuilds == 4


def test_cache_sees_a_customer_moved_under_another_parent(world):
    _seed_places(world)
    clock = FakeClock()
    cache = PlaceIndexCache(check_every_s=5, clock=clock)
    lat, lon = XIAN
    a2 = world.customers["a2"]
    assert cache.get().annotations_at(lat + 0.01, lon, a2.pk)  # lender A's yard applies
    a2.move_to(world.customers["b"], "last-child")
    clock.now += 6
    assert cache.get().annotations_at(lat + 0.01, lon, a2.pk) == []
    assert cache.rebuilds == 2


def test_the_engine_protocol_is_served():
    """What alarms.engine calls on whatever `PlaceIndexCache.get()` returns."""
    index = spatial.PlaceIndex()
    assert index.risk_points_at(*XIAN) == []
    assert index.annotations_at(*XIAN, 1) == []
    assert index.fences_at(1, *XIAN) == []
    assert index.within("fence:1", *XIAN, 50.0) is False
