"""Symbolic dims: batch and sequence sizes as named symbols.

A dim in a node's ``shape``, in a graph input's ``shape`` and in a size-bearing
int/ints attribute (``view`` sizes, ``arange`` ends, ``expand`` sizes, ...) is
either an ``int`` or a ``str``: an expression over the graph's dim symbols
built from integers, ``+ - * // %`` and parentheses, e.g. ``"B"``, ``"T"``,
``"B*T"``, ``"T + 1"``, ``"(T - 1)//2 + 1"``. ``ArchGraph.dims`` maps every
symbol to an example size (its *hint*): FLOPs are counted at the hints, and
:func:`~mad.graph.interpreter.example_inputs` draws inputs of those sizes.

Symbolic output shapes are found by *probing*: the op's shape rule runs on
concrete sizes at a few bindings of the symbols around their hints, and each
output dim is fitted as a multilinear polynomial in the symbols (``B*T*4``,
``T + 1``), then checked at two more bindings. Dims that are not such
polynomials (strided convolutions over a sequence) fall back to PyTorch's own
symbolic shape propagation (fake tensors over a ``ShapeEnv``), which is exact
but ~100x slower than a meta-tensor call.

Example:
    >>> evaluate("B*T + 1", {"B": 2, "T": 8})
    17
    >>> free_symbols("(T - 1)//2 + 1")
    frozenset({'T'})
    >>> corners, _ = probe_bindings(["B", "T"], {"B": 2, "T": 8})
    >>> fit_dim(["B", "T"], corners, [m["B"] * m["T"] + 1 for m in corners])
    'B*T + 1'
"""

from __future__ import annotations

import ast
import functools
import itertools
from fractions import Fraction
from typing import Any, Iterable, Mapping

__all__ = [
    "is_symbolic",
    "free_symbols",
    "evaluate",
    "concrete",
    "shape_symbols",
    "probe_bindings",
    "fit_dim",
    "same_dim",
    "check_expr",
    "normalise",
    "format_poly",
    "to_poly",
    "poly_mul",
    "SymbolError",
    "DEFAULT_HINT",
]

DEFAULT_HINT = 8  # example size of a symbol that graph.dims does not list

_ALLOWED_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod, ast.Pow)
def _mod(a: Any, b: Any) -> Any:
    return a % b


# functions PyTorch's symbolic shapes print: Mod/PythonMod are Python's % for positive divisors
_FUNCS = {"Max": max, "Min": min, "max": max, "min": min, "Mod": _mod, "PythonMod": _mod}


class SymbolError(ValueError):
    """A symbolic expression is malformed or names an unknown symbol."""


def is_symbolic(d: Any) -> bool:
    """True for a symbolic dim (a ``str`` expression), False for an int."""
    return isinstance(d, str)


@functools.lru_cache(maxsize=65536)
def _compile(expr: str):
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise SymbolError(f"dim expression {expr!r} is not valid: {e.msg}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
                raise SymbolError(f"dim expression {expr!r}: only {sorted(_FUNCS)} calls are allowed")
            continue
        if isinstance(node, ast.Name):
            if node.id in _FUNCS:
                continue
            if not node.id.isidentifier() or node.id.startswith("_"):
                raise SymbolError(f"dim expression {expr!r}: bad symbol {node.id!r}")
            names.add(node.id)
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ALLOWED_BINOPS):
                raise SymbolError(f"dim expression {expr!r}: only + - * // % are allowed")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise SymbolError(f"dim expression {expr!r}: only unary minus is allowed")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int) or isinstance(node.value, bool):
                raise SymbolError(f"dim expression {expr!r}: constants must be integers")
        elif not isinstance(node, (ast.Expression, ast.Load, *_ALLOWED_BINOPS, ast.USub, ast.UAdd, ast.Call)):
            raise SymbolError(f"dim expression {expr!r}: {type(node).__name__} is not allowed")
    code = compile(tree, "<dim>", "eval")
    return frozenset(names), code


