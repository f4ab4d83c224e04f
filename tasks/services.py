"""Writes of field work: work orders through their state machine, records (notes, photos),
and the field workers' positions (K1–K4).

Invariants kept here:
- Status moves only along `WorkOrder.TRANSITIONS`, with the order row locked
  (`select_for_update`), and every move writes a status record (who, when, where).
- Back-office moves (create, assign, cancel, verify) need the order's customer to be visible to
  `by`; worker moves (accept, decline, start, complete, fail) are the assignee's alone.
- An order goes only to an active person of a kind its kind allows (`tasks.kinds`), belonging
  to the order's customer or above it, who holds `tasks.work_workorder`.
- The assigned worker gets a live "task" item (`carloan.realtime`, their own group) after the
  commit when an order is assigned to them, taken from them or cancelled.
- Completing runs the kind's handler (`tasks.completion`) in the same transaction: an install
  with a bad IMEI binds nothing and stays in progress.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import customer_is_visible_to
from carloan import realtime
from carloan.errors import ApplicationError, ConflictError
from carloan.services import model_save
from tasks import kinds
from tasks.completion import Completion
from tasks.models import WorkerLocation, WorkerPresence, WorkOrder, WorkOrderRecord
from tasks.photos import CheckedPhoto, check_photo
from tasks.selectors import is_field_worker, workers_eligible_for
from vehicles.models import Vehicle

Status = WorkOrder.Status
EDITABLE = ("due_at", "address", "lat", "lon", "instructions")
# A phone clock may run a little fast; a fix further in the future is refused.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
# A phone that was offline uploads what it buffered; older than this is a wrong clock (or a
# replay), and would only bury the worker's track under garbage.
MAX_FIX_AGE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Here:
    """The worker's position as the phone sent it with a request (WGS-84)."""

    lat: float
    lon: float
    accuracy_m: float | None = None

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ApplicationError(_("Latitude or longitude out of range."), code="invalid_point")
        if self.accuracy_m is not None and self.accuracy_m < 0:
            raise ApplicationError(_("Accuracy cannot be negative."), code="invalid_point")

    @property
    def point(self) -> Point:
        return Point(self.lon, self.lat, srid=4326)


def _actor(by):
    return by if by is not None and getattr(by, "is_authenticated", False) else None


def _not_found() -> ApplicationError:
    return ApplicationError(_("Work order not found."), code="not_found")


def _require_back_office(by, order: WorkOrder) -> None:
    """`by` (None = the system) sees the order's customer and is not a field worker."""
    if by is None:
        return
    if not customer_is_visible_to(by, order.customer_id):
        raise _not_found()
    if is_field_worker(by):
        raise ApplicationError(
            _("Field workers cannot dispatch or verify orders."), code="permission_denied"
        )


def _require_assignee(by, order: WorkOrder) -> None:
    if by is None or order.assignee_id != by.pk:
        # Someone else's order is not confirmed to exist.
        raise _not_found()


def _lock(order: WorkOrder) -> WorkOrder:
    # of=("self",): only the order's row (PostgreSQL refuses FOR UPDATE on the outer join to
    # the nullable assignee, and locking the vehicle or the user is not wanted anyway).
    return (
        WorkOrder.objects.select_for_update(of=("self",))
        .select_related("vehicle", "assignee")
        .get(pk=order.pk)
    )


def _record(
    order: WorkOrder,
    *,
    kind: str,
    by,
    at: dt.datetime,
    note: str = "",
    status_from: str = "",
    status_to: str = "",
    here: Here | None = None,
) -> WorkOrderRecord:
    record = WorkOrderRecord(
        order=order,
        kind=kind,
        author=_actor(by),
        at=at,
        note=note,
        status_from=status_from,
        status_to=status_to,
        point=here.point if here else None,
        accuracy_m=here.accuracy_m if here else None,
    )
    return model_save(record, by=by)


