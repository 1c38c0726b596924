"""The simulated user population: hidden traits (interests, susceptibility, trust, propensities) and state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intentrank.errors import IntentRankError
from intentrank.simulator.config import UserConfig


@dataclass
class UserPopulation:
    """Per-user arrays (index = user id). ``trust`` is the mutable state; the rest is fixed.

    Memory: (n_topics + 6) float32 per user, e.g. 1,000,000 users x 12 topics ~ 72 MB.
    """

    interest: np.ndarray  # (N, T) float32 in [0, 1]; 1 = the user's favourite topic
    susceptibility: np.ndarray  # (N,) float32 in [0, 1]: s_u, pull of curiosity gaps
    trust0: np.ndarray  # (N,) float32 in [0, 1]: initial (long-run) trust
    trust: np.ndarray  # (N,) float32 in [0, 1]: current trust (state)
    conversion_offset: np.ndarray  # (N,) float32: κ_u, conversion logit offset
    activity_offset: np.ndarray  # (N,) float32: a_u, return logit offset

    def __len__(self) -> int:
        return len(self.trust)

    @classmethod
    def generate(
        cls, n_users: int, n_topics: int, config: UserConfig | None = None, seed: int = 0
    ) -> UserPopulation:
        """Draw ``n_users`` users; user ``u``'s traits depend only on (seed, u's block), not on arms."""
        if n_users < 1:
            raise IntentRankError(f"users must be at least 1, got {n_users}")
        cfg = config or UserConfig()
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x05E5]))
        theta = rng.dirichlet(np.full(n_topics, cfg.interest_concentration), size=n_users).astype(np.float32)
        theta /= theta.max(axis=1, keepdims=True)
        trust0 = rng.beta(*cfg.trust_beta, n_users).astype(np.float32)
        return cls(
            interest=theta,
            susceptibility=rng.beta(*cfg.susceptibility_beta, n_users).astype(np.float32),
            trust0=trust0,
            trust=trust0.copy(),
            conversion_offset=rng.normal(0.0, cfg.conversion_offset_sd, n_users).astype(np.float32),
            activity_offset=rng.normal(0.0, cfg.activity_offset_sd, n_users).astype(np.float32),
        )

    def reset(self) -> None:
        """Trust back to its initial value (a fresh run on the same population)."""
        self.trust[:] = self.trust0
