"""Bulk import of risk points (R1) from CSV or GeoJSON; `manage.py import_risk_points` is the
thin interface over it.

CSV: the header row names the columns `name,kind,lat,lon,radius_m[,address]` (Chinese headers
名称, 类型, 纬度, 经度, 半径, 地址 work too), comma, semicolon or tab separated, in UTF-8 (with or
without a BOM) or GBK / GB18030 as Chinese Excel saves it. Rows are numbered as a spreadsheet
shows them: the header is row 1.
GeoJSON: a FeatureCollection of Point features with the properties `name`, `kind`, `radius_m`
(default 200) and `address`; rows are the features' numbers, from 1.

`kind` takes the codes (`registration_office` ...), the Chinese labels (车管所, 二押点, 维修厂,
二手车市场, 自定义) or the English ones. Coordinates are WGS-84 degrees.

Checks per row: a name (at most 200 characters), a known kind, numeric latitude in -90..90 and
longitude in -180..180, a radius of 10..50,000 m (empty: 200), an address of at most 300
characters, no repeat of an earlier row or of a risk point already stored (same name, kind and
position to ~10 cm; `--replace` drops the stored ones first). A position outside China's rough
bounding box is only a **warning** (the row is imported and reported): lenders near a border have
real places there. But when swapping latitude and longitude would put it inside China, the row
is an **error**: that is the common mistake, and a risk point on the wrong continent would
silently never match.

All or nothing, like the fleet import: any bad row and nothing is imported, every bad row named
with its number and reason (`ImportRowsError`). `skip_errors=True` imports the good rows and
reports the bad ones instead. Writing is one `executemany` per chunk of rows, all in one
transaction (100k rows in a few seconds on SpatiaLite and PostGIS, see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import FloatField, Func
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import is_platform_admin
from alarms.models import RiskPoint
from carloan.errors import ApplicationError, ImportRowsError

HEADER_ROW = 1
COLUMNS = ("name", "kind", "lat", "lon", "radius_m", "address")
REQUIRED = ("name", "kind", "lat", "lon")
_HEADER_ALIASES = {
    "name": "name",
    "名称": "name",
    "kind": "kind",
    "type": "kind",
    "类型": "kind",
    "种类": "kind",
    "lat": "lat",
    "latitude": "lat",
    "纬度": "lat",
    "lon": "lon",
    "lng": "lon",
    "longitude": "lon",
    "经度": "lon",
    "radius_m": "radius_m",
    "radius": "radius_m",
    "半径": "radius_m",
    "半径(米)": "radius_m",
    "address": "address",
    "地址": "address",
}
_CHINESE_KINDS = {
    "车管所": RiskPoint.Kind.REGISTRATION_OFFICE,
    "二押点": RiskPoint.Kind.SECOND_PLEDGE,
    "维修厂": RiskPoint.Kind.REPAIR_SHOP,
    "二手车市场": RiskPoint.Kind.USED_CAR_MARKET,
    "自定义": RiskPoint.Kind.CUSTOM,
}
DEFAULT_RADIUS_M = 200
MIN_RADIUS_M, MAX_RADIUS_M = 10, 50_000
# China's rough bounding box (mainland, Hainan, the South China Sea islands), for warnings.
CHINA_BBOX = (73.4, 3.8, 135.1, 53.6)  # min lon, min lat, max lon, max lat
CHUNK = 2_000  # rows per INSERT: big enough to be fast, small enough for SQLite's limits
_EXISTING_CHUNK = 50_000


@dataclass
class RiskPointImportResult:
    rows: int = 0
    created: int = 0
    deleted: int = 0  # stored risk points dropped by `replace`
    skipped: list[tuple[int, str]] = field(default_factory=list)  # bad rows (skip_errors)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        text = _(
            "%(created)d risk points imported from %(rows)d rows in %(s).1f s "
            "(%(rate)d rows/s); %(skipped)d rows skipped, %(warnings)d warnings."
        ) % {
            "created": self.created,
            "rows": self.rows,
            "s": self.seconds,
            "rate": self.rows / self.seconds if self.seconds > 0 else 0,
            "skipped": len({r for r, _m in self.skipped}),
            "warnings": len(self.warnings),
        }
        if self.deleted:
            text += " " + _("%d stored risk points were replaced.") % self.deleted
        return text


# --- Reading files --------------------------------------------------------------------------------
def _file_error(message: str) -> ImportRowsError:
    return ImportRowsError(
        _("The file cannot be imported: nothing was imported."), errors=[(HEADER_ROW, message)]
    )


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    # Newer Excel saves UTF-8 with a BOM; Chinese Excel saves "CSV" as GBK (GB18030 is its
    # superset, so it reads both).
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_error(_("The file is not text in UTF-8 or GBK: save it as CSV (UTF-8)."))


def _column(value: str) -> str | None:
    name = re.sub(r"[\s\-]+", "_", value.strip().lower())
    return _HEADER_ALIASES.get(name) or _HEADER_ALIASES.get(value.strip())


def rows_from_csv(text: str) -> list[dict]:
    """CSV text -> row dicts keyed by column, each with its spreadsheet `row` number."""
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header or not any(c.strip() for c in header):
            raise _file_error(
                _("The file is empty: the first row must be the header (%s).") % ",".join(COLUMNS)
            )
        while header and not header[-1].strip():
            header.pop()
        names = [_column(h) for h in header]
        unknown = [h for h, n in zip(header, names, strict=True) if n is None]
        if unknown:
            looks_like_data = any(re.fullmatch(r"-?\d+(\.\d+)?", h.strip()) for h in header)
            hint = (
                _("the first row must be the header: %s") % ",".join(COLUMNS)
                if looks_like_data
                else _("expected %s") % ",".join(COLUMNS)
            )
            raise _file_error(
                _("Unknown columns: %(cols)s (%(hint)s).")
                % {"cols": ", ".join(unknown), "hint": hint}
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise _file_error(_("Repeated columns: %s.") % ", ".join(repeated))
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise _file_error(
                _("Missing columns: %(cols)s (expected %(expected)s).")
                % {"cols": ", ".join(missing), "expected": ",".join(COLUMNS)}
            )
        rows = []
        width = len(names)
        for number, cells in enumerate(reader, start=HEADER_ROW + 1):
            if not any(c.strip() for c in cells):
                continue
            row = {names[i]: cells[i].strip() if i < len(cells) else "" for i in range(width)}
            row["row"] = number
            if any(c.strip() for c in cells[width:]):
                row["_stray"] = True
            rows.append(row)
    except csv.Error as exc:
        raise _file_error(_("The CSV file is malformed: %s") % exc) from exc
    if not rows:
        raise _file_error(_("The file has a header but no data rows."))
    return rows


def rows_from_geojson(text: str) -> list[dict]:
    """A GeoJSON FeatureCollection of Points -> row dicts numbered by feature (from 1)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _file_error(_("The file is not valid JSON: %s") % exc) from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise _file_error(_("A GeoJSON file must hold one FeatureCollection."))
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise _file_error(_("The FeatureCollection has no features."))
    rows = []
    for number, feature in enumerate(features, start=1):
        row: dict = {"row": number}
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        props = (feature.get("properties") if isinstance(feature, dict) else None) or {}
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            kind = geometry.get("type") if isinstance(geometry, dict) else None
            row["_geometry"] = kind or "nothing"
        else:
            coords = geometry.get("coordinates") or []
            row["lon"] = coords[0] if len(coords) > 0 else ""
            row["lat"] = coords[1] if len(coords) > 1 else ""
        for key in ("name", "kind", "radius_m", "address"):
            value = props.get(key) if isinstance(props, dict) else None
            row[key] = "" if value is None else value
        rows.append(row)
    return rows


