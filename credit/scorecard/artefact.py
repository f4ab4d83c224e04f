"""The model artefact: one JSON document that holds everything needed to score, explain and monitor
(docs/CREDIT.md, "The artefact contract"). Training writes it; the request path only reads it.

Top-level keys (schema version 1):
    schema_version  1
    kind            "carloan.scorecard"
    name, version   e.g. "german", "v1"
    fingerprint     "sha256:<hex>" of the canonical JSON of everything else (checked on load)
    characteristics [{name, kind, trend, iv, coefficient, bins: [{label, lower, upper | categories,
                     missing, good, bad, share, woe, points}]}]   (the missing / other bin is last)
    model           {intercept, coefficients, l2}  (logit of good on WOE; for the record)
    scaling         {base_score, base_odds, pdo, factor, offset, min_score, max_score}
    bands           [{band, min_score}] ascending: reject 300, review 500, approve 550
    baseline        {rows, score: {edges, shares}, characteristics: {name: [share per bin]}}
    training        {data, config, metrics, cv, selection, iv, bands}  (what a reviewer reads)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from credit.scorecard.errors import ArtefactError, gettext_noop

SCHEMA_VERSION = 1
KIND = "carloan.scorecard"


def canonical_json(artefact: Mapping[str, Any]) -> str:
    """Key-sorted compact JSON of the artefact without its fingerprint (what the hash covers)."""
    body = {k: v for k, v in artefact.items() if k != "fingerprint"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(artefact: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(artefact).encode()).hexdigest()


def with_fingerprint(artefact: dict[str, Any]) -> dict[str, Any]:
    """The artefact with its `fingerprint` (re)computed: call after any edit."""
    out = {k: v for k, v in artefact.items() if k != "fingerprint"}
    out["fingerprint"] = fingerprint(out)
    return out


def check_fingerprint(artefact: Mapping[str, Any]) -> None:
    """Raises ArtefactError unless the stored fingerprint matches the content."""
    stored = artefact.get("fingerprint")
    if not isinstance(stored, str):
        raise ArtefactError(gettext_noop("The model artefact has no fingerprint."))
    if stored != fingerprint(artefact):
        raise ArtefactError(
            gettext_noop(
                "The model artefact was changed after training (its fingerprint does not match)."
            )
        )


def dumps(artefact: Mapping[str, Any]) -> str:
    """Readable JSON (indented, keys in a stable order) for files under version control."""
    return json.dumps(artefact, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def save(artefact: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(dumps(artefact), encoding="utf-8")


def load(path: str | Path) -> dict[str, Any]:
    """Reads and checks an artefact file (schema version, structure, fingerprint)."""
    from credit.scorecard.scoring import Scorecard  # the checks live with the compiled form

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ArtefactError(gettext_noop("No such file: %(path)s"), {"path": str(path)}) from exc
    try:
        artefact = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtefactError(
            gettext_noop("%(path)s is not JSON: %(detail)s"), {"path": str(path), "detail": exc.msg}
        ) from exc
    Scorecard(artefact)  # raises ArtefactError when it cannot score
    return artefact