def _move(
    order: WorkOrder,
    to: str,
    *,
    by,
    now: dt.datetime,
    note: str = "",
    here: Here | None = None,
    fields: tuple[str, ...] = (),
) -> WorkOrder:
    """Apply the transition on the locked `order`, save `fields` with the status, record it."""
    before = order.status
    order.transition_to(to)
    model_save(order, by=by, update_fields=["status", *fields])
    _record(
        order,
        kind=WorkOrderRecord.Kind.STATUS,
        by=by,
        at=now,
        note=note,
        status_from=before,
        status_to=to,
        here=here,
    )
    if here is not None and by is not None and order.assignee_id == by.pk:
        _location_seen(by, here, at=now, now=now)
    return order


def _push(order: WorkOrder, *, user_id: int | None, event: str) -> None:
    """A live "task" item to one worker's own group (after the commit). `customer_id` is the
    vehicle's customer: the feed's visibility filter applies as for every vehicle item."""
    if user_id is None:
        return
    vehicle = order.vehicle
    where = order.location
    realtime.publish(
        realtime.user_group(user_id),
        "task",
        {
            realtime.ADDRESSEE: user_id,
            "event": event,
            "order_id": order.pk,
            "kind": order.kind,
            "status": order.status,
            "vehicle_id": vehicle.pk,
            "customer_id": vehicle.customer_id,
            "plate": vehicle.plate,
            "due_at": order.due_at,
            "address": order.address,
            "lat": round(where.y, 7) if where is not None else None,
            "lon": round(where.x, 7) if where is not None else None,
        },
    )


def _point(lat, lon) -> Point | None:
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise ApplicationError(_("Give both latitude and longitude, or neither."))
    return Here(float(lat), float(lon)).point


# --- Back office ----------------------------------------------------------------------------
@transaction.atomic
def work_order_create(
    *,
    by,
    kind: str,
    vehicle: Vehicle,
    due_at: dt.datetime | None = None,
    address: str = "",
    lat: float | None = None,
    lon: float | None = None,
    instructions: str = "",
    assignee: User | None = None,
    now: dt.datetime | None = None,
) -> WorkOrder:
    """A new order on `vehicle`, owned by the vehicle's customer (which `by` must see); assigned
    at once when `assignee` is given."""
    now = now or timezone.now()
    if kind not in kinds.KINDS:
        raise ApplicationError(
            _("Unknown kind of work order: %(k)s.") % {"k": kind}, code="invalid_kind"
        )
    if by is not None and not customer_is_visible_to(by, vehicle.customer_id):
        raise ApplicationError(_("Vehicle not found."), code="not_found")
    if is_field_worker(by):
        raise ApplicationError(
            _("Field workers cannot dispatch or verify orders."), code="permission_denied"
        )
    if vehicle.is_deleted:
        raise ConflictError(_("The vehicle %(p)s was deleted.") % {"p": vehicle.plate})
    order = WorkOrder(
        customer_id=vehicle.customer_id,
        kind=kind,
        vehicle=vehicle,
        due_at=due_at,
        address=address,
        location=_point(lat, lon),
        instructions=instructions,
        created_by=_actor(by),
        created_at=now,
    )
    model_save(order, by=by)
    _record(order, kind=WorkOrderRecord.Kind.STATUS, by=by, at=now, status_to=Status.CREATED)
    if assignee is not None:
        order = work_order_assign(order=order, assignee=assignee, by=by, now=now)
    return order


@transaction.atomic
def work_order_update(*, order: WorkOrder, by, **fields) -> WorkOrder:
    """Edit what an open order says (due time, address, location, instructions)."""
    unknown = set(fields).difference(EDITABLE)
    if unknown:
        raise ApplicationError(
            _("These fields cannot be edited here: %s") % ", ".join(sorted(unknown))
        )
    order = _lock(order)
    _require_back_office(by, order)
    if not order.is_open:
        raise ConflictError(_("A closed order cannot be edited."))
    update = []
    if "lat" in fields or "lon" in fields:
        order.location = _point(fields.pop("lat", None), fields.pop("lon", None))
        update.append("location")
    for name, value in fields.items():
        setattr(order, name, value)
        update.append(name)
    return model_save(order, by=by, update_fields=update) if update else order


