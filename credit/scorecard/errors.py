"""Errors of the scorecard engine, pure Python (no Django).

Every message is a `%`-template marked with `gettext_noop` (so `makemessages` collects it) plus its
parameters; interfaces show `error.render(gettext)`, which translates the template and then fills
it in. `str(error)` / `error.message` is the English text.

They are `carloan.errors.ApplicationError`s, so the DRF handler and the admin map them once like any
other refused operation; `code` tells them apart and `extra` carries the parameters (line, column,
characteristic, value) for an interface that wants to point at the bad cell itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from carloan.errors import ApplicationError

Translate = Callable[[str], str]


def gettext_noop(message: str) -> str:
    """Marks a template for translation without translating it (Django's name, so that
    `makemessages` picks these up; this package may not import Django)."""
    return message


def _identity(message: str) -> str:
    return message


class ScorecardError(ApplicationError):
    """Base class: `template % params` is the message."""

    default_code = "scorecard_error"

    def __init__(
        self,
        template: str,
        params: Mapping[str, object] | None = None,
        *,
        code: str | None = None,
    ):
        self.template = template
        self.params = dict(params or {})
        super().__init__(self.render(), code=code, extra=self.params)

    def render(self, translate: Translate = _identity) -> str:
        """The message with its template translated by `translate` (e.g. Django's `gettext`)."""
        return translate(self.template) % self.params if self.params else translate(self.template)


class DataError(ScorecardError):
    """A data file (CSV) that cannot be used: a missing column, a bad value, too few rows.
    `params` holds `line` (1-based line of the file, the header is line 1) and `column` when the
    problem is in one cell."""

    default_code = "scorecard_data"


class InputError(ScorecardError):
    """An applicant that cannot be scored: a characteristic is absent or its value has the wrong
    type. `params["characteristic"]` names it."""

    default_code = "scorecard_input"


class ArtefactError(ScorecardError):
    """A model artefact that is not a valid scorecard (wrong schema version, inconsistent bins,
    fingerprint mismatch)."""

    default_code = "scorecard_artefact"
