"""The behaviour model: vectorised probability functions shared by the simulator and the oracles.

All inputs broadcast: item arrays of shape (B, K) against user arrays of shape (B, 1). float32 on the
hot path. The equations (and the defaults in :class:`BehaviourConfig`) are in docs/simulator.md.
"""

from __future__ import annotations

import numpy as np

from intentrank.simulator.config import BehaviourConfig


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function (float32 in, float32 out)."""
    return 1.0 / (1.0 + np.exp(-x))


def examination(n_positions: int, cfg: BehaviourConfig) -> np.ndarray:
    """P(examine position p) = (1 + p)^-η for p = 0..n-1 (float32)."""
    return ((1.0 + np.arange(n_positions, dtype=np.float32)) ** -np.float32(cfg.position_decay)).astype(
        np.float32
    )


def click_prob(
    interest: np.ndarray,
    susceptibility: np.ndarray,
    clickbait: np.ndarray,
    trust: np.ndarray,
    cfg: BehaviourConfig,
) -> np.ndarray:
    """P(click | examined) = σ(α0 + α_I·I + α_c·s·b + α_τ·(τ − 0.5))."""
    z = (
        np.float32(cfg.click_intercept)
        + np.float32(cfg.click_interest) * interest
        + np.float32(cfg.click_curiosity) * susceptibility * clickbait
        + np.float32(cfg.click_trust) * (trust - np.float32(0.5))
    )
    return sigmoid(z)


def bounce_prob(clickbait: np.ndarray, quality: np.ndarray, cfg: BehaviourConfig) -> np.ndarray:
    """P(bounce | click) = σ(β0 + β_b·b − β_q·q)."""
    return sigmoid(
        np.float32(cfg.bounce_intercept)
        + np.float32(cfg.bounce_clickbait) * clickbait
        - np.float32(cfg.bounce_quality) * quality
    )


def dwell_log_mean(interest: np.ndarray, quality: np.ndarray, cfg: BehaviourConfig) -> np.ndarray:
    """μ of log-seconds of a read: δ0 + δ_qI·q·I + δ_q·q."""
    return (
        np.float32(cfg.dwell_intercept)
        + np.float32(cfg.dwell_quality_interest) * quality * interest
        + np.float32(cfg.dwell_quality) * quality
    )


def conversion_prob(
    interest: np.ndarray, quality: np.ndarray, offset: np.ndarray, cfg: BehaviourConfig
) -> np.ndarray:
    """P(conversion | read) = σ(γ0 + γ_qI·q·I + κ_u)."""
    return sigmoid(
        np.float32(cfg.conversion_intercept)
        + np.float32(cfg.conversion_quality_interest) * quality * interest
        + offset
    )


def continue_prob(
    trust: np.ndarray, n_satisfied: np.ndarray, n_bounce: np.ndarray, cfg: BehaviourConfig
) -> np.ndarray:
    """P(scroll to the next slate) = σ(λ0 + λ_τ·τ + λ_s·n_sat − λ_b·n_bounce)."""
    return sigmoid(
        np.float32(cfg.continue_intercept)
        + np.float32(cfg.continue_trust) * trust
        + np.float32(cfg.continue_satisfied) * n_satisfied
        - np.float32(cfg.continue_bounce) * n_bounce
    )


def return_prob(trust: np.ndarray, activity: np.ndarray, cfg: BehaviourConfig) -> np.ndarray:
    """P(visit on the next day) = σ(ω0 + ω_τ·τ + a_u)."""
    return sigmoid(np.float32(cfg.return_intercept) + np.float32(cfg.return_trust) * trust + activity)