def read_risk_point_file(fileobj, filename: str = "") -> list[dict]:
    """Read an opened (binary) .csv or .geojson / .json file into row dicts for
    `risk_points_import`. Raises ImportRowsError (row 1) for an unreadable file or header."""
    text = _decode(fileobj.read())
    name = (filename or "").lower()
    if name.endswith((".geojson", ".json")) or (
        not name.endswith((".csv", ".txt")) and text.lstrip().startswith("{")
    ):
        return rows_from_geojson(text)
    return rows_from_csv(text)


# --- Checking rows -------------------------------------------------------------------------------
def parse_kind(value) -> str | None:
    """A kind code, its Chinese label or its English label -> the code; None when unknown."""
    text = str(value or "").strip()
    if text in _CHINESE_KINDS:
        return _CHINESE_KINDS[text]
    wanted = text.lower().replace("-", "_").replace(" ", "_")
    for kind in RiskPoint.Kind:
        if wanted in (kind.value, str(kind.label).lower().replace("-", "_").replace(" ", "_")):
            return kind.value
    return None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def _in_china(lat: float, lon: float) -> bool:
    min_lon, min_lat, max_lon, max_lat = CHINA_BBOX
    return min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


def _key(name: str, kind: str, lat: float, lon: float) -> tuple:
    # ~1e-6 degree = ~10 cm: the same place written twice, not two shops next door.
    return (name, kind, round(lat, 6), round(lon, 6))