def _check_assignee(order: WorkOrder, assignee: User) -> None:
    kind = kinds.kind_of(order.kind)
    if not assignee.is_active:
        raise ApplicationError(
            _("%(u)s is deactivated.") % {"u": assignee.username}, code="invalid_assignee"
        )
    if assignee.kind not in kind.worker_kinds:
        allowed = ", ".join(str(User.Kind(k).label) for k in sorted(kind.worker_kinds))
        raise ApplicationError(
            _("%(u)s is %(is)s: %(kind)s orders go to: %(allowed)s.")
            % {
                "u": assignee.username,
                "is": assignee.get_kind_display(),
                "kind": kind.label,
                "allowed": allowed,
            },
            code="invalid_assignee",
        )
    if not workers_eligible_for(order).filter(pk=assignee.pk).exists():
        raise ApplicationError(
            _("%(u)s does not work for this order's customer.") % {"u": assignee.username},
            code="invalid_assignee",
        )
    if not assignee.has_perm("tasks.work_workorder"):
        raise ApplicationError(
            _("%(u)s may not work on orders (their role lacks the permission).")
            % {"u": assignee.username},
            code="invalid_assignee",
        )


@transaction.atomic
def work_order_assign(
    *, order: WorkOrder, assignee: User, by, now: dt.datetime | None = None
) -> WorkOrder:
    """Give the order to `assignee` (created -> assigned; assigned / accepted -> assigned to
    someone else). The new assignee gets an "assigned" push, the previous one "unassigned"."""
    now = now or timezone.now()
    order = _lock(order)
    _require_back_office(by, order)
    if order.assignee_id == assignee.pk and order.status in (Status.ASSIGNED, Status.ACCEPTED):
        return order  # already theirs
    _check_assignee(order, assignee)
    previous = order.assignee_id
    order.assignee = assignee
    order.assigned_at, order.accepted_at = now, None
    _move(
        order,
        Status.ASSIGNED,
        by=by,
        now=now,
        note=_("Assigned to %(u)s.") % {"u": assignee.username},
        fields=("assignee", "assigned_at", "accepted_at"),
    )
    _push(order, user_id=assignee.pk, event="assigned")
    if previous is not None and previous != assignee.pk:
        _push(order, user_id=previous, event="unassigned")
    return order


@transaction.atomic
def work_order_cancel(
    *, order: WorkOrder, by, reason: str, now: dt.datetime | None = None
) -> WorkOrder:
    """Call off an open order, saying why; its worker is told."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why the order is cancelled."), code="reason_required")
    order = _lock(order)
    _require_back_office(by, order)
    order.cancelled_at = now
    _move(order, Status.CANCELLED, by=by, now=now, note=reason, fields=("cancelled_at",))
    _push(order, user_id=order.assignee_id, event="cancelled")
    return order


@transaction.atomic
def work_order_verify(
    *, order: WorkOrder, by, note: str = "", now: dt.datetime | None = None
) -> WorkOrder:
    """The back office checked a done or failed order: it is closed."""
    now = now or timezone.now()
    order = _lock(order)
    _require_back_office(by, order)
    order.verified_at, order.verified_by = now, _actor(by)
    return _move(
        order,
        Status.VERIFIED,
        by=by,
        now=now,
        note=note.strip(),
        fields=("verified_at", "verified_by"),
    )


# --- The worker (mobile app) ----------------------------------------------------------------
@transaction.atomic
def work_order_accept(
    *, order: WorkOrder, by, here: Here | None = None, now: dt.datetime | None = None
) -> WorkOrder:
    now = now or timezone.now()
    order = _lock(order)
    _require_assignee(by, order)
    order.accepted_at = now
    return _move(order, Status.ACCEPTED, by=by, now=now, here=here, fields=("accepted_at",))


@transaction.atomic
def work_order_decline(
    *, order: WorkOrder, by, reason: str, here: Here | None = None, now: dt.datetime | None = None
) -> WorkOrder:
    """The worker gives an assigned order back (assigned -> created), saying why."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why you decline the order."), code="reason_required")
    order = _lock(order)
    _require_assignee(by, order)
    if order.status != Status.ASSIGNED:
        raise ConflictError(_("Only an order not accepted yet can be declined."))
    order.assignee, order.assigned_at = None, None
    return _move(
        order,
        Status.CREATED,
        by=by,
        now=now,
        note=reason,
        here=here,
        fields=("assignee", "assigned_at"),
    )


