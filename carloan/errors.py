"""Domain errors. Services raise these; interfaces map them once (DRF handler, admin message)."""

from __future__ import annotations


class ApplicationError(Exception):
    """A business rule refused the operation. `message` is shown to the user as is."""

    default_code = "application_error"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}

    def __str__(self) -> str:
        return str(self.message)


class InvalidTransition(ApplicationError):
    default_code = "invalid_transition"


class ConflictError(ApplicationError):
    """The operation clashes with the current state (already bound, plate taken, ...)."""

    default_code = "conflict"


class ImportRowsError(ApplicationError):
    """An import file had bad rows: nothing was imported. `errors` lists (row number, message)."""

    default_code = "import_rejected"

    def __init__(self, message: str, *, errors: list[tuple[int, str]]):
        super().__init__(message, extra={"errors": [{"row": r, "error": e} for r, e in errors]})
        self.errors = errors
