"""Scoring an applicant with a model artefact: plain Python, no numpy, on the request path.

`Scorecard(artefact)` checks the artefact once (schema, bins, fingerprint) and keeps lookup tables;
`score(artefact_or_scorecard, applicant)` is the call the decision pipeline makes. A dict artefact
is compiled once per fingerprint and cached, so passing `ScorecardModel.artefact` straight from the
database costs a dictionary lookup after the first call. The fingerprint identifies the model: the
first dict seen with it is verified, later dicts carrying the same fingerprint reuse that compiled
model (an edited artefact must get a new fingerprint, `artefact.with_fingerprint`, to be used).

Applicant values (`applicant[name]` for every characteristic of the model; other keys are ignored):
- a characteristic that is absent from the dict is an InputError (the caller forgot it);
- None or "" is a missing value: the characteristic's missing bin;
- numeric: int, float, Decimal or a numeric string; anything else (or NaN) is an InputError;
- categorical: a string; a category the model never saw goes to the "missing / other" bin, which
  scores like the worst bin unless training had enough missing values to give it its own points.

The score is the sum of the characteristics' points (integers), clipped to [min_score, max_score];
the band is the highest band whose `min_score` it reaches. Reason codes: the (at most) three
characteristics whose points fall furthest below the best points that characteristic can give,
largest shortfall first (ties in the model's characteristic order); a characteristic in its best
bin costs nothing and is never a reason.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from credit.scorecard.artefact import KIND, SCHEMA_VERSION, check_fingerprint
from credit.scorecard.data import CATEGORICAL, NUMERIC
from credit.scorecard.errors import ArtefactError, InputError, gettext_noop

REASON_CODES = 3
_CACHE_SIZE = 16


@dataclass(frozen=True, slots=True)
class ReasonCode:
    characteristic: str
    bin: str  # the label of the applicant's bin
    points: int
    best_points: int

    @property
    def shortfall(self) -> int:
        return self.best_points - self.points

    def as_dict(self) -> dict[str, Any]:
        return {
            "characteristic": self.characteristic,
            "bin": self.bin,
            "points": self.points,
            "best_points": self.best_points,
            "shortfall": self.shortfall,
        }


@dataclass(frozen=True, slots=True)
class ScoreResult:
    score: int  # clipped to the scaling range
    band: str
    points: dict[str, int]  # per characteristic, in the model's order
    bins: dict[str, str]  # the label of each characteristic's bin
    reason_codes: tuple[ReasonCode, ...]
    raw_score: int  # the sum of the points before clipping
    probability_bad: float  # implied by the raw score and the scaling (training-sample odds)
    model: str  # "name version"

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "band": self.band,
            "points": dict(self.points),
            "bins": dict(self.bins),
            "reason_codes": [r.as_dict() for r in self.reason_codes],
            "raw_score": self.raw_score,
            "probability_bad": self.probability_bad,
            "model": self.model,
        }


def _fail(template: str, **params: object) -> ArtefactError:
    return ArtefactError(template, params)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class _Characteristic:
    __slots__ = ("name", "kind", "edges", "lookup", "points", "labels", "best", "missing")

    def __init__(self, spec: Mapping[str, Any]):
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(gettext_noop("A characteristic of the model has no name."))
        self.name = name
        self.kind = spec.get("kind")
        if self.kind not in (NUMERIC, CATEGORICAL):
            raise _fail(
                gettext_noop("Characteristic %(name)s has an unknown kind %(kind)r."),
                name=name,
                kind=self.kind,
            )
        bins = spec.get("bins")
        if (
            not isinstance(bins, list)
            or len(bins) < 2
            or not all(isinstance(b, dict) for b in bins)
        ):
            raise _fail(
                gettext_noop("Characteristic %(name)s needs its bins and a missing bin."),
                name=name,
            )
        *regular, missing = bins
        if not missing.get("missing") or any(b.get("missing") for b in regular):
            raise _fail(
                gettext_noop("Characteristic %(name)s: the missing bin must be the last bin."),
                name=name,
            )
        self.points: list[int] = []
        self.labels: list[str] = []
        for b in bins:
            points = b.get("points")
            if not isinstance(points, int) or isinstance(points, bool):
                raise _fail(
                    gettext_noop("Characteristic %(name)s: every bin needs integer points."),
                    name=name,
                )
            self.points.append(points)
            self.labels.append(str(b.get("label", "")))
        self.missing = len(regular)
        self.best = max(self.points)
        self.edges: list[float] = []
        self.lookup: dict[str, int] = {}
        if self.kind == NUMERIC:
            for i, b in enumerate(regular):
                lower, upper = b.get("lower"), b.get("upper")
                want_lower = i > 0
                want_upper = i < len(regular) - 1
                if (lower is not None) != want_lower or (upper is not None) != want_upper:
                    raise _fail(
                        gettext_noop(
                            "Characteristic %(name)s: only the first bin is open below and only "
                            "the last is open above."
                        ),
                        name=name,
                    )
                if upper is not None:
                    if not _is_number(upper) or (self.edges and upper <= self.edges[-1]):
                        raise _fail(
                            gettext_noop(
                                "Characteristic %(name)s: bin edges must be increasing numbers."
                            ),
                            name=name,
                        )
                    nxt = regular[i + 1].get("lower")
                    if nxt != upper:
                        raise _fail(
                            gettext_noop("Characteristic %(name)s: bins must be contiguous."),
                            name=name,
                        )
                    self.edges.append(float(upper))
        else:
            for i, b in enumerate(regular):
                cats = b.get("categories")
                if not isinstance(cats, list) or not cats:
                    raise _fail(
                        gettext_noop("Characteristic %(name)s: every bin needs its categories."),
                        name=name,
                    )
                for cat in cats:
                    if not isinstance(cat, str) or cat in self.lookup:
                        raise _fail(
                            gettext_noop(
                                "Characteristic %(name)s: category %(category)r is not a string "
                                "or is in two bins."
                            ),
                            name=name,
                            category=cat,
                        )
                    self.lookup[cat] = i

    def bin_of(self, value: Any) -> int:
        if value is None or value == "":
            return self.missing
        if self.kind == NUMERIC:
            if not _is_number(value):
                value = self._number(value)
            return bisect_right(self.edges, value)
        if not isinstance(value, str):
            raise InputError(
                gettext_noop("%(characteristic)s must be text, not %(value)r."),
                {"characteristic": self.name, "value": value},
            )
        index = self.lookup.get(value)
        if index is None:
            index = self.lookup.get(value.strip(), self.missing)
        return index

    def _number(self, value: Any) -> float:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(Decimal(value.strip() if isinstance(value, str) else value))
        except (ValueError, TypeError, InvalidOperation):
            raise InputError(
                gettext_noop("%(characteristic)s must be a number, not %(value)r."),
                {"characteristic": self.name, "value": value},
            ) from None
        if not math.isfinite(number):
            raise InputError(
                gettext_noop("%(characteristic)s must be a number, not %(value)r."),
                {"characteristic": self.name, "value": value},
            )
        return number


class Scorecard:
    """A checked, ready-to-score artefact. Raises ArtefactError if the artefact cannot be used."""

    def __init__(self, artefact: Mapping[str, Any], *, verify: bool = True):
        if not isinstance(artefact, Mapping):
            raise _fail(gettext_noop("The model artefact must be a JSON object."))
        if artefact.get("kind") != KIND or artefact.get("schema_version") != SCHEMA_VERSION:
            raise _fail(
                gettext_noop(
                    "Not a scorecard artefact of schema version %(expected)s "
                    "(kind %(kind)r, version %(version)r)."
                ),
                expected=SCHEMA_VERSION,
                kind=artefact.get("kind"),
                version=artefact.get("schema_version"),
            )
        if verify:
            check_fingerprint(artefact)
        self.artefact = artefact
        self.fingerprint = artefact.get("fingerprint", "")
        self.name = str(artefact.get("name", ""))
        self.version = str(artefact.get("version", ""))
        self.label = f"{self.name} {self.version}".strip()
        specs = artefact.get("characteristics")
        if not isinstance(specs, list) or not specs:
            raise _fail(gettext_noop("The model artefact has no characteristics."))
        self.characteristics = tuple(_Characteristic(spec) for spec in specs)
        names = [c.name for c in self.characteristics]
        if len(set(names)) != len(names):
            raise _fail(gettext_noop("A characteristic appears twice in the model artefact."))
        scaling = artefact.get("scaling") or {}
        try:
            self.min_score = int(scaling["min_score"])
            self.max_score = int(scaling["max_score"])
            self.factor = float(scaling["factor"])
            self.offset = float(scaling["offset"])
        except (KeyError, TypeError, ValueError):
            raise _fail(gettext_noop("The model artefact's scaling is incomplete.")) from None
        if self.min_score >= self.max_score or self.factor <= 0:
            raise _fail(gettext_noop("The model artefact's scaling is invalid."))
        bands = artefact.get("bands")
        try:
            self.bands = [(str(b["band"]), int(b["min_score"])) for b in bands]
        except (KeyError, TypeError, ValueError):
            raise _fail(gettext_noop("The model artefact's bands are incomplete.")) from None
        lows = [low for _, low in self.bands]
        if not lows or lows[0] != self.min_score or lows != sorted(set(lows)):
            raise _fail(
                gettext_noop(
                    "The model artefact's bands must start at the minimum score and increase."
                )
            )
        self._band_lows = lows
        self._band_names = [name for name, _ in self.bands]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.characteristics]

    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.characteristics}

    def band_of(self, score: float) -> str:
        return self._band_names[max(bisect_right(self._band_lows, score) - 1, 0)]

    def bin_indices(self, applicant: Mapping[str, Any]) -> list[int]:
        """The bin index of each characteristic (model order); errors as in `score`."""
        out = []
        for c in self.characteristics:
            try:
                value = applicant[c.name]
            except KeyError:
                raise InputError(
                    gettext_noop("The applicant has no value for %(characteristic)s."),
                    {"characteristic": c.name},
                ) from None
            out.append(c.bin_of(value))
        return out

    def score(self, applicant: Mapping[str, Any]) -> ScoreResult:
        points: dict[str, int] = {}
        bins: dict[str, str] = {}
        shortfalls: list[tuple[int, int, _Characteristic, int]] = []
        total = 0
        for order, (c, index) in enumerate(
            zip(self.characteristics, self.bin_indices(applicant), strict=True)
        ):
            p = c.points[index]
            total += p
            points[c.name] = p
            bins[c.name] = c.labels[index]
            if p < c.best:
                shortfalls.append((p - c.best, order, c, index))
        shortfalls.sort()
        reasons = tuple(
            ReasonCode(c.name, c.labels[index], c.points[index], c.best)
            for _, _, c, index in shortfalls[:REASON_CODES]
        )
        clipped = min(max(total, self.min_score), self.max_score)
        # odds(good) = exp((score - offset) / factor); clamp the exponent so exp cannot overflow
        z = max(min((total - self.offset) / self.factor, 700.0), -700.0)
        return ScoreResult(
            score=clipped,
            band=self.band_of(clipped),
            points=points,
            bins=bins,
            reason_codes=reasons,
            raw_score=total,
            probability_bad=1.0 / (1.0 + math.exp(z)),
            model=self.label,
        )


_compiled: dict[str, Scorecard] = {}


def compile_artefact(artefact: Mapping[str, Any] | Scorecard) -> Scorecard:
    """The Scorecard for an artefact, cached by fingerprint (checked when first compiled)."""
    if isinstance(artefact, Scorecard):
        return artefact
    key = artefact.get("fingerprint") if isinstance(artefact, Mapping) else None
    if isinstance(key, str):
        card = _compiled.get(key)
        if card is not None:
            return card
    card = Scorecard(artefact)
    if len(_compiled) >= _CACHE_SIZE:
        _compiled.pop(next(iter(_compiled)))
    _compiled[card.fingerprint] = card
    return card


def score(artefact: Mapping[str, Any] | Scorecard, applicant: Mapping[str, Any]) -> ScoreResult:
    """Scores one applicant (a dict of characteristic values) with a model artefact."""
    if not isinstance(applicant, Mapping):
        raise InputError(gettext_noop("The applicant must be a mapping of characteristics."))
    return compile_artefact(artefact).score(applicant)
