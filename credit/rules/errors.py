"""Errors of the rule language, pure Python (no Django).

Every message is a `%`-template marked with `gettext_noop` (so `makemessages` collects it) plus its
parameters: the admin and the API show `error.render(gettext)`, which translates the template and
then fills it in. `str(error)` / `error.message` is the English text.

All of them are `carloan.errors.ApplicationError`s, so the DRF handler and `ScopedAdmin` map them
once like any other refused operation; `extra` carries the position for forms that want to point
at the bad token themselves.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping

from carloan.errors import ApplicationError


def gettext_noop(message: str) -> str:
    """Marks a template for translation without translating it (Django's name, so that
    `makemessages` picks these up; this module may not import Django)."""
    return message


Translate = Callable[[str], str]


def _identity(message: str) -> str:
    return message


CARET_CONTEXT = 60  # characters shown either side of the bad token
LOCATION = gettext_noop("Line %(line)s, column %(column)s: %(detail)s")


def display_width(text: str) -> int:
    """Columns `text` takes in a monospace font: CJK and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(prefix: str) -> str:
    # Keep tabs as tabs so the caret lines up whatever the tab width; wide characters take two.
    return "".join(
        "\t" if ch == "\t" else ("  " if unicodedata.east_asian_width(ch) in "WF" else " ")
        for ch in prefix
    )


class RuleError(ApplicationError):
    """A rule that cannot be compiled. `offset`/`end` index the source (0-based, characters);
    `line`/`column` are 1-based; `token` is the offending text ("" at the end of the rule)."""

    default_code = "rule_invalid"

    def __init__(
        self,
        template: str,
        params: Mapping[str, object] | None = None,
        *,
        source: str,
        start: int,
        end: int | None = None,
        code: str | None = None,
    ) -> None:
        start = max(0, min(start, len(source)))
        end = start if end is None else max(start, min(end, len(source)))
        self.template = template
        self.params: dict[str, object] = dict(params or {})
        self.source = source
        self.offset = start
        self.end = end
        self.line = source.count("\n", 0, start) + 1
        line_start = source.rfind("\n", 0, start) + 1
        self.column = start - line_start + 1
        self.token = source[start:end]
        super().__init__(
            self.render(),
            code=code,
            extra={
                "line": self.line,
                "column": self.column,
                "offset": self.offset,
                "token": self.token,
                "caret": self.caret(),
            },
        )

    @property
    def detail(self) -> str:
        """The message without its position."""
        return self.template % self.params

    def render(self, translate: Translate = _identity) -> str:
        """The message with its position, translated by `translate` (pass Django's gettext)."""
        detail = translate(self.template) % self.params
        return translate(LOCATION) % {"line": self.line, "column": self.column, "detail": detail}

    def caret(self) -> str:
        """The offending line and a line of carets under the bad token, e.g.

        applicant.age >> 18
                       ^
        """
        line_start = self.source.rfind("\n", 0, self.offset) + 1
        line_end = self.source.find("\n", self.offset)
        if line_end == -1:
            line_end = len(self.source)
        token_end = min(self.end, line_end, self.offset + 2 * CARET_CONTEXT)
        # Long lines are cut to a window around the token, marked with "...".
        left = max(line_start, self.offset - CARET_CONTEXT)
        right = min(line_end, max(token_end, self.offset + 1) + CARET_CONTEXT)
        before = ("..." if left > line_start else "") + self.source[left : self.offset]
        text = before + self.source[self.offset : right] + ("..." if right < line_end else "")
        width = max(1, display_width(self.source[self.offset : token_end]))
        return f"{text}\n{_pad(before)}{'^' * width}"

    def __reduce__(self) -> tuple[object, ...]:  # picklable (django-q2 hands errors around)
        return (
            _rebuild,
            (type(self), self.template, self.params, self.source, self.offset, self.end, self.code),
        )


def _rebuild(
    cls: type[RuleError],
    template: str,
    params: dict[str, object],
    source: str,
    start: int,
    end: int,
    code: str,
) -> RuleError:
    return cls(template, params, source=source, start=start, end=end, code=code)


class RuleSyntaxError(RuleError):
    """The text is not a well-formed expression (bad character, unbalanced bracket, ...)."""

    default_code = "rule_syntax"


class RuleTypeError(RuleError):
    """Well formed, but refers to an unknown field or function, or mixes types."""

    default_code = "rule_type"


class RuleDefinitionError(ApplicationError):
    """A rule or rule set whose metadata is wrong (unknown action, duplicate code, ...)."""

    default_code = "rule_definition"

    def __init__(self, template: str, params: Mapping[str, object] | None = None) -> None:
        self.template = template
        self.params: dict[str, object] = dict(params or {})
        super().__init__(template % self.params)

    def render(self, translate: Translate = _identity) -> str:
        return translate(self.template) % self.params


class RuleSetError(ApplicationError):
    """Some rules of a rule set do not compile: `errors` maps each rule code to its error."""

    default_code = "ruleset_invalid"
    TEMPLATE = gettext_noop("Rule %(code)s: %(error)s")

    def __init__(self, errors: Mapping[str, RuleError]) -> None:
        self.errors: dict[str, RuleError] = dict(errors)
        super().__init__(
            self.render(),
            extra={
                "errors": {
                    code: {"message": e.message, "code": e.code, **e.extra}
                    for code, e in self.errors.items()
                }
            },
        )

    def render(self, translate: Translate = _identity) -> str:
        return "\n".join(
            translate(self.TEMPLATE) % {"code": code, "error": error.render(translate)}
            for code, error in self.errors.items()
        )
