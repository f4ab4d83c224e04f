"""Checking uploaded photos before they are stored: the type comes from the bytes (Pillow opens
and verifies the image), never from the file name or the client's content type; the size limit
is TASKS_PHOTO_MAX_BYTES (default 10 MB) and oversized uploads are refused before decoding."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from carloan.errors import ApplicationError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# Pillow format -> (content type, file extension). Phones send JPEG; PNG / WebP for screenshots.
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
MAX_PIXELS = 50_000_000  # 50 MP: more than any phone camera, far below a decompression bomb


def max_bytes() -> int:
    return int(getattr(settings, "TASKS_PHOTO_MAX_BYTES", DEFAULT_MAX_BYTES))


@dataclass(frozen=True)
class CheckedPhoto:
    content: ContentFile
    filename: str
    content_type: str
    size: int
    width: int
    height: int


def _refuse(message: str, code: str) -> ApplicationError:
    return ApplicationError(message, code=code)


def check_photo(upload) -> CheckedPhoto:
    """The upload as a checked photo, or an ApplicationError saying what is wrong
    (code "photo_required", "photo_too_large", "photo_empty", "photo_type")."""
    from PIL import Image, UnidentifiedImageError

    if upload is None:
        raise _refuse(_("Attach a photo."), "photo_required")
    limit = max_bytes()
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise _refuse(
            _("The photo is %(size)s; the limit is %(limit)s.")
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)},
            "photo_too_large",
        )
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:  # the declared size lied
        raise _refuse(
            _("The photo is larger than %(limit)s.") % {"limit": filesizeformat(limit)},
            "photo_too_large",
        )
    if not data:
        raise _refuse(_("The photo is empty."), "photo_empty")
    allowed = ", ".join(sorted(FORMATS))
    not_a_photo = _refuse(
        _("This file is not a photo we accept (%(allowed)s).") % {"allowed": allowed},
        "photo_type",
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt, (width, height) = image.format, image.size
                if fmt not in FORMATS:
                    raise not_a_photo
                if width * height > MAX_PIXELS:
                    raise _refuse(
                        _("The photo has too many pixels (%(w)d x %(h)d).")
                        % {"w": width, "h": height},
                        "photo_too_large",
                    )
                image.verify()  # a corrupt structure fails here ...
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # ... and a truncated one here (verify() reads no pixels)
    except ApplicationError:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise not_a_photo from exc
    content_type, ext = FORMATS[fmt]
    return CheckedPhoto(
        content=ContentFile(data),
        filename=f"photo.{ext}",
        content_type=content_type,
        size=len(data),
        width=width,
        height=height,
    )
