"""The tracker protocols the platform speaks: how each one names a device and which pure codec
module (gateway/protocols/<name>.py) decodes it.

This registry feeds `DeviceModel.protocol` / `Device.protocol` choices (callable choices, so adding
a protocol needs no migration). Adding a protocol = one codec module, one line here, one test file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType

from django.utils.translation import gettext_lazy as _

from carloan.identifiers import is_valid_imei


@dataclass(frozen=True)
class Protocol:
    label: str
    identifier_help: object  # lazy translation shown when an identifier is refused
    identifier_ok: Callable[[str], bool]
    codec: str  # dotted path of the pure codec module

    def load_codec(self) -> ModuleType:
        """The codec module, imported on first use (the web process never needs it)."""
        return import_module(self.codec)


def _digits(*lengths: int) -> Callable[[str], bool]:
    return lambda value: value.isdigit() and len(value) in lengths


PROTOCOLS: dict[str, Protocol] = {
    # Concox GT06 family: the terminal id in the login packet is the IMEI (BCD, 15 digits).
    "gt06": Protocol(
        "GT06",
        _("a 15-digit IMEI with a valid Luhn check digit"),
        is_valid_imei,
        "gateway.protocols.gt06",
    ),
    # JT/T 808: terminal phone number, BCD[6] = 12 digits (2011/2013), BCD[10] = 20 digits (2019).
    "jt808": Protocol(
        "JT/T 808",
        _("a terminal id of 12 or 20 digits"),
        _digits(12, 20),
        "gateway.protocols.jt808",
    ),
    # H02: device id of 10 digits (older firmware) or the 15-digit IMEI.
    "h02": Protocol(
        "H02", _("a device id of 10 or 15 digits"), _digits(10, 15), "gateway.protocols.h02"
    ),
}


def protocol_choices() -> list[tuple[str, str]]:
    return [(key, p.label) for key, p in PROTOCOLS.items()]


def normalize_identifier(value: str) -> str:
    return (value or "").strip()
