"""The simulated world: catalogue + users + behaviour config, and the true (hidden) outcome model.

Oracle policies read the truth through :class:`World`; nothing here is ever written to the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intentrank.simulator import behaviour as bh
from intentrank.simulator.catalogue import Catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.living import freshness
from intentrank.simulator.users import UserPopulation


@dataclass
class World:
    """Everything the simulator knows, including what a real platform never sees."""

    catalogue: Catalogue
    users: UserPopulation
    config: SimulatorConfig

    @classmethod
    def create(
        cls,
        catalogue: Catalogue,
        config: SimulatorConfig | None = None,
        seed: int = 0,
        n_users: int | None = None,
    ) -> World:
        """A world of ``n_users`` (default ``config.users``) drawn from ``seed`` over ``catalogue``."""
        cfg = config or SimulatorConfig()
        users = UserPopulation.generate(n_users or cfg.users, catalogue.n_topics, cfg.population, seed)
        return cls(catalogue, users, cfg)

    def interest(
        self, user_ids: np.ndarray, item_ids: np.ndarray, ts: np.ndarray | None = None
    ) -> np.ndarray:
        """Topic interest I of each (user, item) pair; ``user_ids`` (B,) against ``item_ids`` (B, K).

        In the living world, with the request times ``ts`` (B,), times the item's freshness at that time."""
        t = self.catalogue.n_topics
        flat = user_ids[:, None] * t + self.catalogue.topic_id[item_ids]
        out = self.users.interest.reshape(-1)[flat]
        if ts is not None and self.catalogue.living:
            age = np.asarray(ts, dtype=np.float64)[:, None] - self.catalogue.publish_ts64[item_ids]
            out = out * freshness(age, self.config.living)
        return out

    def true_click_prob(
        self, user_ids: np.ndarray, item_ids: np.ndarray, ts: np.ndarray | None = None
    ) -> np.ndarray:
        """P(click | examined) of each (user, item) pair, shape of ``item_ids``."""
        u = self.users
        return bh.click_prob(
            self.interest(user_ids, item_ids, ts),
            u.susceptibility[user_ids, None],
            self.catalogue.true_clickbait32[item_ids],
            u.trust[user_ids, None],
            self.config.behaviour,
        )

    def true_time(
        self, user_ids: np.ndarray, item_ids: np.ndarray, ts: np.ndarray | None = None
    ) -> np.ndarray:
        """E[seconds on the item | click]: a read's mean dwell if not bounced, a bounce's otherwise.

        E[t | click] = (1 − P(bounce))·exp(μ + σ²/2) + P(bounce)·(1 + bounce_dwell_max_s)/2."""
        cfg = self.config.behaviour
        interest = self.interest(user_ids, item_ids, ts)
        b = self.catalogue.true_clickbait32[item_ids]
        q = self.catalogue.quality32[item_ids]
        pb = bh.bounce_prob(b, q, cfg)
        read = np.exp(bh.dwell_log_mean(interest, q, cfg) + np.float32(cfg.dwell_sd**2 / 2))
        return (1 - pb) * read + pb * np.float32((1.0 + cfg.bounce_dwell_max_s) / 2)

    def true_conversion_prob(
        self, user_ids: np.ndarray, item_ids: np.ndarray, ts: np.ndarray | None = None
    ) -> np.ndarray:
        """P(conversion | click) = (1 − P(bounce))·P(conversion | read)."""
        cfg = self.config.behaviour
        interest = self.interest(user_ids, item_ids, ts)
        q = self.catalogue.quality32[item_ids]
        pb = bh.bounce_prob(self.catalogue.true_clickbait32[item_ids], q, cfg)
        return (1 - pb) * bh.conversion_prob(interest, q, self.users.conversion_offset[user_ids, None], cfg)

    def true_value(
        self, user_ids: np.ndarray, item_ids: np.ndarray, ts: np.ndarray | None = None
    ) -> np.ndarray:
        """Expected satisfaction of showing each item (intent oracle's score), see docs/simulator.md.

        V = P(click)·[(1 − P(bounce))·(w_min·E[dwell | read]/60 + v_conv·P(conv | read)) − c_b·P(bounce)].
        """
        cfg, oc = self.config.behaviour, self.config.intent_oracle
        interest = self.interest(user_ids, item_ids, ts)
        b = self.catalogue.true_clickbait32[item_ids]
        q = self.catalogue.quality32[item_ids]
        pc = bh.click_prob(
            interest, self.users.susceptibility[user_ids, None], b, self.users.trust[user_ids, None], cfg
        )
        pb = bh.bounce_prob(b, q, cfg)
        minutes = np.exp(bh.dwell_log_mean(interest, q, cfg) + np.float32(cfg.dwell_sd**2 / 2)) / np.float32(
            60
        )
        pconv = bh.conversion_prob(interest, q, self.users.conversion_offset[user_ids, None], cfg)
        read_value = np.float32(oc.minutes_weight) * minutes + np.float32(oc.conversion_value) * pconv
        return pc * ((1 - pb) * read_value - np.float32(oc.bounce_cost) * pb)
