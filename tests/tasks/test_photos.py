"""Photos on work orders: checked by content and size, stored under MEDIA_ROOT/tasks/<order>/,
with the worker's position; what the phone is told when a file is refused."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tasks.models import WorkOrderRecord
from tests.tasks.conftest import make_order, started


def image_bytes(fmt="JPEG", size=(64, 48), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    return image_bytes("JPEG")


def upload(data: bytes, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def post_photo(client, order, data, name="p.jpg", **extra):
    return client.post(
        f"/api/v1/mobile/orders/{order.pk}/photos/",
        {"photo": upload(data, name), **extra},
        format="multipart",
    )


def test_a_jpeg_is_stored_under_media_with_its_checked_type_and_position(field, api, media):
    order = started(field)
    client = api(field["a1_installer"])
    answer = post_photo(
        client, order, jpeg_bytes(), name="IMG_001.JPG", caption="VIN plate", lat=34.26, lon=108.94
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["kind"], body["note"], body["photo_type"]) == ("photo", "VIN plate", "image/jpeg")
    assert (body["photo_width"], body["photo_height"]) == (64, 48)
    assert (body["lat"], body["lon"]) == (34.26, 108.94)
    record = WorkOrderRecord.objects.get(pk=body["id"])
    stored = Path(record.photo.path)
    assert stored.is_relative_to(media / "tasks" / str(order.pk)) and stored.suffix == ".jpg"
    assert stored.read_bytes() == jpeg_bytes()
    # The phone's position reached the worker's presence too.
    me = client.get("/api/v1/mobile/me/").json()
    assert (me["presence"]["lat"], me["presence"]["lon"]) == (34.26, 108.94)


@pytest.mark.parametrize(
    "fmt,ext,ctype", [("PNG", ".png", "image/png"), ("WEBP", ".webp", "image/webp")]
)
def test_png_and_webp_keep_their_real_extension_whatever_the_name_says(
    field, api, media, fmt, ext, ctype
):
    order = started(field)
    answer = post_photo(api(field["a1_installer"]), order, image_bytes(fmt), name="x.jpg")
    assert answer.status_code == 201
    assert answer.json()["photo_type"] == ctype
    record = WorkOrderRecord.objects.get(pk=answer.json()["id"])
    assert record.photo.name.endswith(ext)


@pytest.mark.parametrize(
    "data,name,expected",
    [
        (b"%PDF-1.7 not a photo at all", "contract.jpg", "photo_type"),
        (b"GIF89a" + b"\x00" * 40, "anim.jpg", "photo_type"),
        (jpeg_bytes()[:200], "cut.jpg", "photo_type"),  # truncated upload
        (image_bytes("GIF"), "pic.gif", "photo_type"),  # a real image, but not one we take
        (image_bytes("BMP"), "pic.jpg", "photo_type"),
    ],
)
def test_files_that_are_not_accepted_photos_are_refused_by_content(
    field, api, media, data, name, expected
):
    order = started(field)
    answer = post_photo(api(field["a1_installer"]), order, data, name=name)
    assert answer.status_code == 400
    assert answer.json()["code"] == expected
    assert "JPEG, PNG, WEBP" in answer.json()["detail"]
    assert not order.records.filter(kind="photo").exists()
    assert not (media / "tasks").exists() or not any((media / "tasks").rglob("*.*"))


def test_an_empty_file_is_refused(field, api, media):
    order = started(field)
    answer = post_photo(api(field["a1_installer"]), order, b"")
    assert answer.status_code == 400
    # DRF itself refuses an empty upload before the service sees it.
    assert "photo" in answer.json() or answer.json().get("code") == "photo_empty"


def test_a_photo_over_the_size_limit_is_refused_with_both_sizes(field, api, media, settings):
    settings.TASKS_PHOTO_MAX_BYTES = 2_000
    order = started(field)
    noise = random.Random(7).randbytes(120 * 120 * 3)  # noise does not compress
    buffer = io.BytesIO()
    Image.frombytes("RGB", (120, 120), noise).save(buffer, format="PNG")
    big = buffer.getvalue()
    assert len(big) > 2_000
    answer = post_photo(api(field["a1_installer"]), order, big, name="big.png")
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "photo_too_large"
    assert "the limit is 2.0\xa0KB" in body["detail"]
    assert not order.records.filter(kind="photo").exists()


def test_the_default_limit_is_10_mb(field):
    from tasks.photos import DEFAULT_MAX_BYTES, max_bytes

    assert DEFAULT_MAX_BYTES == max_bytes() == 10 * 1024 * 1024


def test_a_missing_file_or_a_bad_position_is_a_field_error(field, api, media):
    order = started(field)
    client = api(field["a1_installer"])
    answer = client.post(f"/api/v1/mobile/orders/{order.pk}/photos/", {}, format="multipart")
    assert answer.status_code == 400 and "photo" in answer.json()
    answer = post_photo(client, order, jpeg_bytes(), lat=34.2)
    assert answer.status_code == 400 and "non_field_errors" in answer.json()
    answer = post_photo(client, order, jpeg_bytes(), lat=95, lon=108)
    assert answer.status_code == 400 and "lat" in answer.json()


def test_photos_are_taken_only_once_the_order_is_accepted_and_until_it_is_done(field, api, media):
    order = make_order(field, assignee="a1_installer")
    client = api(field["a1_installer"])
    answer = post_photo(client, order, jpeg_bytes())
    assert answer.status_code == 409
    client.post(f"/api/v1/mobile/orders/{order.pk}/accept/", {}, format="json")
    assert post_photo(client, order, jpeg_bytes()).status_code == 201