@transaction.atomic
def work_order_start(
    *, order: WorkOrder, by, here: Here | None = None, now: dt.datetime | None = None
) -> WorkOrder:
    now = now or timezone.now()
    order = _lock(order)
    _require_assignee(by, order)
    order.started_at = now
    return _move(order, Status.IN_PROGRESS, by=by, now=now, here=here, fields=("started_at",))


@transaction.atomic
def work_order_complete(
    *,
    order: WorkOrder,
    by,
    data: Completion | None = None,
    note: str = "",
    here: Here | None = None,
    now: dt.datetime | None = None,
) -> WorkOrder:
    """in progress -> done, running the kind's completion (bindings for installs and repairs,
    found / not found for visits). All or nothing."""
    now = now or timezone.now()
    data = data or Completion()
    order = _lock(order)
    _require_assignee(by, order)
    if not order.can_transition(Status.DONE):
        order.transition_to(Status.DONE)  # raises InvalidTransition with the message
    kinds.kind_of(order.kind).load_completion()(order=order, by=by, now=now, data=data)
    order.finished_at, order.result_note = now, note.strip()
    return _move(
        order,
        Status.DONE,
        by=by,
        now=now,
        note=note.strip(),
        here=here,
        fields=("finished_at", "result_note", "car_found", "owner_found"),
    )


