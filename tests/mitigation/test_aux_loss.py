"""Auxiliary clickbait loss: gradient direction, stability at p_click -> 1, weights; row down-weighting."""

from __future__ import annotations

import pytest
import torch

from intentrank.errors import ConfigError, DataError
from intentrank.mitigation.aux_loss import AuxClickbaitLoss, ClickbaitDownweight, clickbait_loss


def _step(c: float, z0: float = 0.3, lr: float = 0.5) -> tuple[float, float]:
    z = torch.tensor([z0], requires_grad=True)
    loss = AuxClickbaitLoss(weight=1.0)({"click": z}, {"clickbait_score": torch.tensor([c])})
    loss.backward()
    with torch.no_grad():
        z_new = z - lr * z.grad
    return torch.sigmoid(torch.tensor(z0)).item(), torch.sigmoid(z_new).item()


@pytest.mark.parametrize("c", [0.51, 0.7, 1.0])
def test_gradient_lowers_p_click_for_clickbait(c: float) -> None:
    before, after = _step(c)
    assert after < before


@pytest.mark.parametrize("c", [0.0, 0.2, 0.49])
def test_gradient_raises_p_click_for_clean(c: float) -> None:
    before, after = _step(c)
    assert after > before


def test_zero_gradient_at_half() -> None:
    before, after = _step(0.5)
    assert after == pytest.approx(before)


def test_matches_formula_and_is_finite_at_saturation() -> None:
    z = torch.tensor([-3.0, 0.0, 2.0], dtype=torch.float64)
    c = torch.tensor([0.9, 0.2, 0.6], dtype=torch.float64)
    p = torch.sigmoid(z)
    naive = (-torch.log(1 - p) * (2 * c - 1)).mean()
    torch.testing.assert_close(clickbait_loss(z, c), naive)
    for logit in (1e4, 1e30, 88.0, -1e4):
        zz = torch.tensor([logit], requires_grad=True)
        loss = clickbait_loss(zz, torch.tensor([0.9]))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(zz.grad).all()
    # the naive form breaks where the stable one does not
    assert not torch.isfinite(-torch.log(1 - torch.sigmoid(torch.tensor(1e4))))


def test_weighted_mean_uses_batch_weights() -> None:
    z = torch.tensor([1.0, 1.0])
    c = torch.tensor([1.0, 0.0])
    w = torch.tensor([1.0, 0.0])
    out = AuxClickbaitLoss(weight=2.0)({"click": z}, {"clickbait_score": c, "w": w})
    torch.testing.assert_close(out, 2.0 * torch.nn.functional.softplus(torch.tensor(1.0)))


def test_aux_loss_errors() -> None:
    with pytest.raises(ConfigError, match=r"aux_loss\.weight"):
        AuxClickbaitLoss(weight=-0.1)
    loss = AuxClickbaitLoss()
    with pytest.raises(DataError, match="click"):
        loss({"dwell": torch.zeros(2)}, {"clickbait_score": torch.zeros(2)})
    with pytest.raises(DataError, match="clickbait_score"):
        loss({"click": torch.zeros(2)}, {})


def test_downweight() -> None:
    fn = ClickbaitDownweight(strength=0.6, threshold=0.5, rows="all")
    w = fn({"clickbait_score": torch.tensor([0.0, 0.5, 0.75, 1.0])})
    torch.testing.assert_close(w, torch.tensor([1.0, 1.0, 0.7, 0.4]))
    clicks = ClickbaitDownweight(strength=0.6, threshold=0.5)  # default: clicked rows only
    batch = {"clickbait_score": torch.tensor([0.0, 0.75, 1.0, 1.0]), "y_click": torch.tensor([1.0, 1, 1, 0])}
    torch.testing.assert_close(clicks(batch), torch.tensor([1.0, 0.7, 0.4, 1.0]))
    with pytest.raises(DataError, match="y_click"):
        clicks({"clickbait_score": torch.tensor([0.9])})
    with pytest.raises(ConfigError, match=r"downweight\.strength"):
        ClickbaitDownweight(strength=1.5)
    with pytest.raises(ConfigError, match=r"downweight\.threshold"):
        ClickbaitDownweight(threshold=1.0)
