"""Labels the pages' JavaScript shows, translated on the server (one catalogue: locale/)."""

from django.utils.translation import gettext as _

from alarms import kinds as alarm_kinds
from alarms.models import Alarm, Level
from devices import commands
from devices.models import Command


def page_i18n(request):
    if (
        not request.path.startswith(("/monitor", "/playback", "/alarms", "/login"))
        and request.path != "/"
    ):
        return {}
    return {
        "page_i18n": {
            "moving": _("moving"),
            "parked": _("parked"),
            "sleeping": _("sleeping"),
            "offline": _("offline"),
            "online": _("online"),
            "vehicles": _("vehicles"),
            "expand": _("Expand or collapse"),
            "alarm": _("in alarm"),
            "connecting": _("connecting"),
            "connected": _("live"),
            "reconnecting": _("reconnecting"),
            "new alarm": _("new alarm"),
            "wired": _("wired"),
            "wireless": _("wireless"),
            "last fix": _("last fix"),
            "battery": _("battery"),
            "on": _("on"),
            "off": _("off"),
            "devices": _("Devices"),
            "recent alarms": _("Recent alarms"),
            "risk level": _("risk level"),
            "track playback": _("Track playback"),
            "locate_now": _("Locate now"),
            "fuel_cut": _("Cut fuel"),
            "fuel_restore": _("Restore fuel"),
            "reboot": _("Reboot"),
            "confirm command": _("Send this command?"),
            "command sent": _("Command queued"),
            "command refused": _("Command refused"),
            "acknowledge": _("Acknowledge"),
            "close": _("Close"),
            "acknowledged": _("acknowledged"),
            "closed": _("closed"),
            "no track": _("No positions in this time range."),
            "no such vehicle": _("No such vehicle."),
            "points": _("points"),
            "stops": _("stops"),
            "stop": _("Stop"),
            "info": _("info"),
            "warning": _("warning"),
            "critical": _("critical"),
            "truncated": _("Only the first part of this range is shown; narrow it to see more."),
            # Live items carry codes (carloan.realtime): the page shows these labels.
            "kinds": {code: str(kind.label) for code, kind in alarm_kinds.KINDS.items()},
            "levels": {str(value): str(label) for value, label in Level.choices},
            "alarm_statuses": {value: str(label) for value, label in Alarm.Status.choices},
            "command_statuses": {value: str(label) for value, label in Command.Status.choices},
            "command_kinds": {key: str(spec.label) for key, spec in commands.KINDS.items()},
        }
    }
