"""Dim expressions: parse, canonical print, evaluate."""

from __future__ import annotations

import pytest

from mad.graph.symbolic import SymbolError as DimExprError
from mad.graph.symbolic import evaluate as eval_dim
from mad.graph.symbolic import format_poly, to_poly


@pytest.mark.parametrize(
    "text,canonical",
    [("B", "B"), ("B*T", "B*T"), ("T + 1", "T + 1"), ("2*B*T", "2*B*T"), ("1 + T", "T + 1"), ("T*B", "B*T"),
     ("2*(B*T) + T - 1", "2*B*T + T - 1"), ("B*(T - 1)", "B*T - B"), ("-B + 3", "-B + 3"), ("6//2*T", "3*T"),
     ("T - T", 0), ("(4)", 4)],
)
def test_canonical_text(text, canonical):
    assert format_poly(to_poly(text)) == canonical
    sizes = {"B": 3, "T": 7}
    assert eval_dim(text, sizes) == eval_dim(canonical, sizes)


def test_what_is_not_a_polynomial_still_evaluates():
    with pytest.raises(DimExprError, match="not a polynomial"):
        to_poly("(T + 1)//2")
    assert eval_dim("(T + 1)//2", {"T": 8}) == 4


@pytest.mark.parametrize("bad", ["B +", "2**T", "(T", "T)", "B.T", ""])
def test_bad_text_is_rejected(bad):
    with pytest.raises(DimExprError):
        to_poly(bad)


def test_missing_symbol():
    with pytest.raises(DimExprError, match=r"no value for symbols \['T'\]"):
        eval_dim("B*T", {"B": 2})
