"""A simple reward model for the direct and doubly robust estimators on slate logs: item × position.

.. math::

    \\hat q(a, k) = \\hat e_k \\, \\hat\\theta_a, \\qquad
    \\hat e_k = \\frac{\\bar r_k}{\\bar r_0}, \\qquad
    \\hat\\theta_a = \\frac{\\sum_{i: a_i = a} r_i + m \\, \\bar\\theta}
    {\\sum_{i: a_i = a} \\hat e_{k_i} + m},

a position-based model (Craswell et al., WSDM 2008): the reward at position :math:`k` is an examination
factor :math:`\\hat e_k` (the mean reward at :math:`k` relative to the top) times an item attractiveness
:math:`\\hat\\theta_a`, shrunk towards the overall level :math:`\\bar\\theta` with prior strength
:math:`m` (empirical Bayes; items seen rarely stay near the mean). It ignores the user and is fitted on
the log without importance weights, so it is biased — which DR tolerates and DM does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intentrank.errors import DataError


@dataclass
class ItemPositionModel:
    """``fit(item, position, reward)`` then ``predict(item, position)``; see the module docstring."""

    prior_strength: float = 20.0

    def fit(self, item: np.ndarray, position: np.ndarray, reward: np.ndarray) -> ItemPositionModel:
        """Fit on logged rows (0-based positions); returns self."""
        item = np.asarray(item, dtype=np.int64)
        position = np.asarray(position, dtype=np.int64)
        reward = np.asarray(reward, dtype=np.float64)
        if not (item.shape == position.shape == reward.shape) or item.size == 0:
            raise DataError("ItemPositionModel.fit: item, position and reward must be equal, non-empty 1-D")
        n_pos = int(position.max()) + 1
        count = np.bincount(position, minlength=n_pos)
        mean_k = np.bincount(position, weights=reward, minlength=n_pos) / np.maximum(count, 1)
        top = mean_k[0] if mean_k[0] > 0 else max(reward.mean(), 1e-12)
        self.examination_ = np.clip(mean_k / top, 1e-6, None)
        e = self.examination_[position]
        self.level_ = float(reward.sum() / e.sum())
        n_items = int(item.max()) + 1
        num = np.bincount(item, weights=reward, minlength=n_items)
        den = np.bincount(item, weights=e, minlength=n_items)
        self.attractiveness_ = (num + self.prior_strength * self.level_) / (den + self.prior_strength)
        return self

    def predict(self, item: np.ndarray, position: np.ndarray) -> np.ndarray:
        """:math:`\\hat q(a, k)` in [0, 1] (broadcasts ``item`` against ``position``); unseen items get the
        overall level, positions beyond the fitted ones the last position's examination."""
        item = np.asarray(item, dtype=np.int64)
        position = np.minimum(np.asarray(position, dtype=np.int64), len(self.examination_) - 1)
        att = np.where(
            item < len(self.attractiveness_),
            self.attractiveness_[np.minimum(item, len(self.attractiveness_) - 1)],
            self.level_,
        )
        return np.clip(self.examination_[position] * att, 0.0, 1.0)