def _check(raw: Mapping, kinds_text: str) -> tuple[tuple | None, list[str], list[str]]:
    """One row -> ((name, kind, lat, lon, radius, address) or None, errors, warnings)."""
    errors: list[str] = []
    warnings: list[str] = []
    if raw.get("_stray"):
        errors.append(_("this row has more cells than the header has columns"))
    if "_geometry" in raw:
        errors.append(_("the geometry must be a Point (got %s)") % raw["_geometry"])
    name = str(raw.get("name") or "").strip()
    if not name:
        errors.append(_("name is empty"))
    elif len(name) > 200:
        errors.append(_("name is longer than 200 characters"))
    kind = parse_kind(raw.get("kind"))
    if kind is None:
        errors.append(
            _("unknown kind '%(value)s' (expected one of: %(kinds)s)")
            % {"value": raw.get("kind") or "", "kinds": kinds_text}
        )
    lat, lon = _number(raw.get("lat")), _number(raw.get("lon"))
    where = {"lat": raw.get("lat"), "lon": raw.get("lon")}
    if "_geometry" not in raw:
        if lat is None:
            errors.append(_("latitude '%s' is not a number") % (raw.get("lat") or ""))
        if lon is None:
            errors.append(_("longitude '%s' is not a number") % (raw.get("lon") or ""))
    if lat is not None and lon is not None:
        if not _in_china(lat, lon) and _in_china(lon, lat):
            errors.append(
                _(
                    "latitude %(lat)s, longitude %(lon)s is not in China but would be the other "
                    "way round: are the columns swapped?"
                )
                % where
            )
        elif not -90 <= lat <= 90:
            errors.append(_("latitude %s is outside -90..90") % raw.get("lat"))
        elif not -180 <= lon <= 180:
            errors.append(_("longitude %s is outside -180..180") % raw.get("lon"))
        elif not _in_china(lat, lon):
            warnings.append(_("latitude %(lat)s, longitude %(lon)s is outside China") % where)
    radius_text = raw.get("radius_m")
    radius: float | None = DEFAULT_RADIUS_M
    if radius_text not in (None, ""):
        radius = _number(radius_text)
        if radius is None:
            errors.append(_("radius '%s' is not a number") % radius_text)
        elif not MIN_RADIUS_M <= round(radius) <= MAX_RADIUS_M:
            errors.append(
                _("radius %(r)s m is outside %(min)d..%(max)d m")
                % {"r": radius_text, "min": MIN_RADIUS_M, "max": MAX_RADIUS_M}
            )
    address = str(raw.get("address") or "").strip()
    if len(address) > 300:
        errors.append(_("address is longer than 300 characters"))
    if errors:
        return None, errors, warnings
    return (name, kind, lat, lon, int(round(radius)), address), errors, warnings


def _stored_keys() -> dict[tuple, int]:
    """Every stored risk point's duplicate key -> its id, read in chunks as plain values."""
    y = Func("point", function="ST_Y", output_field=FloatField())
    x = Func("point", function="ST_X", output_field=FloatField())
    out: dict[tuple, int] = {}
    last = 0
    while True:
        chunk = list(
            RiskPoint.objects.filter(pk__gt=last)
            .order_by("pk")
            .annotate(lat=y, lon=x)
            .values_list("pk", "name", "kind", "lat", "lon")[:_EXISTING_CHUNK]
        )
        for pk, name, kind, lat, lon in chunk:
            out.setdefault(_key(name, kind, lat, lon), pk)
        if len(chunk) < _EXISTING_CHUNK:
            return out
        last = chunk[-1][0]


