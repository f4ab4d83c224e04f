"""Admin: risk points, annotations, geofences, usual areas, arming, custom alarm types and
alarm settings.

Every list comes from an `alarms.selectors` visibility selector and every save goes through
`alarms.services.places` (refusals come back as a message on the same page). Geometries are
edited on a map: `MapWidget`, Leaflet + Leaflet-Geoman vendored under static/vendor (GeoDjango's
own widgets load OpenLayers from a CDN, which closed networks do not reach). The map works with
no tiles at all (drawing on a blank map, typing coordinates, pasting GeoJSON / WKT).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.gis.db import models as gis_models
from django.contrib.gis.forms.widgets import BaseGeometryWidget
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.selectors import is_platform_admin
from alarms import selectors
from alarms.models import (
    AlarmSetting,
    Annotation,
    Arming,
    CustomAlarmType,
    Geofence,
    RiskPoint,
    UsualArea,
)
from alarms.services import places as services
from carloan.admin import ScopedAdmin, VisibleCustomerFilter, admin_site
from carloan.errors import ApplicationError
from carloan.maps import map_config
from vehicles.selectors import vehicles_visible_to


# --- The map widget ------------------------------------------------------------------------------
class MapWidget(BaseGeometryWidget):
    """A point or polygon on a Leaflet map, stored as GeoJSON (WGS-84) in a textarea. Points:
    click or drag, or type latitude / longitude; with `radius_field` the circle of that form
    field's radius is drawn. Polygons: draw, edit, cut holes (Leaflet-Geoman)."""

    template_name = "alarms/widgets/map.html"
    map_srid = 4326

    def __init__(self, attrs=None, *, geom_type: str = "POINT", radius_field: str = ""):
        super().__init__(attrs)
        self.attrs["geom_type"] = geom_type
        self.radius_field = radius_field

    @property
    def media(self):
        js = [
            "vendor/leaflet/leaflet.js",
            "vendor/leaflet-geoman/leaflet-geoman.min.js",
            "pages/geo.js",  # the provider's tile grid and datum (CarloanGeo)
        ]
        return forms.Media(
            css={"all": ["vendor/leaflet/leaflet.css", "vendor/leaflet-geoman/leaflet-geoman.css"]},
            js=js,
        )

    def serialize(self, value):
        return value.json if value else ""

    def render(self, name, value, attrs=None, renderer=None):
        # The project's template engine (templates/ is not on the form renderer's path).
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))  # noqa: S308

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        context.update(
            id=widget_id,
            config_id=f"{widget_id}_config",
            map_config=map_config(
                zoom=5,
                geom_type="Point" if self.attrs["geom_type"] == "POINT" else "Polygon",
                radius_field=self.radius_field,
                language=translation.get_language(),
            ),
        )
        return context


def _lat_lon(point) -> dict:
    return {"lat": point.y, "lon": point.x}


