"""Symbolic dims: parse, print and evaluate dim expressions such as ``"B*T + 1"``.

A dim of a shape (or of a size-bearing attr) is an ``int`` or a ``str``
expression over the graph's dim symbols (``graph.dims``: symbol -> example
size) built from integers, symbols, ``+``, ``-``, ``*``, ``//`` and
parentheses. Most such expressions are polynomials with integer
coefficients; :func:`to_poly` gives that form (a dict monomial -> coefficient,
a monomial being the sorted tuple of its symbols, ``()`` the constant), and
:func:`format_poly` prints it canonically: terms by falling degree, then by
name, coefficient 1 left out, the constant last (``"2*B*T"``, ``"T + 1"``,
``"B*T - T"``).

Example:
    >>> to_poly("2*(B*T) + T + 1")
    {('B', 'T'): 2, ('T',): 1, (): 1}
    >>> format_poly({('B', 'T'): 2, (): -1})
    '2*B*T - 1'
    >>> eval_dim("(T + 1)//2", {"T": 7})
    4
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DimExprError", "parse_dim", "to_poly", "format_poly", "eval_dim"]

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z_0-9]*)|(//|[-+*()]))")


class DimExprError(ValueError):
    """A dim expression that cannot be parsed (or is not a polynomial, for :func:`to_poly`)."""


def parse_dim(text: str) -> Any:
    """Parse ``text`` into a tree: ints, symbol names, and ``(op, left, right)`` / ``("neg", x)`` tuples."""
    tokens: list[str | int] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise DimExprError(f"bad dim expression {text!r} at {text[pos:]!r}")
        num, name, sym = m.groups()
        tokens.append(int(num) if num is not None else (name or sym))
        pos = m.end()
    tree, rest = _expr(tokens, 0, text)
    if rest != len(tokens):
        raise DimExprError(f"bad dim expression {text!r}: unexpected {tokens[rest]!r}")
    return tree


def _expr(t: list, i: int, text: str) -> tuple[Any, int]:
    left, i = _term(t, i, text)
    while i < len(t) and t[i] in ("+", "-"):
        op = t[i]
        right, i = _term(t, i + 1, text)
        left = (op, left, right)
    return left, i


def _term(t: list, i: int, text: str) -> tuple[Any, int]:
    left, i = _unary(t, i, text)
    while i < len(t) and t[i] in ("*", "//"):
        op = t[i]
        right, i = _unary(t, i + 1, text)
        left = (op, left, right)
    return left, i


def _unary(t: list, i: int, text: str) -> tuple[Any, int]:
    if i >= len(t):
        raise DimExprError(f"bad dim expression {text!r}: it ends early")
    tok = t[i]
    if tok == "-":
        inner, i = _unary(t, i + 1, text)
        return ("neg", inner), i
    if tok == "(":
        inner, i = _expr(t, i + 1, text)
        if i >= len(t) or t[i] != ")":
            raise DimExprError(f"bad dim expression {text!r}: missing ')'")
        return inner, i + 1
    if isinstance(tok, int) or tok[0].isalpha() or tok[0] == "_":
        return tok, i + 1
    raise DimExprError(f"bad dim expression {text!r}: unexpected {tok!r}")


Poly = dict[tuple[str, ...], int]


def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + sign * v
    return {k: v for k, v in out.items() if v}


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ka, va in a.items():
        for kb, vb in b.items():
            k = tuple(sorted(ka + kb))
            out[k] = out.get(k, 0) + va * vb
    return {k: v for k, v in out.items() if v}


def _poly(tree: Any) -> Poly:
    if isinstance(tree, int):
        return {(): tree} if tree else {}
    if isinstance(tree, str):
        return {(tree,): 1}
    if tree[0] == "neg":
        return {k: -v for k, v in _poly(tree[1]).items()}
    op, left, right = tree
    a, b = _poly(left), _poly(right)
    if op == "+":
        return _add(a, b)
    if op == "-":
        return _add(a, b, -1)
    if op == "*":
        return _mul(a, b)
    # floor division is exact on polynomials only by a constant dividing every coefficient
    if set(b) == {()} and b[()] != 0 and all(v % b[()] == 0 for v in a.values()):
        return {k: v // b[()] for k, v in a.items()}
    raise DimExprError("floor division that is not exact")


def to_poly(expr: int | str) -> Poly:
    """The polynomial of ``expr``; :class:`DimExprError` if it is not one (e.g. ``"(T + 1)//2"``)."""
    if isinstance(expr, int) and not isinstance(expr, bool):
        return {(): expr} if expr else {}
    if not isinstance(expr, str):
        raise DimExprError(f"a dim is an int or a str, got {type(expr).__name__} {expr!r}")
    return _poly(parse_dim(expr))


def format_poly(poly: Poly) -> int | str:
    """Canonical text of ``poly``; a constant polynomial gives an ``int``."""
    terms = sorted((k for k in poly if k and poly[k]), key=lambda k: (-len(k), k))
    const = poly.get((), 0)
    if not terms:
        return const
    parts: list[str] = []
    for k in terms + ([()] if const else []):
        c = poly[k]
        body = "*".join(k)
        mag = abs(c)
        text = body if (mag == 1 and body) else (f"{mag}*{body}" if body else str(mag))
        if not parts:
            parts.append(f"-{text}" if c < 0 else text)
        else:
            parts.append(f" - {text}" if c < 0 else f" + {text}")
    return "".join(parts)


def eval_dim(expr: int | str, sizes: dict[str, int]) -> int:
    """Value of ``expr`` with symbols set to ``sizes`` (missing symbols raise :class:`DimExprError`)."""
    if isinstance(expr, int):
        return expr
    return _eval(parse_dim(expr), sizes, expr)


def _eval(tree: Any, sizes: dict[str, int], text: str) -> int:
    if isinstance(tree, int):
        return tree
    if isinstance(tree, str):
        if tree not in sizes:
            raise DimExprError(f"dim expression {text!r}: no size for symbol {tree!r}")
        return int(sizes[tree])
    if tree[0] == "neg":
        return -_eval(tree[1], sizes, text)
    op, left, right = tree
    a, b = _eval(left, sizes, text), _eval(right, sizes, text)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise DimExprError(f"dim expression {text!r}: division by zero")
    return a // b
