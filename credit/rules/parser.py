"""Recursive-descent parser: tokens -> syntax tree.

Grammar, loosest first (each level is one method below):

    expression  := and_expr ("or" and_expr)*
    and_expr    := not_expr ("and" not_expr)*
    not_expr    := "not" not_expr | comparison
    comparison  := additive [ ("==" | "!=" | "<" | "<=" | ">" | ">=") additive
                            | ["not"] "in" additive
                            | ["not"] "between" additive "and" additive
                            | "is" ["not"] "null" ]
    additive    := term (("+" | "-") term)*
    term        := unary (("*" | "/" | "%") unary)*
    unary       := ("-" | "+") unary | primary
    primary     := number | string | "true" | "false" | "null"
                 | "[" [expression ("," expression)*] "]"
                 | name "(" [expression ("," expression)*] ")" | name | "(" expression ")"

Comparisons do not chain (`18 <= age <= 60` is refused with a hint to use `between` or `and`).
Nesting deeper than MAX_DEPTH (brackets, calls, lists, `not`, unary minus) is refused, so no input
can exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from credit.rules import lexer
from credit.rules.errors import RuleSyntaxError, gettext_noop
from credit.rules.lexer import EOF, KEYWORD, NAME, NUMBER, OP, STRING, Token
from credit.rules.nodes import (
    Arithmetic,
    Between,
    BoolOp,
    Call,
    Compare,
    In,
    IsNull,
    ListLiteral,
    Literal,
    Name,
    Node,
    Operator,
    Unary,
)

MAX_DEPTH = 32
_Operand = Callable[[], Node]
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def parse(source: str) -> Node:
    """The syntax tree of `source`; RuleSyntaxError pointing at the first bad token."""
    return _Parser(source).parse()


def _describe(token: Token) -> str:
    if token.kind == EOF:
        return "end of rule"
    if token.kind == STRING:
        return "a string"
    return repr(str(token.value)) if token.kind != NUMBER else str(token.value)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = lexer.tokenize(source)
        self.pos = 0
        self.depth = 0

    # --- helpers ---------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != EOF:
            self.pos += 1
        return token

    def error(self, template: str, at: Token | None = None, **params: object) -> RuleSyntaxError:
        token = at or self.tok
        return RuleSyntaxError(
            template, params, source=self.source, start=token.start, end=token.end
        )

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleSyntaxError(
                gettext_noop("the rule is nested too deeply (more than %(max)s levels)"),
                {"max": MAX_DEPTH},
                source=self.source,
                start=token.start,
                end=token.end,
                code="rule_too_complex",
            )

    def leave(self) -> None:
        self.depth -= 1

    # --- grammar ---------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.tok.kind == EOF:
            raise self.error(gettext_noop("the rule is empty: write a condition"))
        node = self.expression()
        if self.tok.kind != EOF:
            token = self.tok
            if token.is_op(")"):
                raise self.error(gettext_noop("unmatched ')'"))
            if token.is_op("]"):
                raise self.error(gettext_noop("unmatched ']'"))
            if token.kind in (NAME, NUMBER, STRING) or token.is_op("(", "["):
                raise self.error(
                    gettext_noop("missing operator before %(token)s (and, or, ==, +, ...)"),
                    token=_describe(token),
                )
            raise self.error(gettext_noop("unexpected %(token)s"), token=_describe(token))
        return node

    def expression(self) -> Node:
        return self.bool_chain("or", self.and_expr)

    def and_expr(self) -> Node:
        return self.bool_chain("and", self.not_expr)

    def bool_chain(self, word: str, operand: _Operand) -> Node:
        first = operand()
        if not self.tok.is_keyword(word):
            return first
        operands = [first]
        while self.tok.is_keyword(word):
            self.advance()
            operands.append(operand())
        return BoolOp(first.start, operands[-1].end, word, tuple(operands))

    def not_expr(self) -> Node:
        if self.tok.is_keyword("not"):
            token = self.advance()
            self.enter(token)
            operand = self.not_expr()
            self.leave()
            return Unary(token.start, operand.end, "not", operand)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        token = self.tok
        node: Node
        if token.kind == OP and token.value in COMPARISONS:
            self.advance()
            right = self.additive()
            node = Compare(left.start, right.end, str(token.value), token.start, left, right)
        elif token.is_keyword("in"):
            self.advance()
            container = self.additive()
            node = In(left.start, container.end, left, container, False, token.start)
        elif token.is_keyword("not") and self.peek().is_keyword("in", "between"):
            self.advance()
            if self.advance().value == "in":
                container = self.additive()
                node = In(left.start, container.end, left, container, True, token.start)
            else:
                node = self.between_rest(left, negated=True)
        elif token.is_keyword("between"):
            self.advance()
            node = self.between_rest(left, negated=False)
        elif token.is_keyword("is"):
            self.advance()
            negated = self.tok.is_keyword("not")
            if negated:
                self.advance()
            if not self.tok.is_keyword("null"):
                raise self.error(
                    gettext_noop("expected null after 'is', found %(token)s"),
                    token=_describe(self.tok),
                )
            end = self.advance().end
            node = IsNull(left.start, end, left, negated)
        else:
            return left
        following = self.tok
        if (following.kind == OP and following.value in COMPARISONS) or following.is_keyword(
            "in", "between", "is"
        ):
            raise self.error(
                gettext_noop(
                    "comparisons cannot be chained: join them with and "
                    "(or write x between low and high)"
                )
            )
        return node

    def between_rest(self, value: Node, *, negated: bool) -> Node:
        low = self.additive()
        if not self.tok.is_keyword("and"):
            raise self.error(
                gettext_noop("expected 'and' in 'between low and high', found %(token)s"),
                token=_describe(self.tok),
            )
        self.advance()
        high = self.additive()
        return Between(value.start, high.end, value, low, high, negated)

    def additive(self) -> Node:
        return self.arithmetic_chain(("+", "-"), self.term)

    def term(self) -> Node:
        return self.arithmetic_chain(("*", "/", "%"), self.unary)

    def arithmetic_chain(self, ops: tuple[str, ...], operand: _Operand) -> Node:
        first = operand()
        if not self.tok.is_op(*ops):
            return first
        rest: list[tuple[Operator, Node]] = []
        while self.tok.is_op(*ops):
            token = self.advance()
            rest.append((Operator(str(token.value), token.start, token.end), operand()))
        return Arithmetic(first.start, rest[-1][1].end, first, tuple(rest))

    def unary(self) -> Node:
        token = self.tok
        if token.is_op("-", "+"):
            self.advance()
            self.enter(token)
            operand = self.unary()
            self.leave()
            op = str(token.value)
            if (
                isinstance(operand, Literal)
                and isinstance(operand.value, int | Decimal)
                and not isinstance(operand.value, bool)
            ):  # fold -18 into a literal
                value = -operand.value if op == "-" else operand.value
                return Literal(token.start, operand.end, value)
            return Unary(token.start, operand.end, op, operand)
        return self.primary()

    def primary(self) -> Node:
        token = self.tok
        if token.kind == NUMBER or token.kind == STRING:
            self.advance()
            value = token.value
            if not isinstance(value, int | Decimal | str):  # pragma: no cover - lexer contract
                raise TypeError(f"bad literal token {token!r}")
            return Literal(token.start, token.end, value)
        if token.kind == KEYWORD and token.value in ("true", "false", "null"):
            self.advance()
            constant = {"true": True, "false": False, "null": None}[str(token.value)]
            return Literal(token.start, token.end, constant)
        if token.is_op("("):
            self.advance()
            self.enter(token)
            inner = self.expression()
            self.leave()
            self.expect_close(")", token)
            return inner
        if token.is_op("["):
            self.advance()
            self.enter(token)
            items = self.items("]", token)
            self.leave()
            end = self.advance().end
            return ListLiteral(token.start, end, tuple(items))
        if token.kind == NAME:
            self.advance()
            if self.tok.is_op("("):
                paren = self.advance()
                self.enter(paren)
                args = self.items(")", paren)
                self.leave()
                end = self.advance().end
                return Call(token.start, end, str(token.value), token.end, tuple(args))
            return Name(token.start, token.end, str(token.value))
        if token.kind == EOF:
            raise self.error(gettext_noop("the rule ends too early: a value is missing"))
        if token.kind == KEYWORD:
            raise self.error(
                gettext_noop("expected a value, found the keyword %(token)s"),
                token=_describe(token),
            )
        raise self.error(gettext_noop("expected a value, found %(token)s"), token=_describe(token))

    def items(self, close: str, opener: Token) -> list[Node]:
        """Comma-separated expressions up to (not including) `close`."""
        items: list[Node] = []
        if self.tok.is_op(close):
            return items
        while True:
            items.append(self.expression())
            if self.tok.is_op(","):
                self.advance()
                if self.tok.is_op(close):  # a trailing comma is fine: [1, 2, ]
                    return items
                continue
            if self.tok.is_op(close):
                return items
            self.expect_close(close, opener)

    def expect_close(self, close: str, opener: Token) -> None:
        if self.tok.is_op(close):
            self.advance()
            return
        line_start = self.source.rfind("\n", 0, opener.start) + 1
        raise self.error(
            gettext_noop(
                "expected '%(close)s' to close the '%(open)s' at column %(column)s, found %(token)s"
            ),
            close=close,
            open=opener.value,
            column=opener.start - line_start + 1,
            token=_describe(self.tok),
        )
