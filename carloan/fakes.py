"""Generators of valid-looking identifiers for demo data, factories and benchmarks.

Deterministic given a `random.Random`; every value passes the checks in `carloan.identifiers`.
"""

from __future__ import annotations

import datetime as dt
import random

from carloan.identifiers import id_number_check_char, luhn_ok, vin_check_digit

_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_PLATE_SERIAL = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
# World manufacturer identifiers of Chinese makers (first three VIN characters).
WMIS = ("LSV", "LFV", "LGB", "LVS", "LHG", "LBV", "LSG", "LGW")


def make_vin(rng: random.Random) -> str:
    body = rng.choice(WMIS) + "".join(rng.choice(_VIN_CHARS) for _ in range(14))
    return body[:8] + vin_check_digit(body[:8] + "0" + body[9:]) + body[9:]


def make_imei(rng: random.Random) -> str:
    # 86 = reporting body prefix used by Chinese-made modules.
    head = "86" + "".join(rng.choice("0123456789") for _ in range(12))
    for last in "0123456789":
        if luhn_ok(head + last):
            return head + last
    raise AssertionError("unreachable: one Luhn digit always fits")


def make_terminal_id(rng: random.Random, length: int = 12) -> str:
    return "".join(rng.choice("0123456789") for _ in range(length))


def make_plate(
    rng: random.Random, province: str = "陕", authority: str = "A", new_energy: bool = False
) -> str:
    if new_energy:
        return (
            province
            + authority
            + rng.choice("DF")
            + rng.choice(_PLATE_SERIAL)
            + "".join(rng.choice("0123456789") for _ in range(4))
        )
    # Most civil plates carry at most two letters in the serial; digits dominate.
    letters = rng.choice((0, 1, 1, 2))
    serial = [rng.choice(_PLATE_SERIAL[:24]) for _ in range(letters)]
    serial += [rng.choice("0123456789") for _ in range(5 - letters)]
    return province + authority + "".join(serial)


def make_id_number(rng: random.Random, region: str = "610113") -> str:
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 45))
    first17 = f"{region}{birth:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + id_number_check_char(first17)


def make_mobile(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def make_iccid(rng: random.Random) -> str:
    return "898600" + "".join(rng.choice("0123456789") for _ in range(14))
