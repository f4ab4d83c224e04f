"""The syntax tree: frozen dataclasses, each with the `start`/`end` offsets of its source text.

Chains of the same precedence (`a + b - c`, `x or y or z`) are one n-ary node, so a long chain is a
wide tree, not a deep one: depth only grows with real nesting (brackets, calls, `not`, unary minus).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Node:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: int | Decimal | str | bool | None


@dataclass(frozen=True, slots=True)
class ListLiteral(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    name_end: int  # the function name is source[start:name_end]
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "-" | "+" | "not"
    operand: Node


@dataclass(frozen=True, slots=True)
class Operator:
    op: str  # + - * / %
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Arithmetic(Node):
    first: Node
    rest: tuple[tuple[Operator, Node], ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # == != < <= > >=
    op_start: int
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class In(Node):
    item: Node
    container: Node
    negated: bool
    op_start: int


@dataclass(frozen=True, slots=True)
class Between(Node):
    value: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    value: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children (iterative: no recursion limit)."""
    out: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(children(current)))
    return out


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, ListLiteral):
        return node.items
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Arithmetic):
        return (node.first, *(operand for _op, operand in node.rest))
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, In):
        return (node.item, node.container)
    if isinstance(node, Between):
        return (node.value, node.low, node.high)
    if isinstance(node, IsNull):
        return (node.value,)
    if isinstance(node, BoolOp):
        return node.operands
    return ()


def fields_used(node: Node) -> frozenset[str]:
    """The feature names an expression reads."""
    return frozenset(n.name for n in walk(node) if isinstance(n, Name))