@transaction.atomic
def work_order_fail(
    *,
    order: WorkOrder,
    by,
    reason: str,
    car_found: bool | None = None,
    owner_found: bool | None = None,
    here: Here | None = None,
    now: dt.datetime | None = None,
) -> WorkOrder:
    """in progress -> failed: the job could not be done (car not found, owner refused ...)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why the order failed."), code="reason_required")
    order = _lock(order)
    _require_assignee(by, order)
    order.finished_at, order.result_note = now, reason
    order.car_found, order.owner_found = car_found, owner_found
    return _move(
        order,
        Status.FAILED,
        by=by,
        now=now,
        note=reason,
        here=here,
        fields=("finished_at", "result_note", "car_found", "owner_found"),
    )


# --- Records ------------------------------------------------------------------------------------
WORKER_RECORD_STATUSES = (Status.ACCEPTED, Status.IN_PROGRESS)


def _require_may_record(by, order: WorkOrder) -> None:
    """The assignee records while the order is accepted or in progress; the back office (who
    sees the order's customer) at any time."""
    if by is not None and order.assignee_id == by.pk and is_field_worker(by):
        if order.status not in WORKER_RECORD_STATUSES:
            raise ConflictError(
                _("Notes and photos are taken once the order is accepted and until it is done.")
            )
        return
    if by is not None and (
        is_field_worker(by) or not customer_is_visible_to(by, order.customer_id)
    ):
        raise _not_found()


@transaction.atomic
def work_order_note_add(
    *, order: WorkOrder, by, note: str, here: Here | None = None, now: dt.datetime | None = None
) -> WorkOrderRecord:
    now = now or timezone.now()
    note = (note or "").strip()
    if not note:
        raise ApplicationError(_("The note is empty."), code="note_required")
    order = _lock(order)
    _require_may_record(by, order)
    record = _record(order, kind=WorkOrderRecord.Kind.NOTE, by=by, at=now, note=note, here=here)
    if here is not None and by is not None and order.assignee_id == by.pk:
        _location_seen(by, here, at=now, now=now)
    return record


@transaction.atomic
def work_order_photo_add(
    *,
    order: WorkOrder,
    by,
    upload,
    caption: str = "",
    here: Here | None = None,
    now: dt.datetime | None = None,
) -> WorkOrderRecord:
    """Store a photo under MEDIA_ROOT/tasks/<order>/ after checking its content: a JPEG, PNG or
    WebP image (by its bytes, not its name) no bigger than TASKS_PHOTO_MAX_BYTES."""
    now = now or timezone.now()
    photo: CheckedPhoto = check_photo(upload)
    order = _lock(order)
    _require_may_record(by, order)
    record = WorkOrderRecord(
        order=order,
        kind=WorkOrderRecord.Kind.PHOTO,
        author=_actor(by),
        at=now,
        note=(caption or "").strip(),
        point=here.point if here else None,
        accuracy_m=here.accuracy_m if here else None,
        photo_bytes=photo.size,
        photo_type=photo.content_type,
        photo_width=photo.width,
        photo_height=photo.height,
    )
    record.photo.save(photo.filename, photo.content, save=False)
    try:
        model_save(record, by=by)
    except Exception:
        # Nothing refers to the file if the row is not stored.
        record.photo.storage.delete(record.photo.name)
        raise
    if here is not None and by is not None and order.assignee_id == by.pk:
        _location_seen(by, here, at=now, now=now)
    return record


# --- Field-worker positions (K4) -------------------------------------------------------------
def _location_seen(user, here: Here, *, at: dt.datetime, now: dt.datetime) -> WorkerLocation:
    location = WorkerLocation.objects.create(
        user=user, point=here.point, accuracy_m=here.accuracy_m, at=at, received_at=now
    )
    presence, _created = WorkerPresence.objects.select_for_update().get_or_create(user=user)
    # A late upload (the phone was offline) is kept in the track but never moves the
    # worker's "last position" backwards.
    if presence.at is None or at >= presence.at:
        presence.point, presence.accuracy_m, presence.at = here.point, here.accuracy_m, at
        presence.save(update_fields=["point", "accuracy_m", "at", "updated_at"])
    return location


@transaction.atomic
def worker_location_report(
    *,
    user,
    here: Here | None = None,
    at: dt.datetime | None = None,
    on_duty: bool | None = None,
    battery_pct: int | None = None,
    now: dt.datetime | None = None,
) -> WorkerPresence:
    """The mobile app's periodic report: a position (with its fix time, default now), and / or
    whether the worker takes new orders. Field workers only."""
    now = now or timezone.now()
    if not is_field_worker(user):
        raise ApplicationError(
            _("Only field workers report their position."), code="permission_denied"
        )
    if here is None and on_duty is None and battery_pct is None:
        raise ApplicationError(_("Send a position or an on-duty flag."), code="empty_report")
    at = at or now
    if timezone.is_naive(at):
        raise ApplicationError(_("Give the time with its offset."), code="invalid_time")
    if at > now + MAX_CLOCK_SKEW:
        raise ApplicationError(
            _("The position's time is in the future: check the phone's clock."),
            code="invalid_time",
        )
    if at < now - MAX_FIX_AGE:
        raise ApplicationError(
            _("The position's time is more than %(days)d days ago: check the phone's clock.")
            % {"days": MAX_FIX_AGE.days},
            code="invalid_time",
        )
    if here is not None:
        _location_seen(user, here, at=at, now=now)
    presence, _created = WorkerPresence.objects.select_for_update().get_or_create(user=user)
    update = []
    if on_duty is not None and presence.on_duty != on_duty:
        presence.on_duty = on_duty
        update.append("on_duty")
    if battery_pct is not None:
        if not 0 <= battery_pct <= 100:
            raise ApplicationError(_("Battery must be 0-100 %."), code="invalid_battery")
        presence.battery_pct = battery_pct
        update.append("battery_pct")
    if update:
        presence.save(update_fields=[*update, "updated_at"])
    return presence
