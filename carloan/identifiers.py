"""Pure checks and normalisers for the identifiers the platform meets: plates, VINs, resident ID
numbers, IMEIs, ICCIDs and phone numbers. No Django here; `carloan.validators` wraps these.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# --- Chinese licence plates (GA 36-2018) ----------------------------------------------------
# Province abbreviations used as the first character of civil plates.
PROVINCE_CHARS = "京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新"
# Serial characters: digits and letters without I and O (kept apart from 1 and 0).
_SERIAL = "0-9A-HJ-NP-Z"
_PLATE_RE = re.compile(
    rf"^[{PROVINCE_CHARS}][A-HJ-Z]"
    r"(?:"
    # ordinary 7-character plate, optionally ending in a usage character (trailer, coach, police,
    # Hong Kong / Macau cross-border)
    rf"[{_SERIAL}]{{4}}[{_SERIAL}挂学警港澳领]"
    # small new-energy plate, 8 characters: D/F (and since 2022 A-K: A-E pure electric,
    # F-K others) then a letter or digit, then four digits
    rf"|[A-HJK][{_SERIAL}]\d{{4}}"
    # large new-energy plate, 8 characters: five digits then D (electric) or F (hybrid)
    r"|\d{5}[DF]"
    r")$"
)
_PLATE_NOISE = re.compile(r"[\s·•.\-]")


def normalize_plate(value: str) -> str:
    """Upper-case and drop the separators people type (spaces, middle dots, dashes)."""
    return _PLATE_NOISE.sub("", value or "").upper()


def is_valid_plate(value: str) -> bool:
    return bool(_PLATE_RE.match(normalize_plate(value)))


def is_new_energy_plate(value: str) -> bool:
    plate = normalize_plate(value)
    return len(plate) == 8 and is_valid_plate(plate)


# --- VIN (ISO 3779 / GB 16735: 17 characters, check digit at position 9) ----------------------
_VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")  # I, O and Q are never used
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def normalize_vin(value: str) -> str:
    return (value or "").strip().upper()


def vin_check_digit(vin: str) -> str:
    """The check character a 17-character VIN must carry at position 9 ('0'-'9' or 'X')."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid_vin(value: str) -> bool:
    vin = normalize_vin(value)
    return bool(_VIN_RE.match(vin)) and vin[8] == vin_check_digit(vin)


# --- Resident identity card number (GB 11643-1999) ------------------------------------------
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# First two digits: province-level division codes (GB/T 2260).
ID_PROVINCE_CODES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64"}
    | {"65", "71", "81", "82"}
)


@dataclass(frozen=True)
class IdNumberInfo:
    number: str
    region_code: str
    birth_date: dt.date
    sex: str  # "male" | "female"


def normalize_id_number(value: str) -> str:
    return (value or "").strip().upper()


def id_number_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _today_in_china() -> dt.date:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()


def parse_id_number(value: str, *, today: dt.date | None = None) -> IdNumberInfo | None:
    """Return what an 18-character ID number says, or None when it is not valid:
    format, province code, a real birth date not in the future, and the check character."""
    number = normalize_id_number(value)
    if not _ID_RE.match(number) or number[:2] not in ID_PROVINCE_CODES:
        return None
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None
    if birth.year < 1900 or birth > (today or _today_in_china()):
        return None
    if number[17] != id_number_check_char(number[:17]):
        return None
    return IdNumberInfo(
        number=number,
        region_code=number[:6],
        birth_date=birth,
        sex="male" if int(number[16]) % 2 else "female",
    )


def is_valid_id_number(value: str) -> bool:
    return parse_id_number(value) is not None


# --- IMEI (15 digits, Luhn check digit) and other device identifiers ------------------------
def luhn_ok(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def is_valid_imei(value: str) -> bool:
    return len(value) == 15 and value.isdigit() and luhn_ok(value)


_ICCID_RE = re.compile(r"^89[0-9A-F]{17,18}$")


def is_valid_iccid(value: str) -> bool:
    """ICCID: 19 or 20 characters starting with the telecom prefix 89. Chinese operators print
    hexadecimal letters in some positions (China Mobile's 898600A...), so A-F are accepted."""
    return bool(_ICCID_RE.match((value or "").strip().upper()))


# --- Phone numbers --------------------------------------------------------------------------
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def normalize_phone(value: str) -> str:
    phone = re.sub(r"[\s\-()]", "", value or "")
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            phone = phone[len(prefix) :]
    return phone


def is_valid_mobile(value: str) -> bool:
    """Mainland China mobile number: 11 digits starting 13-19 (+86 prefix tolerated)."""
    return bool(_MOBILE_RE.match(normalize_phone(value)))
