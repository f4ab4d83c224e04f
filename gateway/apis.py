"""REST API of positions: one device's or vehicle's fixes by time, and a vehicle's track.

- `GET /api/v1/positions/?imei=|plate=&since=&until=` (exactly one of imei / plate): fixes in
  fix-time order, cursor-paginated (`next` / `previous` links; `page_size` up to 5,000), so a
  month of 30 s fixes pages at the same speed on its last page as on its first.
- `GET /api/v1/vehicles/{id}/track/?since=&until=&output=list|geojson`: the fixes of every
  device mounted on the vehicle, in one response (at most `MAX_TRACK_POINTS`; `next_since`
  continues a longer one).

Time range: ISO 8601 (an offset is recommended; without one the site's time zone applies),
`until` defaults to now and `since` to 24 h before `until`; `since` < `until`, at most 31 days
apart, else 400. An unknown imei / plate / vehicle and another tenant's one answer alike: 404.
Reading positions needs `devices.view_device` (by imei: the device's data, as its last position
in /devices/) or `vehicles.view_vehicle` (by plate, and the track).
"""

from __future__ import annotations

import datetime as dt
import re

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, pagination, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.models import Position
from gateway.selectors import (
    position_target_for,
    position_values,
    positions_for_track,
    track_rows,
)

DEFAULT_RANGE = dt.timedelta(hours=24)
MAX_RANGE = dt.timedelta(days=31)
MAX_TRACK_POINTS = 200_000
COORD_DIGITS = 6  # ~0.1 m: more than any tracker's accuracy