class PlacesAdmin(ScopedAdmin):
    """Map widgets for every geometry field (never GeoDjango's CDN-loading default); a point's
    map draws the circle of the form's `radius_field`."""

    radius_field = "radius_m"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, gis_models.PolygonField):
            return db_field.formfield(widget=MapWidget(geom_type="POLYGON"), **kwargs)
        if isinstance(db_field, gis_models.PointField):
            widget = MapWidget(geom_type="POINT", radius_field=self.radius_field)
            return db_field.formfield(widget=widget, **kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


# --- Risk points (R1) ----------------------------------------------------------------------------
@admin.register(RiskPoint, site=admin_site)
class RiskPointAdmin(PlacesAdmin):
    """Shared by the whole server: everyone with the view right sees them all; only platform
    admins add, change and delete (bulk loads: `manage.py import_risk_points`)."""

    list_display = ["name", "kind", "radius_m", "address", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "address"]
    fields = ["name", "kind", "point", "radius_m", "address"]
    actions = ["delete_risk_points"]

    def visible_queryset(self, request):
        return selectors.risk_points_visible_to(request.user)

    def has_add_permission(self, request):
        return is_platform_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return is_platform_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_platform_admin(request.user)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        values = {
            "name": data["name"],
            "kind": data["kind"],
            "radius_m": data["radius_m"],
            "address": data["address"],
            **_lat_lon(data["point"]),
        }
        if change:
            services.risk_point_update(risk_point=obj, by=request.user, **values)
        else:
            obj.pk = services.risk_point_create(by=request.user, **values).pk

    def delete_model(self, request, obj):
        services.risk_point_delete(risk_point=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for point in queryset:
            services.risk_point_delete(risk_point=point, by=request.user)

    @admin.action(description=_("Delete selected risk points"), permissions=["delete"])
    def delete_risk_points(self, request, queryset):
        count = 0
        for point in queryset:
            services.risk_point_delete(risk_point=point, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%d risk point deleted.", "%d risk points deleted.", count) % count,
            messages.SUCCESS,
        )


# --- Annotations (R2) ---------------------------------------------------------------------------
@admin.register(Annotation, site=admin_site)
class AnnotationAdmin(PlacesAdmin):
    """Shared annotations of the user's subtree plus the user's own private ones. Created here
    from a map click, from a vehicle's position (the vehicle list's action) or by the API."""

    list_display = ["name", "customer", "shared", "radius_m", "created_by", "updated_at"]
    list_filter = ["shared", ("customer", VisibleCustomerFilter)]
    search_fields = ["name", "note"]
    list_select_related = ["customer", "created_by"]
    autocomplete_fields = ["customer"]
    fields = ["customer", "name", "point", "radius_m", "shared", "note"]

    def visible_queryset(self, request):
        return selectors.annotations_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["customer"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        values = {
            "name": data["name"],
            "radius_m": data["radius_m"],
            "shared": data["shared"],
            "note": data["note"],
            **_lat_lon(data["point"]),
        }
        if change:
            services.annotation_update(annotation=obj, by=request.user, **values)
        else:
            created = services.annotation_create(
                customer=data["customer"], by=request.user, **values
            )
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.annotation_delete(annotation=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for note in queryset:
            services.annotation_delete(annotation=note, by=request.user)


# --- Geofences (R3) -----------------------------------------------------------------------------
class GeofenceForm(forms.ModelForm):
    class Meta:
        model = Geofence
        fields = [
            "customer",
            "name",
            "shape",
            "polygon",
            "center",
            "radius_m",
            "alarm_enter",
            "alarm_leave",
            "alarm_inside",
            "alarm_parking",
            "parking_minutes",
            "vehicles",
        ]


@admin.register(Geofence, site=admin_site)
class GeofenceAdmin(PlacesAdmin):
    form = GeofenceForm
    list_display = [
        "name",
        "customer",
        "shape",
        "alarm_enter",
        "alarm_leave",
        "alarm_inside",
        "alarm_parking",
        "updated_at",
    ]
    list_filter = ["shape", ("customer", VisibleCustomerFilter)]
    search_fields = ["name"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer", "vehicles"]
    fieldsets = [
        (None, {"fields": ["customer", "name", "shape"]}),
        (_("Polygon"), {"fields": ["polygon"]}),
        (_("Circle"), {"fields": ["center", "radius_m"]}),
        (
            _("Alarms"),
            {
                "fields": [
                    "alarm_enter",
                    "alarm_leave",
                    "alarm_inside",
                    "alarm_parking",
                    "parking_minutes",
                ]
            },
        ),
        (_("Vehicles"), {"fields": ["vehicles"]}),
    ]

    def visible_queryset(self, request):
        return selectors.geofences_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        # A fence binds only vehicles of its customer's subtree: the owner stays.
        return ["customer"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        options = {
            name: data[name]
            for name in (
                "alarm_enter",
                "alarm_leave",
                "alarm_inside",
                "alarm_parking",
                "parking_minutes",
            )
        }
        center = _lat_lon(data["center"]) if data.get("center") else None
        geometry = {
            "shape": data["shape"],
            "polygon": data.get("polygon"),
            "center": center,
            "radius_m": data.get("radius_m"),
        }
        if change:
            services.geofence_update(
                geofence=obj, by=request.user, name=data["name"], **geometry, **options
            )
        else:
            created = services.geofence_create(
                customer=data["customer"], name=data["name"], by=request.user, **geometry, **options
            )
            obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        fence = Geofence.objects.get(pk=form.instance.pk)
        services.geofence_set_vehicles(
            geofence=fence, vehicles=form.cleaned_data.get("vehicles") or [], by=request.user
        )

    def delete_model(self, request, obj):
        services.geofence_delete(geofence=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for fence in queryset:
            services.geofence_delete(geofence=fence, by=request.user)


# --- Per-vehicle places ---------------------------------------------------------------------
@admin.register(UsualArea, site=admin_site)
class UsualAreaAdmin(PlacesAdmin):
    list_display = ["name", "vehicle", "radius_m"]
    search_fields = ["name", "vehicle__plate"]
    list_select_related = ["vehicle"]
    autocomplete_fields = ["vehicle"]
    fields = ["vehicle", "name", "point", "radius_m"]

    def visible_queryset(self, request):
        return selectors.usual_areas_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["vehicle"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        values = {"name": data["name"], "radius_m": data["radius_m"], **_lat_lon(data["point"])}
        if change:
            services.usual_area_update(usual_area=obj, by=request.user, **values)
        else:
            obj.pk = services.usual_area_create(
                vehicle=data["vehicle"], by=request.user, **values
            ).pk

    def delete_model(self, request, obj):
        services.usual_area_delete(usual_area=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for area in queryset:
            services.usual_area_delete(usual_area=area, by=request.user)


class ArmingForm(forms.ModelForm):
    class Meta:
        model = Arming
        fields = ["vehicle", "radius_m"]
        help_texts = {"vehicle": _("Armed where it is now: its freshest valid device position.")}


@admin.register(Arming, site=admin_site)
class ArmingAdmin(PlacesAdmin):
    """In-place arming (原地设防): adding arms the vehicle at its current position; the armed
    spot is not edited by hand (arm again to move it); deleting disarms."""

    form = ArmingForm
    list_display = ["vehicle", "radius_m", "armed_at", "armed_by"]
    search_fields = ["vehicle__plate"]
    list_select_related = ["vehicle", "armed_by"]
    autocomplete_fields = ["vehicle"]
    actions = ["disarm"]

    def visible_queryset(self, request):
        return selectors.armings_visible_to(request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["vehicle", "radius_m"]
        return ["vehicle", "point", "radius_m", "armed_at", "armed_by"]

    def get_readonly_fields(self, request, obj=None):
        return ["vehicle", "point", "radius_m", "armed_at", "armed_by"] if obj else []

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        arming = services.vehicle_arm(
            vehicle=data["vehicle"], radius_m=data["radius_m"], by=request.user
        )
        obj.pk = arming.pk

    def delete_model(self, request, obj):
        services.vehicle_disarm(vehicle=obj.vehicle, by=request.user)

    def delete_queryset(self, request, queryset):
        for arming in queryset.select_related("vehicle"):
            services.vehicle_disarm(vehicle=arming.vehicle, by=request.user)

    @admin.action(description=_("Disarm selected vehicles"), permissions=["delete"])
    def disarm(self, request, queryset):
        count = 0
        for arming in queryset.select_related("vehicle"):
            count += services.vehicle_disarm(vehicle=arming.vehicle, by=request.user)
        self.message_user(
            request,
            ngettext("%d vehicle disarmed.", "%d vehicles disarmed.", count) % count,
            messages.SUCCESS,
        )


# --- Custom alarm types (R4) and settings ------------------------------------------------------
@admin.register(CustomAlarmType, site=admin_site)
class CustomAlarmTypeAdmin(ScopedAdmin):
    list_display = ["name", "customer", "level", "enabled", "updated_at"]
    list_filter = ["enabled", "level", ("customer", VisibleCustomerFilter)]
    search_fields = ["name"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    fieldsets = [
        (None, {"fields": ["customer", "name", "level", "enabled"]}),
        (
            _("Condition (every part that is set must hold)"),
            {
                "fields": [
                    ("min_speed_kmh", "max_speed_kmh"),
                    "geofence",
                    "annotation",
                    ("time_from", "time_to"),
                    "acc",
                    "duration_s",
                ]
            },
        ),
    ]

    def visible_queryset(self, request):
        return selectors.custom_alarm_types_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["customer"] if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "geofence":
            kwargs["queryset"] = selectors.geofences_visible_to(request.user)
        elif db_field.name == "annotation":
            kwargs["queryset"] = selectors.annotations_visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {f: data[f] for f in services.CUSTOM_TYPE_FIELDS if f in data}
        if change:
            changed = {f: v for f, v in fields.items() if f in form.changed_data}
            services.custom_alarm_type_update(custom_type=obj, by=request.user, **changed)
        else:
            name = fields.pop("name")
            created = services.custom_alarm_type_create(
                customer=data["customer"], name=name, by=request.user, **fields
            )
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.custom_alarm_type_delete(custom_type=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for custom_type in queryset:
            services.custom_alarm_type_delete(custom_type=custom_type, by=request.user)


class AlarmSettingForm(forms.ModelForm):
    params = forms.JSONField(
        label=_("parameters"),
        required=False,
        initial=dict,
        help_text=_(
            'Only the rule parameters to override, as a JSON object, e.g. {"limit_kmh": 100}.'
        ),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
    )

    class Meta:
        model = AlarmSetting
        fields = ["kind", "customer", "vehicle", "enabled", "level", "params"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "params" in self.fields:
            accepted = _param_summary(self.instance.kind)
            self.fields["params"].help_text = (
                _("Accepted: %(params)s.") % {"params": accepted}
                if accepted
                else _("This alarm takes no parameters.")
            )

    def clean(self):
        """Refuse unknown parameters and out-of-range values on the field itself (the service
        checks again on save)."""
        data = super().clean()
        kind = self.instance.kind if self.instance.pk else data.get("kind")
        params = data.get("params")
        if kind and "params" not in self.errors:
            try:
                services.validate_setting_params(kind, params if params is not None else {})
            except ApplicationError as exc:
                self.add_error("params", exc.message)
        return data


def _param_summary(kind: str) -> str:
    from alarms.rules import param_specs

    parts = []
    for spec in param_specs(kind):
        text = spec["name"]
        if spec["low"] is not None and spec["high"] is not None:
            text += f" {spec['low']:g}–{spec['high']:g}"
        if spec["unit"]:
            text += f" {spec['unit']}"
        if spec["choices"] and len(spec["choices"]) <= 6:
            text += " (" + " | ".join(spec["choices"]) + ")"
        default = spec["default"]
        text += f", {gettext('default')} {json.dumps(default, ensure_ascii=False)}"
        parts.append(text)
    return "; ".join(parts)


@admin.register(AlarmSetting, site=admin_site)
class AlarmSettingAdmin(ScopedAdmin):
    """Overrides of the rules' defaults: on a customer (inherited down its subtree) or on one
    vehicle (wins). Kind and target are fixed once saved (add another setting instead)."""

    form = AlarmSettingForm
    list_display = ["kind", "customer", "vehicle", "enabled", "level", "params_text", "updated_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["customer__name", "vehicle__plate"]
    list_select_related = ["customer", "vehicle"]
    autocomplete_fields = ["customer", "vehicle"]

    def visible_queryset(self, request):
        return selectors.alarm_settings_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["kind", "customer", "vehicle"] if obj else []

    @admin.display(description=_("parameters"))
    def params_text(self, obj):
        return json.dumps(obj.params, ensure_ascii=False) if obj.params else "-"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        setting = services.alarm_setting_upsert(
            kind=obj.kind if change else data["kind"],
            customer=obj.customer if change else data.get("customer"),
            vehicle=obj.vehicle if change else data.get("vehicle"),
            enabled=data.get("enabled"),
            level=data.get("level"),
            params=data.get("params") or {},
            by=request.user,
        )
        obj.pk = setting.pk

    def delete_model(self, request, obj):
        services.alarm_setting_delete(setting=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for setting in queryset:
            services.alarm_setting_delete(setting=setting, by=request.user)


# --- The vehicle list's action (vehicles/admin.py adds it) --------------------------------------
class AnnotationFromVehicleForm(forms.Form):
    """The intermediate page of "create annotation at current position"."""

    name = forms.CharField(label=_("Annotation name"), max_length=200)
    radius_m = forms.IntegerField(
        label=_("Radius (m)"), min_value=10, max_value=50_000, initial=200
    )
    shared = forms.BooleanField(
        label=_("Shared"),
        required=False,
        initial=True,
        help_text=_("Off: only you see it and its alarms."),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user


def annotations_from_vehicles(request, queryset, data) -> str:
    """One annotation per selected vehicle where it is now ("<name>" or "<name> <plate>" when
    several); vehicles with no position yet are skipped and named."""
    vehicles = list(vehicles_visible_to(request.user).filter(pk__in=queryset.values("pk")))
    made, missing = 0, []
    for vehicle in vehicles:
        name = data["name"] if len(vehicles) == 1 else f"{data['name']} {vehicle.plate}"
        fix = selectors.vehicle_current_fix(vehicle)
        if fix is None:
            missing.append(vehicle.plate)
            continue
        services.annotation_from_vehicle(
            vehicle=vehicle,
            name=name,
            radius_m=data["radius_m"],
            shared=data["shared"],
            by=request.user,
        )
        made += 1
    text = ngettext("%d annotation created.", "%d annotations created.", made) % made
    if missing:
        text += " " + gettext("No position yet, skipped: %s") % ", ".join(missing)
    return text
