"""The notification plug-ins: channels users subscribe to, and the backends that carry them.

Two registries, in the healthchecks `TRANSPORTS` shape (STYLE.md "Plug-ins"):

- `CHANNELS`: what a user subscribes to (`NotificationSubscription.channel` choices come from
  here). A channel says which account field holds the address and which setting names its
  backend.
- `NOTIFIERS`: the backends, `name -> (label, dotted path of a Notifier subclass)`, imported
  lazily when a message goes out. Adding a backend = one module under `alarms/notify/backends/`,
  one line here, one test file.

Live push (WebSocket) is not a channel: every user who may see the vehicle gets it on the live
feed (`carloan.realtime`), subscriptions or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module

from django.conf import settings
from django.utils.translation import gettext_lazy as _

_BACKENDS = "alarms.notify.backends"
NOTIFIERS: dict[str, tuple[str, str]] = {
    "console": (_("console (the worker's output)"), f"{_BACKENDS}.console.ConsoleNotifier"),
    "file": (_("file (var/notifications/)"), f"{_BACKENDS}.file.FileNotifier"),
    "email": (_("e-mail (Django's EMAIL_BACKEND)"), f"{_BACKENDS}.mail.EmailNotifier"),
    "sms_http": (_("SMS through an HTTP gateway"), f"{_BACKENDS}.sms_http.HttpSmsNotifier"),
}


@dataclass(frozen=True)
class Channel:
    code: str
    label: str
    address_field: str  # the User field holding the address: the user's own, nobody else's
    backend_setting: str  # the setting naming the NOTIFIERS entry that carries this channel
    default_backend: str


CHANNELS: dict[str, Channel] = {
    c.code: c
    for c in (
        Channel("email", _("e-mail"), "email", "NOTIFY_EMAIL_BACKEND", "console"),
        Channel("sms", _("SMS"), "phone", "NOTIFY_SMS_BACKEND", "file"),
    )
}


def channel_choices() -> list[tuple[str, str]]:
    return [(c.code, c.label) for c in CHANNELS.values()]


def backend_name(channel: str) -> str:
    spec = CHANNELS[channel]
    return str(getattr(settings, spec.backend_setting, spec.default_backend))


@cache
def notifier_class(name: str):
    """The Notifier subclass registered as `name` (KeyError for an unknown name)."""
    _label, path = NOTIFIERS[name]
    module, _sep, cls = path.rpartition(".")
    return getattr(import_module(module), cls)


def notifier_for(channel: str):
    """A ready backend for `channel`, configured from the settings."""
    return notifier_class(backend_name(channel)).from_settings(settings)