def _validate(rows: list[dict], *, replace: bool):
    """Every row checked -> (good rows as (row number, values), errors, warnings)."""
    kinds_text = ", ".join(f"{code} / {label}" for label, code in _CHINESE_KINDS.items())
    stored = {} if replace else _stored_keys()
    seen: dict[tuple, int] = {}
    good: list[tuple[int, tuple]] = []
    errors: list[tuple[int, str]] = []
    warnings: list[tuple[int, str]] = []
    for raw in rows:
        number = raw["row"]
        values, row_errors, row_warnings = _check(raw, kinds_text)
        warnings.extend((number, w) for w in row_warnings)
        if values is not None:
            key = _key(*values[:4])
            if key in seen:
                row_errors.append(_("the same risk point is already on row %d") % seen[key])
            elif key in stored:
                row_errors.append(
                    _("this risk point is already stored (#%d); import with replace to reload")
                    % stored[key]
                )
            else:
                seen[key] = number
        if row_errors:
            errors.extend((number, e) for e in row_errors)
        else:
            good.append((number, values))
    return good, errors, warnings


def _rows_error(errors: list[tuple[int, str]]) -> ImportRowsError:
    count = len({row for row, _message in errors})
    return ImportRowsError(
        ngettext(
            "%(n)d row has errors: nothing was imported.",
            "%(n)d rows have errors: nothing was imported.",
            count,
        )
        % {"n": count},
        errors=errors,
    )


# --- Importing ---------------------------------------------------------------------------------
def _inserter() -> Callable[[list[tuple[int, tuple]]], int]:
    """A function inserting checked rows with one `executemany` per chunk. Plain SQL with the
    point built by the database (SpatiaLite `MakePoint`, PostGIS `ST_MakePoint`): a GEOS Point
    per row through GeoDjango costs more than everything else together (~4x slower). The rows
    were checked above against the same limits as the model's validators."""
    opts = RiskPoint._meta
    qn = connection.ops.quote_name
    columns = ["name", "kind", "point", "radius_m", "address", "created_at", "updated_at"]
    if connection.vendor == "postgresql":
        point = "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
    else:
        point = "MakePoint(%s, %s, 4326)"
    # Only the model's own table and column names are formatted in; values are parameters.
    sql = "INSERT INTO {} ({}) VALUES (%s, %s, {}, %s, %s, %s, %s)".format(  # noqa: S608
        qn(opts.db_table), ", ".join(qn(opts.get_field(c).column) for c in columns), point
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())

    def insert(rows: list[tuple[int, tuple]]) -> int:
        params = [
            (name, kind, lon, lat, radius, address, now, now)
            for _row, (name, kind, lat, lon, radius, address) in rows
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
        return len(params)

    return insert


def risk_points_import(
    *,
    rows: Iterable[Mapping],
    replace: bool = False,
    skip_errors: bool = False,
    by=None,
    progress: Callable[[int, int], None] | None = None,
) -> RiskPointImportResult:
    """Import risk points from row dicts (`read_risk_point_file`). All or nothing unless
    `skip_errors`; `replace` drops every stored risk point first (same transaction: a failed
    import keeps the old ones). Only platform admins (or the system, `by=None`) may import:
    risk points are shared by the whole server. `progress(done, total)` follows the writing."""
    if by is not None and not is_platform_admin(by):
        raise ApplicationError(
            _("Risk points are shared by the whole server: only platform admins import them."),
            code="permission_denied",
        )
    started = time.perf_counter()
    rows = list(rows)
    result = RiskPointImportResult(rows=len(rows))
    good, errors, warnings = _validate(rows, replace=replace)
    result.warnings = warnings
    if errors and not skip_errors:
        raise _rows_error(errors)
    result.skipped = errors
    with transaction.atomic():
        if replace:
            result.deleted, _detail = RiskPoint.objects.all().delete()
        total = len(good)
        insert = _inserter()
        for start in range(0, total, CHUNK):
            result.created += insert(good[start : start + CHUNK])
            if progress is not None:
                progress(result.created, total)
    result.seconds = time.perf_counter() - started
    return result
