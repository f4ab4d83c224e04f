"""Admin of the alarms app, in two modules: places (risk points, annotations, geofences, usual
areas, arming, custom types, settings) and alarms (the alarm list and its handling)."""

from alarms import admin_alarms, admin_places  # noqa: F401  (registration side effects)
