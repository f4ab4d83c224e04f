"""django-q2 entry points of the alarms app (registered by `manage.py setup_schedules`)."""

from __future__ import annotations

import logging

from alarms.engine import Engine, scan

logger = logging.getLogger("carloan.alarms")


def scan_alarms() -> dict:
    """The absence / time scan (offline, parking overtime, usual area, stay, silent device)."""
    result = scan(Engine())
    logger.info(
        "alarm scan: %d vehicles, %d raised, %d closed in %.2f s",
        result.vehicles,
        len(result.raised),
        result.closed,
        result.seconds,
    )
    return {"vehicles": result.vehicles, "raised": len(result.raised), "closed": result.closed}
