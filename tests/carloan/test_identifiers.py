"""Identifier checks with real-format examples (no database)."""

import datetime as dt

import pytest

from carloan import identifiers as ids
from devices.protocols import PROTOCOLS


@pytest.mark.parametrize(
    "plate",
    [
        "陕A12345",
        "京N8P8F8",
        "粤B·D12345",
        "沪AF12345",
        "陕A12345D",
        "川A 1234学",
        "粤Z1234港",
        "苏E5678警",
    ],
)
def test_valid_plates(plate):
    assert ids.is_valid_plate(plate)


@pytest.mark.parametrize(
    "plate",
    [
        "",
        "陕A1234",
        "陕A123456",
        "AA12345",
        "陕I12345",
        "陕A1234O",
        "陕AD1234X",
        "X陕12345",
        "陕A12345DD",
    ],
)
def test_invalid_plates(plate):
    assert not ids.is_valid_plate(plate)


def test_new_energy_plates_have_eight_characters():
    assert ids.is_new_energy_plate("陕AD12345")  # small car, pure electric
    assert ids.is_new_energy_plate("陕A12345F")  # large vehicle, hybrid
    assert not ids.is_new_energy_plate("陕A12345")
    assert ids.normalize_plate(" 陕a·d1234 5 ") == "陕AD12345"


def test_vin_check_digit():
    # ISO 3779 worked example (check digit X at position 9).
    assert ids.is_valid_vin("1M8GDM9AXKP042788")
    assert ids.vin_check_digit("1M8GDM9AXKP042788") == "X"
    assert not ids.is_valid_vin("1M8GDM9A1KP042788")  # wrong check digit
    assert not ids.is_valid_vin("1M8GDM9AXKP04278")  # 16 characters
    assert not ids.is_valid_vin("IM8GDM9AXKP042788")  # letter I is never used
    assert ids.is_valid_vin("1m8gdm9axkp042788")  # lower case is normalised


def test_id_number_checksum_and_derived_facts():
    # GB 11643-1999's own example number.
    info = ids.parse_id_number("11010519491231002X")
    assert info is not None
    assert info.birth_date == dt.date(1949, 12, 31)
    assert info.sex == "female"
    assert info.region_code == "110105"
    assert ids.parse_id_number("11010519491231002x") is not None  # lower-case x
    assert ids.parse_id_number("110105194912310021") is None  # wrong check character
    assert ids.parse_id_number("110105194913310028") is None  # month 13
    assert ids.parse_id_number("99010519491231002X") is None  # no such province
    assert ids.parse_id_number("11010519491231002") is None  # 17 characters


def test_future_birth_dates_are_refused():
    first17 = "11010520300101001"
    number = first17 + ids.id_number_check_char(first17)
    assert ids.parse_id_number(number, today=dt.date(2026, 11, 22)) is None


@pytest.mark.parametrize(
    ("protocol", "identifier", "ok"),
    [
        ("gt06", "490154203237518", True),  # Luhn-valid IMEI
        ("gt06", "490154203237517", False),  # wrong Luhn digit
        ("gt06", "49015420323751", False),  # 14 digits
        ("jt808", "013912345678", True),  # 2013: BCD[6] phone number
        ("jt808", "00000000013912345678", True),  # 2019: BCD[10]
        ("jt808", "0139123456789", False),  # 13 digits
        ("h02", "1234567890", True),
        ("h02", "490154203237518", True),
        ("h02", "12345678901", False),
        ("h02", "12345abcde", False),
    ],
)
def test_device_identifiers_per_protocol(protocol, identifier, ok):
    assert PROTOCOLS[protocol].identifier_ok(identifier) is ok


def test_iccid_and_mobile():
    assert ids.is_valid_iccid("89860012345678901234")
    assert ids.is_valid_iccid("898600A1234567890123")  # China Mobile prints hex letters
    assert not ids.is_valid_iccid("12345678901234567890")
    assert ids.is_valid_mobile("13800138000")
    assert ids.is_valid_mobile("+86 138-0013-8000")
    assert not ids.is_valid_mobile("12800138000")
    assert not ids.is_valid_mobile("1380013800")
