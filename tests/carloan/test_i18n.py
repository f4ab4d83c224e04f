"""The zh-hans catalogue (S1): complete, compiled, and what the back office shows.

English is the source language; zh-hans is the default for users (carloan/settings.py) while the
test settings run in English, so each case here picks its language explicitly.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from carloan.validators import validate_vin

REPO = Path(__file__).resolve().parents[2]
PO = REPO / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
CJK = re.compile(r"[\u4e00-\u9fff]")


def po_entries(text: str) -> list[dict[str, object]]:
    """The entries of a .po file: {"flags": [...], "msgid": str, "msgstr": [str, ...]}.

    Enough of the format for this check: comments, flags, msgid/msgid_plural/msgstr[n] and their
    continuation lines. Obsolete entries (#~) are skipped."""
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        flags: list[str] = []
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                flags += [f.strip() for f in line[2:].split(",")]
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                fields[key] += line[1:-1]
            else:
                key, _, rest = line.partition(" ")
                fields[key] = rest.strip()[1:-1]
        if fields:
            entries.append(
                {
                    "flags": flags,
                    "msgid": fields.get("msgid", ""),
                    "msgstr": [v for k, v in fields.items() if k.startswith("msgstr")],
                }
            )
    return entries


@pytest.fixture(scope="session")
def zh_catalogue():
    """The compiled catalogue: .mo files are git-ignored, so build it when missing or stale."""
    lock_path = Path(tempfile.gettempdir()) / "carloan-compilemessages.lock"
    with lock_path.open("w") as lock:  # pytest-xdist workers share the locale directory
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
            old_cwd = os.getcwd()
            os.chdir(REPO)  # compilemessages also walks the current directory
            try:
                call_command("compilemessages", ignore_patterns=[".venv", "var"], verbosity=0)
            finally:
                os.chdir(old_cwd)
            # Forget catalogues loaded before the .mo existed (what Django does when
            # LOCALE_PATHS changes in a test).
            from django.utils.translation import trans_real

            trans_real._translations = {}
            trans_real._default = None
    return MO


def test_every_message_is_translated_and_none_is_fuzzy():
    entries = po_entries(PO.read_text(encoding="utf-8"))
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == ""
    assert "Plural-Forms: nplurals=1; plural=0;" in header["msgstr"][0]
    assert "Language: zh_Hans" in header["msgstr"][0]
    assert len(messages) > 100
    assert [e["msgid"] for e in entries if "fuzzy" in e["flags"]] == []
    assert [e["msgid"] for e in messages if not all(e["msgstr"])] == []

    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext's msgfmt is needed (make setup installs it)"
    result = subprocess.run(  # noqa: S603 - fixed argv, our own catalogue
        [msgfmt, "--check", "--statistics", "-o", os.devnull, str(PO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "translated messages" in result.stderr
    assert "untranslated" not in result.stderr
    assert "fuzzy" not in result.stderr


@pytest.mark.parametrize("how", ["default", "accept-language", "cookie"])
def test_admin_speaks_chinese(world, client, settings, zh_catalogue, how):
    kwargs = {}
    if how == "default":
        settings.LANGUAGE_CODE = "zh-hans"  # as in carloan/settings.py
    elif how == "accept-language":
        kwargs["HTTP_ACCEPT_LANGUAGE"] = "zh-hans,zh;q=0.9,en;q=0.5"
    else:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    client.force_login(world.users["a_admin"])

    response = client.get(reverse("admin:vehicles_vehicle_changelist"), **kwargs)

    assert response.status_code == 200
    assert response.headers["Content-Language"] == "zh-hans"
    body = response.content.decode()
    assert "车辆" in body  # vehicles
    assert "车牌号" in body  # the "plate" column
    assert "回款状态" in body  # the "repayment status" column and filter
    assert "Repayment status" not in body


def test_admin_speaks_english_when_asked(world, client, settings, zh_catalogue):
    settings.LANGUAGE_CODE = "zh-hans"
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(world.users["a_admin"])

    response = client.get(reverse("admin:vehicles_vehicle_changelist"))

    assert response.status_code == 200
    assert response.headers["Content-Language"] == "en"
    body = response.content.decode()
    assert "Plate" in body
    assert "Repayment status" in body
    assert "车牌号" not in body
    assert "回款状态" not in body


def test_validation_messages_are_translated(zh_catalogue):
    with pytest.raises(ValidationError) as excinfo:
        validate_vin("1M8GDM9A1KP042788")
    with translation.override("zh-hans"):
        (message,) = excinfo.value.messages
    assert CJK.search(message), message
    assert "1M8GDM9A1KP042788" in message  # the placeholder survived translation
    assert "车架号" in message
    with translation.override("en"):
        (message,) = excinfo.value.messages
    assert "is not a valid VIN" in message


def test_languages_offered_are_the_ones_translated():
    assert [code for code, _ in settings.LANGUAGES] == ["zh-hans", "en"]
    with translation.override("zh-hans"):
        assert str(dict(settings.LANGUAGES)["zh-hans"]) == "简体中文"
