"""The work-order state machine: the table, the services that walk it, and the moves they refuse."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from carloan.errors import ApplicationError, ConflictError, InvalidTransition
from tasks import services
from tasks.completion import Completion
from tasks.models import WorkOrder, WorkOrderRecord
from tests.tasks.conftest import NOW, XIAN, make_order, started

S = WorkOrder.Status
ALLOWED = {
    (S.CREATED, S.ASSIGNED),
    (S.CREATED, S.CANCELLED),
    (S.ASSIGNED, S.ASSIGNED),
    (S.ASSIGNED, S.ACCEPTED),
    (S.ASSIGNED, S.CREATED),
    (S.ASSIGNED, S.CANCELLED),
    (S.ACCEPTED, S.ASSIGNED),
    (S.ACCEPTED, S.IN_PROGRESS),
    (S.ACCEPTED, S.CANCELLED),
    (S.IN_PROGRESS, S.DONE),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.DONE, S.VERIFIED),
    (S.FAILED, S.VERIFIED),
}


@pytest.mark.parametrize("src,dst", list(itertools.product(S.values, S.values)))
def test_the_table_allows_exactly_the_designed_moves(src, dst):
    order = WorkOrder(status=src)
    assert order.can_transition(dst) == ((src, dst) in ALLOWED)
    if (src, dst) not in ALLOWED:
        with pytest.raises(InvalidTransition):
            order.transition_to(dst)
        assert order.status == src


def test_verified_and_cancelled_are_final_and_every_status_is_reachable():
    assert WorkOrder.TRANSITIONS[S.VERIFIED] == set()
    assert WorkOrder.TRANSITIONS[S.CANCELLED] == set()
    reached, frontier = {S.CREATED}, [S.CREATED]
    while frontier:
        for nxt in WorkOrder.TRANSITIONS[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    assert reached == set(S.values)


def test_a_whole_install_walks_the_machine_and_records_each_step(field, frozen):
    installer = field["a1_installer"]
    order = make_order(field, due_at=NOW + dt.timedelta(hours=4), address="Xi'an, Yanta Rd 1")
    assert order.status == S.CREATED and order.customer_id == field.world.customers["a1"].pk

    services.work_order_assign(order=order, assignee=installer, by=field["a_admin"])
    frozen.shift(dt.timedelta(minutes=10))
    services.work_order_accept(order=order, by=installer, here=services.Here(*XIAN, 8.0))
    frozen.shift(dt.timedelta(minutes=50))
    services.work_order_start(order=order, by=installer)
    frozen.shift(dt.timedelta(minutes=35))
    stock = field.world.stock["a1"]
    services.work_order_complete(
        order=order, by=installer, data=Completion(imeis=(stock.identifier,)), note="fitted"
    )
    services.work_order_verify(order=order, by=field["a_admin"], note="photos ok")

    order.refresh_from_db()
    assert order.status == S.VERIFIED
    assert order.assigned_at == NOW
    assert order.accepted_at == NOW + dt.timedelta(minutes=10)
    assert order.started_at == NOW + dt.timedelta(minutes=60)
    assert order.finished_at == NOW + dt.timedelta(minutes=95)
    assert order.on_time is True
    assert order.verified_by_id == field["a_admin"].pk
    steps = list(
        order.records.filter(kind=WorkOrderRecord.Kind.STATUS).values_list(
            "status_from", "status_to", "author__username"
        )
    )
    assert steps == [
        ("", S.CREATED, "a_admin"),
        (S.CREATED, S.ASSIGNED, "a_admin"),
        (S.ASSIGNED, S.ACCEPTED, "a1_installer"),
        (S.ACCEPTED, S.IN_PROGRESS, "a1_installer"),
        (S.IN_PROGRESS, S.DONE, "a1_installer"),
        (S.DONE, S.VERIFIED, "a_admin"),
    ]
    accepted = order.records.get(status_to=S.ACCEPTED)
    assert (round(accepted.point.y, 4), round(accepted.point.x, 4)) == (34.2610, 108.9423)
    assert accepted.accuracy_m == 8.0
    # The operation log has the order's history with who changed it.
    assert order.history.filter(history_user__username="a1_installer").exists()


@pytest.mark.parametrize(
    "move",
    [
        # Working on an order before accepting it, finishing before starting ...
        lambda f, o: services.work_order_start(order=o, by=f["a1_installer"]),
        lambda f, o: services.work_order_complete(order=o, by=f["a1_installer"]),
        lambda f, o: services.work_order_fail(order=o, by=f["a1_installer"], reason="rain"),
        # ... or verifying an order nobody finished.
        lambda f, o: services.work_order_verify(order=o, by=f["a_admin"]),
    ],
)
def test_out_of_order_moves_are_refused_and_change_nothing(field, move):
    order = make_order(field, assignee="a1_installer")
    with pytest.raises(InvalidTransition) as exc:
        move(field, order)
    assert "cannot go from assigned" in str(exc.value)
    order.refresh_from_db()
    assert order.status == S.ASSIGNED
    assert order.records.count() == 2  # created, assigned


def test_closed_orders_cannot_be_cancelled_or_reassigned(field):
    order = started(field, kind="repossession", worker="a1_recovery")
    services.work_order_complete(order=order, by=field["a1_recovery"])
    with pytest.raises(InvalidTransition):
        services.work_order_cancel(order=order, by=field["a_admin"], reason="paid up")
    with pytest.raises(InvalidTransition):
        services.work_order_assign(order=order, assignee=field["a1_recovery"], by=field["a_admin"])
    services.work_order_verify(order=order, by=field["a_admin"])
    with pytest.raises(InvalidTransition):
        services.work_order_verify(order=order, by=field["a_admin"])


def test_only_the_assignee_works_on_an_order(field):
    order = make_order(field, assignee="a1_installer")
    for other in ("a1_installer2", "a_admin"):
        with pytest.raises(ApplicationError) as exc:
            services.work_order_accept(order=order, by=field[other])
        assert exc.value.code == "not_found"
    order.refresh_from_db()
    assert order.status == S.ASSIGNED


def test_field_workers_cannot_dispatch_cancel_or_verify(field):
    order = started(field)
    installer = field["a1_installer"]
    services.work_order_complete(
        order=order,
        by=installer,
        data=Completion(imeis=(field.world.stock["a1"].identifier,)),
    )
    with pytest.raises(ApplicationError) as exc:
        services.work_order_verify(order=order, by=installer)
    assert exc.value.code == "permission_denied"
    with pytest.raises(ApplicationError):
        services.work_order_create(by=installer, kind="repair", vehicle=field.world.vehicles["a1"])


def test_a_worker_declines_with_a_reason_and_the_order_goes_back_to_dispatch(field):
    order = make_order(field, assignee="a1_installer")
    with pytest.raises(ApplicationError) as exc:
        services.work_order_decline(order=order, by=field["a1_installer"], reason="  ")
    assert exc.value.code == "reason_required"
    services.work_order_decline(order=order, by=field["a1_installer"], reason="I am sick")
    order.refresh_from_db()
    assert (order.status, order.assignee_id) == (S.CREATED, None)
    assert order.records.last().note == "I am sick"
    # Accepted orders are not declined (the back office reassigns or cancels them).
    order = make_order(field, assignee="a1_installer")
    services.work_order_accept(order=order, by=field["a1_installer"])
    with pytest.raises(ConflictError):
        services.work_order_decline(order=order, by=field["a1_installer"], reason="busy")


def test_reassigning_an_accepted_order_starts_over_with_the_new_worker(field):
    order = make_order(field, assignee="a1_installer")
    services.work_order_accept(order=order, by=field["a1_installer"])
    services.work_order_assign(order=order, assignee=field["a1_installer2"], by=field["a_admin"])
    order.refresh_from_db()
    assert (order.status, order.assignee_id, order.accepted_at) == (
        S.ASSIGNED,
        field["a1_installer2"].pk,
        None,
    )
    with pytest.raises(ApplicationError):
        services.work_order_start(order=order, by=field["a1_installer"])


def test_cancelling_needs_a_reason_and_a_cancelled_order_takes_no_work(field):
    order = started(field)
    with pytest.raises(ApplicationError):
        services.work_order_cancel(order=order, by=field["a_admin"], reason="")
    services.work_order_cancel(order=order, by=field["a_admin"], reason="loan settled")
    order.refresh_from_db()
    assert order.status == S.CANCELLED and order.cancelled_at is not None
    with pytest.raises(InvalidTransition):
        services.work_order_complete(
            order=order,
            by=field["a1_installer"],
            data=Completion(imeis=(field.world.stock["a1"].identifier,)),
        )


def test_a_failed_order_says_why_and_is_verified_like_a_done_one(field):
    order = started(field, kind="covert_visit", worker="a1_salesman")
    with pytest.raises(ApplicationError):
        services.work_order_fail(order=order, by=field["a1_salesman"], reason="")
    services.work_order_fail(
        order=order, by=field["a1_salesman"], reason="nobody at home", car_found=False
    )
    services.work_order_verify(order=order, by=field["a_admin"])
    order.refresh_from_db()
    assert (order.status, order.result_note, order.car_found, order.owner_found) == (
        S.VERIFIED,
        "nobody at home",
        False,
        None,
    )


def test_a_closed_order_cannot_be_edited_and_an_open_one_can(field):
    order = make_order(field)
    services.work_order_update(
        order=order, by=field["a_admin"], address="New address", lat=34.3, lon=108.9
    )
    order.refresh_from_db()
    assert order.address == "New address" and round(order.location.y, 3) == 34.3
    services.work_order_cancel(order=order, by=field["a_admin"], reason="dup")
    with pytest.raises(ConflictError):
        services.work_order_update(order=order, by=field["a_admin"], address="x")
    with pytest.raises(ApplicationError):
        services.work_order_update(order=order, by=field["a_admin"], status="done")
