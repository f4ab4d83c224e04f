"""Scorecard models (C5): register an artefact (checked and stored as a draft), then promote it.

One set of models serves the whole server (a champion decides, a challenger is scored in shadow on
every application), so registering and promoting is for the platform's users
(`credit.selectors.is_platform_user`) with the `credit.promote_scorecardmodel` right (checked
by the interfaces).

Status machine (SCORECARD_TRANSITIONS): draft -> champion / challenger / retired,
challenger -> champion / retired, champion -> retired; retired is final. Promoting a model to
champion retires the champion; to challenger retires the challenger.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from carloan.errors import ApplicationError, ConflictError, InvalidTransition
from carloan.services import model_save
from credit.models import ScorecardModel
from credit.scorecard import Scorecard, ScorecardError
from credit.selectors import is_platform_user

S = ScorecardModel.Status
SCORECARD_TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.CHAMPION, S.CHALLENGER, S.RETIRED},
    S.CHALLENGER: {S.CHAMPION, S.RETIRED},
    S.CHAMPION: {S.RETIRED},
    S.RETIRED: set(),
}
ARTEFACT_DIR = Path(settings.BASE_DIR) / "credit" / "scorecard" / "models"


def _require_platform(by) -> None:
    if by is not None and not is_platform_user(by):
        raise ApplicationError(
            _("Scorecards serve every lender: only the platform's staff may change them."),
            code="permission_denied",
        )


def _metrics(artefact: Mapping[str, Any]) -> dict[str, Any]:
    training = artefact.get("training") or {}
    out: dict[str, Any] = {}
    for key in ("metrics", "cv", "bands", "data"):
        if key in training:
            out[key] = training[key]
    return out


def scorecard_register(*, artefact: Any, by=None) -> ScorecardModel:
    """Store an artefact (a dict, or JSON text) as a draft model after checking it can score
    (ArtefactError otherwise: wrong schema, bins, scaling, fingerprint). Its name and version
    come from the artefact; the same name and version twice is a ConflictError."""
    _require_platform(by)
    if isinstance(artefact, str | bytes):
        try:
            artefact = json.loads(artefact)
        except ValueError as exc:
            raise ApplicationError(
                _("The file is not JSON: %(error)s") % {"error": exc}, code="artefact_invalid"
            ) from None
    try:
        card = Scorecard(artefact)
    except ScorecardError as exc:
        raise ApplicationError(exc.render(_), code="artefact_invalid") from exc
    model = ScorecardModel(
        name=card.name or "scorecard",
        version=card.version or "v1",
        status=S.DRAFT,
        artefact=dict(artefact),
        metrics=_metrics(artefact),
    )
    if ScorecardModel.objects.filter(name=model.name, version=model.version).exists():
        raise ConflictError(
            _("Model %(name)s %(version)s is registered already.")
            % {"name": model.name, "version": model.version}
        )
    try:
        with transaction.atomic():
            return model_save(model, by=by, exclude_clean=["name", "version"])
    except IntegrityError:
        raise ConflictError(_("That model was registered at the same time.")) from None


def scorecard_register_file(*, filename: str, by=None) -> ScorecardModel:
    """Register a committed artefact from credit/scorecard/models/ by its file name."""
    path = (ARTEFACT_DIR / filename).resolve()
    if path.parent != ARTEFACT_DIR.resolve() or path.suffix != ".json" or not path.is_file():
        raise ApplicationError(_("No such model file: %(name)s") % {"name": filename})
    return scorecard_register(artefact=path.read_text(encoding="utf-8"), by=by)


def artefact_files() -> list[str]:
    return sorted(p.name for p in ARTEFACT_DIR.glob("*.json"))


@transaction.atomic
def scorecard_promote(*, model: ScorecardModel, to: str, by=None) -> ScorecardModel:
    """Change a model's status along SCORECARD_TRANSITIONS (InvalidTransition otherwise). A new
    champion (challenger) retires the one before it; decisions from the next application on use
    it (the pipeline reads the statuses on every decision)."""
    _require_platform(by)
    if to not in SCORECARD_TRANSITIONS:
        raise ApplicationError(_("Unknown status %(to)s.") % {"to": to})
    row = ScorecardModel.objects.select_for_update().defer("artefact").get(pk=model.pk)
    if to not in SCORECARD_TRANSITIONS[row.status]:
        raise InvalidTransition(
            _("A %(status)s model cannot become %(to)s.")
            % {"status": row.get_status_display(), "to": S(to).label}
        )
    if to in (S.CHAMPION, S.CHALLENGER):
        ScorecardModel.objects.filter(status=to).exclude(pk=row.pk).update(status=S.RETIRED)
    row.status = to
    model_save(row, by=by, update_fields=["status"], exclude_clean=["artefact", "metrics"])
    model.status = to
    return row
