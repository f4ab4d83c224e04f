"""Tokenizer of the rule language.

Tokens: numbers (`18`, `0.35`; no exponent, no leading dot), strings in single or double quotes
(any Unicode inside, escapes `\\\\ \\' \\" \\n \\t`, one line), dotted names (`applicant.age`), the
keywords `and or not in between is null true false` (case-insensitive), operators
`+ - * / % == != < <= > >=`, brackets `( ) [ ]`, commas, and `#` comments to the end of the line.
Mistakes people make often get a hint: `=` for `==`, `&&`/`||`/`!` for `and`/`or`/`not`, curly
quotes and full-width punctuation typed with a Chinese input method.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from credit.rules.errors import RuleSyntaxError, gettext_noop

MAX_SOURCE_LENGTH = 4000  # characters; a rule is a condition, not a program

NUMBER = "number"
STRING = "string"
NAME = "name"
KEYWORD = "keyword"
OP = "op"
EOF = "eof"

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "is", "null", "true", "false"})
_TWO_CHAR_OPS = ("==", "!=", "<=", ">=")
_ONE_CHAR_OPS = frozenset("+-*/%<>()[],")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
_CURLY_QUOTES = "\u201c\u201d\u2018\u2019\u300c\u300d"  # “ ” ‘ ’ 「 」


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    value: object  # int | Decimal | str (string contents, name, keyword in lower case, operator)
    start: int
    end: int

    def is_op(self, *ops: str) -> bool:
        return self.kind == OP and self.value in ops

    def is_keyword(self, *words: str) -> bool:
        return self.kind == KEYWORD and self.value in words


def _is_name_start(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_name_char(ch: str) -> bool:
    return _is_name_start(ch) or ("0" <= ch <= "9")


def tokenize(source: str) -> list[Token]:
    """The tokens of `source`, ending with an EOF token; RuleSyntaxError on the first bad one."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise RuleSyntaxError(
            gettext_noop("the rule is too long: %(length)s characters, at most %(max)s"),
            {"length": len(source), "max": MAX_SOURCE_LENGTH},
            source=source,
            start=MAX_SOURCE_LENGTH,
            end=len(source),
            code="rule_too_long",
        )
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in " \t\r\n\f\v":
            i += 1
        elif ch == "#":
            newline = source.find("\n", i)
            i = n if newline == -1 else newline
        elif "0" <= ch <= "9":
            tokens.append(_number(source, i))
            i = tokens[-1].end
        elif ch in "'\"":
            tokens.append(_string(source, i))
            i = tokens[-1].end
        elif _is_name_start(ch):
            tokens.append(_name(source, i))
            i = tokens[-1].end
        elif source.startswith(_TWO_CHAR_OPS, i):
            tokens.append(Token(OP, source[i : i + 2], i, i + 2))
            i += 2
        elif ch in _ONE_CHAR_OPS:
            if source.startswith("<>", i):
                raise _bad(source, i, 2, gettext_noop("'<>' is not an operator: use !="))
            tokens.append(Token(OP, ch, i, i + 1))
            i += 1
        else:
            raise _unexpected(source, i)
    tokens.append(Token(EOF, "", n, n))
    return tokens


def _bad(source: str, start: int, length: int, template: str, **params: object) -> RuleSyntaxError:
    return RuleSyntaxError(template, params, source=source, start=start, end=start + length)


def _unexpected(source: str, i: int) -> RuleSyntaxError:
    ch = source[i]
    two = source[i : i + 2]
    if two in ("&&", "||"):
        word = "and" if two == "&&" else "or"
        return _bad(
            source,
            i,
            2,
            gettext_noop("'%(op)s' is not an operator: use %(word)s"),
            op=two,
            word=word,
        )
    if ch == "=":
        return _bad(source, i, 1, gettext_noop("'=' is not an operator: use == to compare"))
    if ch == "!":
        return _bad(
            source, i, 1, gettext_noop("'!' is not an operator: use not (or != to compare)")
        )
    if ch == "&" or ch == "|":
        word = "and" if ch == "&" else "or"
        return _bad(
            source,
            i,
            1,
            gettext_noop("'%(op)s' is not an operator: use %(word)s"),
            op=ch,
            word=word,
        )
    if ch in _CURLY_QUOTES:
        return _bad(
            source, i, 1, gettext_noop("curly quote %(char)s: quote text with ' or \""), char=ch
        )
    if ch == ".":
        return _bad(
            source, i, 1, gettext_noop("unexpected '.': numbers start with a digit (0.5, not .5)")
        )
    plain = unicodedata.normalize("NFKC", ch)
    if plain != ch and plain.isascii() and plain.strip():
        return _bad(
            source,
            i,
            1,
            gettext_noop("full-width character %(char)s: type %(plain)s instead"),
            char=ch,
            plain=plain,
        )
    return _bad(source, i, 1, gettext_noop("unexpected character %(char)s"), char=repr(ch))


def _number(source: str, start: int) -> Token:
    i, n = start, len(source)
    while i < n and "0" <= source[i] <= "9":
        i += 1
    is_decimal = False
    if i < n and source[i] == ".":
        j = i + 1
        while j < n and "0" <= source[j] <= "9":
            j += 1
        if j == i + 1:
            raise _bad(
                source,
                start,
                j - start,
                gettext_noop("malformed number %(text)s: digits must follow the '.'"),
                text=source[start:j],
            )
        i, is_decimal = j, True
    if i < n and (_is_name_char(source[i]) or source[i] == "."):
        j = i
        while j < n and (_is_name_char(source[j]) or source[j] == "."):
            j += 1
        return_text = source[start:j]
        raise _bad(
            source, start, j - start, gettext_noop("malformed number %(text)s"), text=return_text
        )
    text = source[start:i]
    value: int | Decimal = Decimal(text) if is_decimal else int(text)
    return Token(NUMBER, value, start, i)


def _string(source: str, start: int) -> Token:
    quote = source[start]
    out: list[str] = []
    i, n = start + 1, len(source)
    while i < n:
        ch = source[i]
        if ch == quote:
            return Token(STRING, "".join(out), start, i + 1)
        if ch == "\n":
            break
        if ch == "\\":
            nxt = source[i + 1 : i + 2]
            if nxt not in _ESCAPES:
                raise _bad(
                    source,
                    i,
                    2 if nxt else 1,
                    gettext_noop(
                        "unknown escape %(text)s in a string: use \\\\, \\', \\\", \\n or \\t"
                    ),
                    text="\\" + nxt,
                )
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    end = source.find("\n", start)
    raise _bad(
        source,
        start,
        (n if end == -1 else end) - start,
        gettext_noop("unterminated string: the %(quote)s opened here is never closed on this line"),
        quote=quote,
    )


def _name(source: str, start: int) -> Token:
    i, n = start, len(source)
    while True:
        while i < n and _is_name_char(source[i]):
            i += 1
        if i < n and source[i] == ".":
            if i + 1 < n and _is_name_start(source[i + 1]):
                i += 1
                continue
            raise _bad(
                source,
                start,
                i + 1 - start,
                gettext_noop("malformed field name %(text)s: a name follows each '.'"),
                text=source[start : i + 1],
            )
        break
    text = source[start:i]
    lowered = text.lower()
    if lowered in KEYWORDS:
        return Token(KEYWORD, lowered, start, i)
    return Token(NAME, text, start, i)