def _poly(node: ast.AST) -> dict[tuple[str, ...], int] | None:
    """The expression as a polynomial {sorted monomial: coefficient}, or None when it is not one."""
    if isinstance(node, ast.Expression):
        return _poly(node.body)
    if isinstance(node, ast.Constant):
        return {(): node.value} if node.value else {}
    if isinstance(node, ast.Name):
        return {(node.id,): 1}
    if isinstance(node, ast.UnaryOp):
        p = _poly(node.operand)
        return None if p is None else {m: (-c if isinstance(node.op, ast.USub) else c) for m, c in p.items()}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv):  # exact division by a constant
        a, b = _poly(node.left), _poly(node.right)
        if a is None or b is None or set(b) != {()} or any(c % b[()] for c in a.values()):
            return None
        return {m: c // b[()] for m, c in a.items()}
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        a, b = _poly(node.left), _poly(node.right)
        if a is None or b is None:
            return None
        if isinstance(node.op, ast.Mult):
            return poly_mul(a, b)
        out: dict[tuple[str, ...], int] = dict(a)
        sign = 1 if isinstance(node.op, ast.Add) else -1
        for m, c in b.items():
            out[m] = out.get(m, 0) + sign * c
        return {m: c for m, c in out.items() if c}
    return None


def poly_mul(a: dict[tuple[str, ...], int], b: dict[tuple[str, ...], int]) -> dict[tuple[str, ...], int]:
    """The product of two polynomials {sorted monomial: coefficient} (:func:`to_poly`)."""
    out: dict[tuple[str, ...], int] = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = tuple(sorted(ma + mb))
            out[m] = out.get(m, 0) + ca * cb
    return {m: c for m, c in out.items() if c}


def to_poly(expr: int | str) -> dict[tuple[str, ...], int]:
    """The polynomial {sorted monomial: coefficient} of a dim; :class:`SymbolError` when it is
    not one (``"(T + 1)//2"``)."""
    if isinstance(expr, int) and not isinstance(expr, bool):
        return {(): expr} if expr else {}
    if not isinstance(expr, str):
        raise SymbolError(f"a dim is an int or a str, got {type(expr).__name__} {expr!r}")
    _compile(expr)
    poly = _poly(ast.parse(expr.strip(), mode="eval"))
    if poly is None:
        raise SymbolError(f"dim expression {expr!r} is not a polynomial of the symbols")
    return poly


def format_poly(poly: dict[tuple[str, ...], int]) -> int | str:
    """Canonical text of a polynomial: terms by falling degree then name, coefficient 1 left
    out, the constant last: ``"2*B*T + T - 1"``; a constant polynomial gives an ``int``."""
    terms = sorted(((m, c) for m, c in poly.items() if c), key=lambda t: (-len(t[0]), t[0]))
    if not any(m for m, _ in terms):
        return int(sum(c for _, c in terms))
    out = ""
    for m, c in terms:
        mag = abs(c)
        body = "*".join(m) if m else ""
        text = body if (m and mag == 1) else (f"{mag}*{body}" if m else str(mag))
        if not out:
            out = ("-" if c < 0 else "") + text
        else:
            out += (" - " if c < 0 else " + ") + text
    return out


def normalise(text: str) -> str:
    """One spelling of an expression: polynomials as :func:`format_poly` writes them
    (``"B*T + 1"``), anything else as Python writes it back (``"(T - 1) // 2 + 1"``)."""
    _compile(text)
    tree = ast.parse(text.strip(), mode="eval")
    poly = _poly(tree)
    if poly is not None:
        return str(format_poly(poly))
    return ast.unparse(tree)


def check_expr(expr: str, symbols: Iterable[str] | None = None) -> str | None:
    """A reason string when ``expr`` is malformed or uses a symbol outside ``symbols``, else None."""
    try:
        names, _ = _compile(expr)
    except SymbolError as e:
        return str(e)
    if symbols is not None:
        unknown = sorted(names - set(symbols))
        if unknown:
            return f"dim expression {expr!r} uses undeclared symbols {unknown} (graph.dims: {sorted(symbols)})"
    return None


def free_symbols(expr: Any) -> frozenset[str]:
    """Symbols used by a dim, a shape or any nested list of dims."""
    if isinstance(expr, str):
        return _compile(expr)[0]
    if isinstance(expr, (list, tuple)):
        out: frozenset[str] = frozenset()
        for e in expr:
            out |= free_symbols(e)
        return out
    return frozenset()


def evaluate(expr: Any, bindings: Mapping[str, int]) -> Any:
    """The int value of a dim under ``bindings``; ints pass through."""
    if not isinstance(expr, str):
        return expr
    names, code = _compile(expr)
    try:
        r = eval(code, {"__builtins__": {}, **_FUNCS}, dict(bindings))  # noqa: S307 - ast-checked arithmetic
        return r if isinstance(r, int) or hasattr(r, "node") else int(r)  # SymInts stay symbolic
    except NameError:
        missing = sorted(n for n in names if n not in bindings)
        raise SymbolError(f"dim expression {expr!r}: no value for symbols {missing}") from None


def concrete(value: Any, bindings: Mapping[str, int]) -> Any:
    """``value`` (a dim, shape, or nested lists of them) with every expression evaluated."""
    if isinstance(value, str):
        return evaluate(value, bindings)
    if isinstance(value, list):
        return [concrete(v, bindings) for v in value]
    if isinstance(value, tuple):
        return tuple(concrete(v, bindings) for v in value)
    return value


def shape_symbols(shapes: Iterable[Any]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for s in shapes:
        out |= free_symbols(s)
    return out


# offsets of the two check bindings, chosen so that floor divisions by small
# numbers do not look linear by chance
_CHECK_OFFSETS = ((7, 1), (13, 2))


def probe_bindings(symbols: Iterable[str], hints: Mapping[str, int]) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    """(fit bindings, check bindings) around the hints.

    The fit bindings are the corners ``{h, h + 1}`` of every symbol (``2**n``
    bindings for ``n`` symbols, the hints first); the check bindings move every
    symbol further, by different amounts per symbol.
    """
    syms = sorted(symbols)
    base = {s: int(hints.get(s, 8)) for s in syms}
    fit = [{s: base[s] + d for s, d in zip(syms, corner)} for corner in itertools.product((0, 1), repeat=len(syms))]
    check = [{s: base[s] + a + b * i for i, s in enumerate(syms)} for a, b in _CHECK_OFFSETS]
    return fit, check


def _monomial_str(coef: int, mono: tuple[str, ...]) -> str:
    if not mono:
        return str(coef)
    body = "*".join(mono)
    if coef == 1:
        return body
    if coef == -1:
        return "-" + body
    return f"{coef}*{body}"


def fit_dim(symbols: Iterable[str] | list[tuple[str, ...]], bindings: list[dict[str, int]], values: list[int]) -> str | int | None:
    """Fit ``values`` (one per binding) as a multilinear polynomial with integer coefficients.

    ``bindings`` must be the corner bindings of :func:`probe_bindings` (in its
    order). Returns an int (constant), an expression string, or None when the
    coefficients are not integers. The caller checks the fit elsewhere.
    """
    syms = sorted({s for x in symbols for s in ((x,) if isinstance(x, str) else x)})
    n = len(syms)
    if len(values) != 2**n:
        raise ValueError(f"fit_dim needs {2 ** n} values for symbols {syms}, got {len(values)}")
    base = bindings[0]
    # Möbius inversion on the cube gives the coefficients in the shifted variables
    # u_i = s_i - h_i; expanding back to s_i keeps them integers.
    table = {corner: Fraction(v) for corner, v in zip(itertools.product((0, 1), repeat=n), values)}
    shifted: dict[tuple[int, ...], Fraction] = {}
    for subset in itertools.product((0, 1), repeat=n):
        c = Fraction(0)
        for corner, v in table.items():
            if all(corner[i] <= subset[i] for i in range(n)):
                sign = (-1) ** (sum(subset) - sum(corner))
                c += sign * v
        if c:
            shifted[subset] = c
    # expand prod over chosen i of (s_i - h_i)
    coeffs: dict[tuple[str, ...], Fraction] = {}
    for subset, c in shifted.items():
        chosen = [i for i in range(n) if subset[i]]
        for pick in itertools.product((0, 1), repeat=len(chosen)):
            mono = tuple(syms[chosen[j]] for j in range(len(chosen)) if pick[j])
            factor = Fraction(1)
            for j in range(len(chosen)):
                if not pick[j]:
                    factor *= -base[syms[chosen[j]]]
            coeffs[mono] = coeffs.get(mono, Fraction(0)) + c * factor
    if any(c.denominator != 1 for c in coeffs.values()):
        return None
    terms = [(mono, int(c)) for mono, c in coeffs.items() if c != 0]
    if not any(mono for mono, _ in terms):
        return int(sum(c for _, c in terms))
    terms.sort(key=lambda t: (-len(t[0]), t[0]))
    out = ""
    for mono, c in terms:
        s = _monomial_str(abs(c) if out else c, mono) if mono else str(abs(c) if out else c)
        if not out:
            out = s
        else:
            out += (" - " if c < 0 else " + ") + s
    return normalise(out)


def same_dim(a: Any, b: Any, bindings: Iterable[Mapping[str, int]]) -> bool:
    """True when two dims agree: equal ints, or equal values under every binding."""
    if not isinstance(a, str) and not isinstance(b, str):
        return a == b
    if a == b:
        return True
    try:
        return all(evaluate(a, m) == evaluate(b, m) for m in bindings)
    except SymbolError:
        return False
