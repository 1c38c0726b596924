"""Gradient reversal and the adversarial head."""

from __future__ import annotations

import torch
from torch import nn

from intentrank.mitigation.adversarial import (
    AdversarialHead,
    AdversarialLoss,
    build_adversarial,
    grad_reverse,
)


def test_gradient_reversal_identity_forward_negated_backward() -> None:
    x = torch.randn(5, 3, requires_grad=True)
    y = grad_reverse(x, 0.7)
    torch.testing.assert_close(y, x)
    (y * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, -0.7 * torch.arange(3.0).expand(5, 3))


def test_gradient_reversal_gradcheck_against_negated_function() -> None:
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    (g1,) = torch.autograd.grad((grad_reverse(x, 2.0) ** 2).sum(), x)
    (g2,) = torch.autograd.grad((x**2).sum(), x)
    torch.testing.assert_close(g1, -2.0 * g2)


class _Enc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 4)
        self.encode_dim = 4

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.lin(torch.stack([batch["clickbait_score"], batch["x"]], dim=1))


def test_encoder_step_increases_head_loss_head_step_decreases_it() -> None:
    """The reversed gradient makes an encoder step *raise* the head's loss (c harder to read),
    while a head step lowers it."""
    torch.manual_seed(0)
    model = _Enc()
    head, loss = build_adversarial(model, weight=1.0, reversal=1.0, hidden=8)
    assert isinstance(head, AdversarialHead) and isinstance(loss, AdversarialLoss)
    batch = {"clickbait_score": torch.rand(256), "x": torch.randn(256)}
    for params in (list(model.parameters()), list(head.parameters())):
        before = loss({}, batch)
        grads = torch.autograd.grad(before, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= 1e-2 * g
        after = loss({}, batch).item()
        if params[0] is model.lin.weight:
            assert after > before.item()
        else:
            assert after < before.item()


def test_head_is_trained_to_predict_c_when_encoder_frozen() -> None:
    torch.manual_seed(0)
    model = _Enc()
    for p in model.parameters():
        p.requires_grad_(False)
    head, loss = build_adversarial(model, weight=1.0, hidden=8)
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    batch = {"clickbait_score": torch.rand(256), "x": torch.randn(256)}
    first = loss({}, batch).item()
    for _ in range(200):
        opt.zero_grad()
        loss({}, batch).backward()
        opt.step()
    assert loss({}, batch).item() < first - 0.05


def test_negative_strengths_are_config_errors() -> None:
    import pytest

    from intentrank.errors import ConfigError
    from intentrank.mitigation.adversarial import GradientReversal

    with pytest.raises(ConfigError, match="reversal"):
        GradientReversal(-1.0)
    with pytest.raises(ConfigError, match=r"adversarial\.weight"):
        build_adversarial(_Enc(), weight=-0.5)