# --- Input ---------------------------------------------------------------------------------------
# `?since=2026-11-22T08:00:00+08:00` typed into a URL arrives with a space for the "+".
_UNESCAPED_PLUS = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class QueryDateTimeField(serializers.DateTimeField):
    """ISO 8601; an offset's "+" sent unescaped in the query string (a space) is read as "+"."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            value = _UNESCAPED_PLUS.sub(r"\1+\2", value.strip())
        return super().to_internal_value(value)


class TimeRangeSerializer(serializers.Serializer):
    since = QueryDateTimeField(
        required=False, help_text=_("Start (inclusive), ISO 8601. Default: 24 h before until.")
    )
    until = QueryDateTimeField(
        required=False, help_text=_("End (exclusive), ISO 8601. Default: now.")
    )

    def validate(self, attrs):
        until = attrs.get("until")
        since = attrs.get("since")
        if until is None:
            until = timezone.now()
            if since is not None and since >= until:
                raise serializers.ValidationError({"since": [_("since must be in the past.")]})
        if since is None:
            since = until - DEFAULT_RANGE
        if since >= until:
            raise serializers.ValidationError({"until": [_("until must be after since.")]})
        if until - since > MAX_RANGE:
            raise serializers.ValidationError(
                {"until": [_("The time range may span at most 31 days.")]}
            )
        return {**attrs, "since": since, "until": until}


class PositionQuerySerializer(TimeRangeSerializer):
    imei = serializers.CharField(
        required=False, max_length=20, help_text=_("Device id (IMEI / terminal id), exact.")
    )
    plate = serializers.CharField(
        required=False, max_length=10, help_text=_("Plate of the vehicle, exact.")
    )

    def validate(self, attrs):
        if ("imei" in attrs) == ("plate" in attrs):
            raise serializers.ValidationError(
                {"non_field_errors": [_("Give either imei or plate (one of them).")]}
            )
        return super().validate(attrs)


class TrackQuerySerializer(TimeRangeSerializer):
    output = serializers.ChoiceField(
        choices=["list", "geojson"],
        default="list",
        help_text=_("list: one object per fix; geojson: a FeatureCollection."),
    )


def _query(serializer_class, request):
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _require(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise exceptions.PermissionDenied()


# --- Output --------------------------------------------------------------------------------------
class PositionOutputSerializer(serializers.Serializer):
    """One stored fix as the device reported it; `flags` are the hygiene marks (invalid_fix,
    drift, implied_speed, lbs ...), `realtime` false for blind-area re-uploads."""

    id = serializers.IntegerField()
    device_id = serializers.IntegerField()
    vehicle_id = serializers.IntegerField(
        allow_null=True, help_text=_("The vehicle the device was mounted on when the fix came.")
    )
    fix_time = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    lat = serializers.FloatField(help_text=_("WGS-84 latitude."))
    lon = serializers.FloatField(help_text=_("WGS-84 longitude."))
    valid = serializers.BooleanField()
    realtime = serializers.BooleanField()
    source = serializers.ChoiceField(choices=Position.Source.choices)
    speed_kmh = serializers.FloatField(allow_null=True)
    course = serializers.IntegerField(allow_null=True)
    altitude_m = serializers.FloatField(allow_null=True)
    satellites = serializers.IntegerField(allow_null=True)
    acc = serializers.BooleanField(allow_null=True)
    fuel_cut = serializers.BooleanField(allow_null=True)
    battery_pct = serializers.IntegerField(allow_null=True)
    external_voltage = serializers.FloatField(allow_null=True)
    gsm_signal = serializers.IntegerField(allow_null=True)
    odometer_km = serializers.FloatField(allow_null=True)
    sleeping = serializers.BooleanField(allow_null=True)
    alarms = serializers.ListField(child=serializers.CharField())
    flags = serializers.ListField(child=serializers.CharField())


class PositionCursorPagination(pagination.CursorPagination):
    """Keyset pages in fix-time order: each page is an index range scan from the cursor, not an
    OFFSET that re-reads every earlier row."""

    ordering = ("fix_time", "id")
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


class PositionListApi(APIView):
    """Fixes of one device (`imei`) or one vehicle (`plate`: every device while mounted on it)
    in [since, until), oldest first. Blind-area fixes fall into place by their own fix time."""

    permission_classes = [IsAuthenticated]
    pagination_class = PositionCursorPagination

    @extend_schema(
        parameters=[PositionQuerySerializer],
        responses={200: PositionOutputSerializer(many=True), 404: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        params = _query(PositionQuerySerializer, request)
        by_imei = "imei" in params
        _require(request.user, "devices.view_device" if by_imei else "vehicles.view_vehicle")
        target = position_target_for(
            request.user, imei=params.get("imei"), plate=params.get("plate")
        )
        if target is None:
            raise Http404(_("No such device.") if by_imei else _("No such vehicle."))
        qs = position_values(positions_for_track(target, params["since"], params["until"]))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(PositionOutputSerializer(page, many=True).data)


# Rows are built by hand: DRF serializers cost ~50x more per row, and a month is ~86,000 rows.
TRACK_POINT_FIELDS = {
    "time": serializers.DateTimeField(),
    "lat": serializers.FloatField(),
    "lon": serializers.FloatField(),
    "speed_kmh": serializers.FloatField(allow_null=True),
    "course": serializers.IntegerField(allow_null=True),
    "acc": serializers.BooleanField(allow_null=True),
    "valid": serializers.BooleanField(),
    "realtime": serializers.BooleanField(help_text=_("false: blind-area re-upload.")),
    "flags": serializers.ListField(child=serializers.CharField()),
    "device_id": serializers.IntegerField(),
    "source": serializers.CharField(),
}
TRACK_OUTPUT = inline_serializer(
    "Track",
    {
        "vehicle_id": serializers.IntegerField(),
        "plate": serializers.CharField(),
        "since": serializers.DateTimeField(),
        "until": serializers.DateTimeField(),
        "count": serializers.IntegerField(),
        "truncated": serializers.BooleanField(),
        "next_since": serializers.DateTimeField(
            allow_null=True, help_text=_("When truncated: call again with since=next_since.")
        ),
        "positions": inline_serializer("TrackPoint", TRACK_POINT_FIELDS, many=True),
    },
)
GEOJSON_OUTPUT = inline_serializer(
    "TrackGeoJSON",
    {
        "type": serializers.CharField(default="FeatureCollection"),
        "features": serializers.ListField(
            child=serializers.DictField(),
            help_text=_(
                "First a LineString of the drawable fixes (valid, not drift), then one Point "
                "per fix with the same properties as the list output."
            ),
        ),
        "vehicle_id": serializers.IntegerField(),
        "plate": serializers.CharField(),
        "since": serializers.DateTimeField(),
        "until": serializers.DateTimeField(),
        "count": serializers.IntegerField(),
        "truncated": serializers.BooleanField(),
        "next_since": serializers.DateTimeField(allow_null=True),
    },
)


def _iso(value: dt.datetime) -> str:
    return timezone.localtime(value).isoformat()


class VehicleTrackApi(APIView):
    """A vehicle's fixes in [since, until) in fix-time order, in one response: invalid fixes,
    drift and blind-area re-uploads included and marked (`valid`, `flags`, `realtime`)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            TrackQuerySerializer,
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        # Two shapes, chosen by `output`: both are in the schema (oneOf).
        responses={
            200: PolymorphicProxySerializer(
                component_name="TrackResponse",
                serializers=[TRACK_OUTPUT, GEOJSON_OUTPUT],
                resource_type_field_name=None,
            ),
            404: OpenApiTypes.OBJECT,
        },
    )
    def get(self, request, pk: int):
        from vehicles.selectors import vehicles_visible_to

        params = _query(TrackQuerySerializer, request)
        _require(request.user, "vehicles.view_vehicle")
        vehicle = vehicles_visible_to(request.user).filter(pk=pk).first()
        if vehicle is None:
            raise Http404(_("No such vehicle."))
        since, until = params["since"], params["until"]
        rows = track_rows(vehicle, since, until, limit=MAX_TRACK_POINTS + 1)
        next_since = None
        if len(rows) > MAX_TRACK_POINTS:
            # Cut before the first fix time that does not fit whole, so since=next_since
            # continues without a gap or a repeat.
            next_since = rows[MAX_TRACK_POINTS][0]
            rows = [r for r in rows[:MAX_TRACK_POINTS] if r[0] < next_since]
        tz = timezone.get_current_timezone()  # astimezone: 3x cheaper than localtime per row
        points = [
            {
                "time": t.astimezone(tz).isoformat(),
                "lat": round(lat, COORD_DIGITS),
                "lon": round(lon, COORD_DIGITS),
                "speed_kmh": speed,
                "course": course,
                "acc": acc,
                "valid": valid,
                "realtime": realtime,
                "flags": flags or [],
                "device_id": device_id,
                "source": source,
            }
            for t, lat, lon, speed, course, acc, valid, realtime, flags, device_id, source in rows
        ]
        head = {
            "vehicle_id": vehicle.pk,
            "plate": vehicle.plate,
            "since": _iso(since),
            "until": _iso(until),
            "count": len(points),
            "truncated": next_since is not None,
            "next_since": _iso(next_since) if next_since is not None else None,
        }
        if params["output"] == "geojson":
            return Response(_geojson(head, points))
        return Response({**head, "positions": points})


def _geojson(head: dict, points: list[dict]) -> dict:
    """RFC 7946 FeatureCollection: the line a map draws (valid fixes that are not drift, blind
    area included: it falls into place by time) and every fix as a Point with its properties.
    The head fields ride along as foreign members."""
    line = [
        [p["lon"], p["lat"]] for p in points if p["valid"] and "drift" not in (p["flags"] or ())
    ]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": line} if len(line) >= 2 else None,
            "properties": {"kind": "track", "vehicle_id": head["vehicle_id"], "points": len(line)},
        }
    ]
    for p in points:
        props = {k: v for k, v in p.items() if k not in ("lat", "lon")}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
                "properties": {"kind": "fix", **props},
            }
        )
    return {"type": "FeatureCollection", **head, "features": features}
