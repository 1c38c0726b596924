"""The adjustable sigmoid f(c; h, l, d, w): control points, monotonicity, range, vectorisation, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from intentrank.errors import ConfigError, DataError
from intentrank.mitigation.heuristic import HeuristicPenalty


@st.composite
def params(draw):
    l = draw(  # noqa: E741
        st.floats(0.0, 0.95, allow_nan=False)
    )
    h = draw(st.floats(l + 0.02, 1.0, allow_nan=False))
    d = draw(st.floats(1e-4, 0.4999, allow_nan=False))
    w = draw(st.floats(0.0, 1.0, allow_nan=False))
    return HeuristicPenalty(l=l, h=h, d=d, w=w)


@settings(max_examples=200, deadline=None)
@given(params())
def test_control_points(p: HeuristicPenalty) -> None:
    f = p.f(np.array([p.l, p.h]))
    np.testing.assert_allclose(f[0], 1 - p.w * p.d, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f[1], 1 - p.w + p.w * p.d, rtol=1e-9, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(params(), st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=50))
def test_monotone_and_in_range(p: HeuristicPenalty, cs: list[float]) -> None:
    c = np.sort(np.array(cs))
    f = p.f(c)
    assert f.shape == c.shape
    assert np.all(np.diff(f) <= 1e-12)  # non-increasing in c
    assert np.all(f >= 1 - p.w - 1e-12)
    assert np.all(f <= 1 + 1e-12)
    # log form agrees and stays finite
    lf = p.log_f(c)
    assert np.all(np.isfinite(lf))
    np.testing.assert_allclose(np.exp(lf), f, rtol=1e-9, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(params(), st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=30))
def test_vectorised_equals_scalar_and_torch(p: HeuristicPenalty, cs: list[float]) -> None:
    c = np.array(cs).reshape(-1, 1).repeat(2, axis=1)  # 2-D input
    f = p.f(c)
    assert f.shape == c.shape
    scalar = np.array([[float(p.f(np.array(x))) for x in row] for row in c])
    np.testing.assert_allclose(f, scalar, rtol=1e-12)
    ft = p.f(torch.tensor(c, dtype=torch.float64))
    assert isinstance(ft, torch.Tensor)
    np.testing.assert_allclose(ft.numpy(), f, rtol=1e-9, atol=1e-12)


def test_extreme_parameters_are_finite() -> None:
    p = HeuristicPenalty(l=0.0, h=1e-6, d=1e-12, w=1.0)  # nearly a step function, f down to 0
    c = np.linspace(0, 1, 101)
    f = p.f(c)
    assert np.all(np.isfinite(f)) and f[0] > 0.99 and f[-1] < 1e-6
    assert np.all(np.isfinite(p.log_f(c)))
    assert torch.isfinite(p.log_f(torch.tensor(c))).all()


def test_post_processor_linear_and_log() -> None:
    p = HeuristicPenalty(l=0.4, h=0.7, d=0.1, w=0.5)
    scores = np.array([[1.0, 1.0, 2.0], [0.5, 0.5, 0.5]])
    c = np.array([[0.0, 1.0, 0.9], [0.1, 0.5, 0.9]])
    out = p(scores, c)
    np.testing.assert_allclose(out, scores * p.f(c))
    assert out[0, 1] < out[0, 0]
    with pytest.raises(DataError, match="negative scores"):
        p(-scores, c)
    plog = HeuristicPenalty(l=0.4, h=0.7, d=0.1, w=0.5, score_space="log")
    logits = np.log(scores)
    np.testing.assert_allclose(np.exp(plog(logits, c)), out, rtol=1e-12)
    t = p(torch.tensor(scores), torch.tensor(c))
    np.testing.assert_allclose(t.numpy(), out)
    with pytest.raises(DataError, match="shape"):
        p(scores, c[:, :2])


def test_w_zero_is_identity() -> None:
    p = HeuristicPenalty(w=0.0)
    np.testing.assert_array_equal(p.f(np.linspace(0, 1, 11)), np.ones(11))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"l": 0.7, "h": 0.7}, "l must be < h"),
        ({"l": 0.8, "h": 0.4}, "l must be < h"),
        ({"d": 0.0}, "heuristic.d"),
        ({"d": 0.5}, "heuristic.d"),
        ({"d": 0.7}, "heuristic.d"),
        ({"d": -0.1}, "heuristic.d"),
        ({"w": -0.01}, "heuristic.w"),
        ({"w": 1.5}, "heuristic.w"),
        ({"l": -0.1}, "heuristic.l"),
        ({"h": 1.2}, "heuristic.h"),
        ({"d": float("nan")}, "heuristic.d"),
        ({"score_space": "exp"}, "heuristic.score_space"),
    ],
)
def test_bad_hyperparameters(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        HeuristicPenalty(**kwargs)


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan"), float("inf")])
def test_bad_clickbait_scores(bad: float) -> None:
    p = HeuristicPenalty()
    with pytest.raises(DataError, match="clickbait"):
        p.f(np.array([0.2, bad]))
    with pytest.raises(DataError, match="clickbait"):
        p.f(torch.tensor([0.2, bad]))
