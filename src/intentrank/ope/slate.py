"""Slate (ranked-list) off-policy estimators: IIPS, RIPS and the pseudo-inverse (PI) estimator.

Notation: a logged slate :math:`s_i = (a_i(1), \\dots, a_i(L))` shown in context :math:`x_i` with
slot-level rewards :math:`r_i(k)` (e.g. clicks); the policy value is the expected slate-level reward
:math:`V(\\pi_e) = \\mathbb{E}_{x}\\mathbb{E}_{s\\sim\\pi_e}[\\sum_k r(k)]` (e.g. clicks per slate).
Probabilities logged per row (one row per slate position):

* marginal: :math:`\\pi(a_i(k) \\text{ at } k \\mid x_i)`, the probability that the policy puts the
  logged item at that position (item-position propensity);
* cascade: :math:`\\pi(a_i(1), \\dots, a_i(k) \\mid x_i)`, the probability of the logged top-:math:`k`
  prefix, i.e. the product of the conditional probabilities down to position :math:`k` (what a
  Plackett–Luce logger can log exactly, row by row).

All are evaluated on the logged units (slates) and bootstrapped over slates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from intentrank.errors import DataError, IntentRankError
from intentrank.ope.base import OffPolicyEstimator, as_array, check_probability

#: Tolerance when checking that a cascade probability does not exceed its marginal.
_PROB_TOL = 1e-9


@dataclass(frozen=True)
class SlateData:
    """Logged slates, one row per (slate, position), validated once and grouped by slate.

    Attributes (arrays of shape ``(n_rows,)``):
        slate_id: identifier of the slate a row belongs to (any hashable values).
        position: 1-based position of the row's item in its slate; unique within a slate.
        reward: slot-level reward :math:`r_i(k)`.
        logging_marginal: :math:`\\pi_b(a_i(k) \\text{ at } k|x_i)`, in (0, 1].
        target_marginal: :math:`\\pi_e(a_i(k) \\text{ at } k|x_i)`, in [0, 1].
        logging_cascade: optional :math:`\\pi_b(a_i(1..k)|x_i)`, in (0, 1] (RIPS).
        target_cascade: optional :math:`\\pi_e(a_i(1..k)|x_i)`, in [0, 1] (RIPS).
        target_inclusion: optional :math:`\\pi_e(a_i(k) \\in s|x_i)`, the target's probability that the
            logged item appears anywhere in its slate (PI under uniform ranking logging).
    """

    slate_id: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    logging_marginal: np.ndarray
    target_marginal: np.ndarray
    logging_cascade: np.ndarray | None = None
    target_cascade: np.ndarray | None = None
    target_inclusion: np.ndarray | None = None

    def __post_init__(self) -> None:
        reward = as_array(self.reward, "reward")
        n = reward.size
        slate_id = np.asarray(self.slate_id)
        if slate_id.shape != (n,):
            raise DataError(f"slate_id: expected {n} values (one per row), got shape {slate_id.shape}")
        position = as_array(self.position, "position", n)
        if np.any(position < 1) or np.any(position != np.round(position)):
            bad = int(np.flatnonzero((position < 1) | (position != np.round(position)))[0])
            raise DataError(f"position: must be integers >= 1, row {bad} has {position[bad]}")
        position = position.astype(np.int64)
        slate_index, slate_id_unique = pd.factorize(slate_id, sort=False)
        keys = pd.MultiIndex.from_arrays([slate_index, position])
        if keys.has_duplicates:
            dup = int(np.flatnonzero(keys.duplicated())[0])
            raise DataError(
                f"slate {slate_id[dup]!r} has position {position[dup]} twice (row {dup}); "
                "positions must be unique within a slate"
            )
        object.__setattr__(self, "slate_id", slate_id)
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "reward", reward)
        object.__setattr__(self, "_slate_index", slate_index)
        object.__setattr__(self, "_n_slates", len(slate_id_unique))
        for name, allow_zero in (("logging_marginal", False), ("target_marginal", True)):
            arr = as_array(getattr(self, name), name, n)
            check_probability(arr, name, allow_zero=allow_zero)
            object.__setattr__(self, name, arr)
        for name, allow_zero in (
            ("logging_cascade", False),
            ("target_cascade", True),
            ("target_inclusion", True),
        ):
            if getattr(self, name) is not None:
                arr = as_array(getattr(self, name), name, n)
                check_probability(arr, name, allow_zero=allow_zero)
                object.__setattr__(self, name, arr)
        pairs = (("logging_cascade", "logging_marginal"), ("target_cascade", "target_marginal"))
        for cascade, marginal in pairs:
            c = getattr(self, cascade)
            if c is not None:
                bad = c > getattr(self, marginal) + _PROB_TOL
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise DataError(
                        f"{cascade} exceeds {marginal} at row {i} ({c[i]} > {getattr(self, marginal)[i]}): "
                        "a prefix cannot be likelier than its last item's placement"
                    )

    @classmethod
    def from_frame(cls, df: pd.DataFrame, **columns: str) -> SlateData:
        """Build from a DataFrame whose columns are named like the attributes (or mapped by ``columns``).

        Example: ``SlateData.from_frame(log, reward="click")``. Optional columns that are absent stay None.
        """
        names = ("slate_id", "position", "reward", "logging_marginal", "target_marginal")
        optional = ("logging_cascade", "target_cascade", "target_inclusion")
        unknown = set(columns) - set(names) - set(optional)
        if unknown:
            raise IntentRankError(f"SlateData.from_frame: unknown field(s) {sorted(unknown)}")
        kwargs: dict[str, object] = {}
        for field in names + optional:
            col = columns.get(field, field)
            if col in df.columns:
                kwargs[field] = df[col].to_numpy()
            elif field in names:
                raise DataError(f"slate log: missing column {col!r} (for {field})")
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def n_rows(self) -> int:
        """Number of logged (slate, position) rows."""
        return int(self.reward.size)

    @property
    def n_slates(self) -> int:
        """Number of logged slates."""
        return int(self._n_slates)  # type: ignore[attr-defined]

    def per_slate_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-row array within each slate, in order of first appearance of the slate."""
        return np.bincount(self._slate_index, weights=values, minlength=self.n_slates)  # type: ignore[attr-defined]

    @property
    def slate_length(self) -> np.ndarray:
        """Number of logged positions of each slate."""
        return self.per_slate_sum(np.ones(self.n_rows))

    @property
    def slate_reward(self) -> np.ndarray:
        """Slate-level reward :math:`\\sum_k r_i(k)` of each slate."""
        return self.per_slate_sum(self.reward)

    def require(self, estimator: str, *names: str) -> list[np.ndarray]:
        """The optional arrays an estimator needs, or a DataError naming the first missing one."""
        out = []
        for name in names:
            arr = getattr(self, name)
            if arr is None:
                raise DataError(f"{estimator} needs the per-row column {name!r}, which the slate log lacks")
            out.append(arr)
        return out


def _slate_terms(data: SlateData, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = data.n_slates
    return np.zeros(n), u, np.ones(n)


@dataclass(frozen=True)
class IIPS(OffPolicyEstimator[SlateData]):
    """Independent-item IPS (IIPS): each slot's reward weighted by its item-position marginal ratio.

    .. math::

        \\hat{V}_{\\mathrm{IIPS}}(\\pi_e; \\mathcal{D}) := \\mathbb{E}_n \\Big[ \\sum_{k=1}^{L}
        \\frac{\\pi_e(a_i(k) \\text{ at } k|x_i)}{\\pi_b(a_i(k) \\text{ at } k|x_i)} r_i(k) \\Big].

    Unbiased under the *independence* assumption: the reward at slot :math:`k` depends only on the
    item at slot :math:`k` (no interaction between slots). Lowest variance of the three; biased when
    slots interact (e.g. a click higher up lowers the chance of one below).

    References:
        Li, Kim, Zitouni. "Offline Evaluation of Ranking Policies with Click Models". KDD 2018.
        McInerney, Brost, Chandar, Mehrotra, Carterette. "Counterfactual Evaluation of Slate
        Recommendations with Sequential Reward Interactions". KDD 2020.
    """

    name: str = "iips"

    def terms(self, data: SlateData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = data.target_marginal / data.logging_marginal
        return _slate_terms(data, data.per_slate_sum(w * data.reward))


@dataclass(frozen=True)
class RIPS(OffPolicyEstimator[SlateData]):
    """Reward-interaction IPS (RIPS): each slot's reward weighted by the cascade (prefix) ratio.

    .. math::

        \\hat{V}_{\\mathrm{RIPS}}(\\pi_e; \\mathcal{D}) := \\mathbb{E}_n \\Big[ \\sum_{k=1}^{L}
        \\frac{\\pi_e(a_i(1), \\dots, a_i(k)|x_i)}{\\pi_b(a_i(1), \\dots, a_i(k)|x_i)} r_i(k) \\Big]
        = \\mathbb{E}_n \\Big[ \\sum_{k=1}^{L} \\prod_{j \\le k} \\frac{\\pi_e(a_i(j)|x_i, a_i(1..j-1))}
        {\\pi_b(a_i(j)|x_i, a_i(1..j-1))} r_i(k) \\Big].

    Unbiased under the *cascade* assumption: the reward at slot :math:`k` depends only on the items
    at slots :math:`1..k` (the user scans top-down). Weaker assumption than IIPS's, higher variance
    (the weight is a product over the prefix).

    References:
        McInerney, Brost, Chandar, Mehrotra, Carterette. "Counterfactual Evaluation of Slate
        Recommendations with Sequential Reward Interactions". KDD 2020.
        Kiyohara, Saito, Matsuhiro, Narita, Shimizu, Yamamoto. "Doubly Robust Off-Policy Evaluation for
        Ranking Policies under the Cascade Behavior Model". WSDM 2022.
    """

    name: str = "rips"

    def terms(self, data: SlateData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logging_cascade, target_cascade = data.require(self.name, "logging_cascade", "target_cascade")
        w = target_cascade / logging_cascade
        return _slate_terms(data, data.per_slate_sum(w * data.reward))


@dataclass(frozen=True)
class PI(OffPolicyEstimator[SlateData]):
    """Pseudo-inverse estimator (PI) of Swaminathan et al. for slate-level rewards additive over slots.

    General form, with :math:`\\mathbf{1}_s \\in \\{0,1\\}^{Lm}` the item-at-position indicator of a slate,
    :math:`\\Gamma_{\\pi_b}(x) = \\mathbb{E}_{s\\sim\\pi_b}[\\mathbf{1}_s \\mathbf{1}_s^\\top]` and
    :math:`\\mathbf{q}_{\\pi_e}(x) = \\mathbb{E}_{s\\sim\\pi_e}[\\mathbf{1}_s]` (the target's marginals):

    .. math::

        \\hat{V}_{\\mathrm{PI}}(\\pi_e; \\mathcal{D}) := \\mathbb{E}_n \\big[ r_i \\,
        \\mathbf{q}_{\\pi_e}(x_i)^\\top \\Gamma_{\\pi_b}(x_i)^{+} \\mathbf{1}_{s_i} \\big],
        \\qquad r_i = \\sum_k r_i(k).

    Only the slate-level reward is used. Unbiased when :math:`\\mathbb{E}[r|x,s] = \\sum_k \\phi_x(k, a(k))`
    (additivity) and the target's marginals lie in the span of the logger's (see
    :func:`pseudo_inverse_weights` for the general formula on an explicit :math:`\\Gamma`). With row
    logs :math:`\\Gamma` is not available, so two closed forms of :math:`\\Gamma^{+}` are implemented:

    * ``logging="product"`` — the logger draws each slot independently (a Cartesian product of
      per-slot distributions; Swaminathan et al.'s Example 4, the case ``vw-estimators`` implements):

      .. math::

          w_i = \\sum_{k=1}^{L} \\frac{\\pi_e(a_i(k) \\text{ at } k|x_i)}{\\pi_b(a_i(k) \\text{ at } k|x_i)}
          - (L - 1).

    * ``logging="uniform_ranking"`` — the logger draws an ordered list of :math:`L` distinct items out
      of ``n_items`` :math:`= m` uniformly (rankings without replacement). With
      :math:`A_i = \\sum_k \\pi_e(a_i(k) \\text{ at } k|x_i)` and
      :math:`C_i = \\sum_k \\pi_e(a_i(k) \\in s|x_i)` (``target_inclusion``), the
      pseudo-inverse gives (derived from :math:`\\Gamma^{+}`, checked against it numerically in the tests):

      .. math::

          w_i = (m-1) A_i + \\frac{m-1}{m-L} (C_i - L) + 1 \\quad (L < m), \\qquad
          w_i = (m-1) A_i - (m-2) \\quad (L = m).

    Neither closed form holds for a Plackett–Luce logger over non-uniform scores (slots are then
    dependent and :math:`\\Gamma^{+}` has no short form); use IIPS/RIPS there, or
    :func:`pseudo_inverse_weights` with an enumerated :math:`\\Gamma` on small problems.

    References:
        Swaminathan, Krishnamurthy, Agarwal, Dudík, Langford, Jose, Zitouni. "Off-policy evaluation for
        slate recommendation". NeurIPS 2017 (arXiv:1605.04812).
    """

    logging: Literal["product", "uniform_ranking"] = "product"
    n_items: int | None = None
    name: str = "pi"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.logging not in ("product", "uniform_ranking"):
            raise IntentRankError(f"PI: logging must be 'product' or 'uniform_ranking', got {self.logging!r}")
        if self.logging == "uniform_ranking" and (self.n_items is None or self.n_items < 1):
            raise IntentRankError(f"PI: logging='uniform_ranking' needs n_items >= 1, got {self.n_items!r}")

    def slate_weights(self, data: SlateData) -> np.ndarray:
        """The PI weight :math:`\\mathbf{q}^\\top \\Gamma^{+} \\mathbf{1}_{s_i}` of each logged slate."""
        length = data.slate_length
        if self.logging == "product":
            return data.per_slate_sum(data.target_marginal / data.logging_marginal) - (length - 1)
        m = int(self.n_items)  # type: ignore[arg-type]
        if np.any(length > m):
            raise DataError(f"pi: a slate has {int(length.max())} positions but n_items is {m}")
        if not np.allclose(data.logging_marginal, 1.0 / m):
            raise DataError(
                f"pi: logging='uniform_ranking' expects logging_marginal = 1/n_items = {1 / m:.6g}, "
                f"got values in [{data.logging_marginal.min():.6g}, {data.logging_marginal.max():.6g}]"
            )
        a = data.per_slate_sum(data.target_marginal)
        if np.all(length == m):
            return (m - 1) * a - (m - 2)
        if np.any(length == m):
            raise DataError("pi: mixing full-length (L = n_items) and shorter slates is not supported")
        (inclusion,) = data.require(self.name, "target_inclusion")
        c = data.per_slate_sum(inclusion)
        return (m - 1) * a + (m - 1) / (m - length) * (c - length) + 1

    def terms(self, data: SlateData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _slate_terms(data, data.slate_reward * self.slate_weights(data))


def pseudo_inverse_weights(
    gamma: np.ndarray, target_marginals: np.ndarray, indicators: np.ndarray
) -> np.ndarray:
    """General PI weights :math:`\\mathbf{q}^\\top \\Gamma^{+} \\mathbf{1}_s` for explicit, small problems.

    ``gamma``: the logger's :math:`D \\times D` second-moment matrix
    :math:`\\mathbb{E}_{\\pi_b}[\\mathbf{1}_s\\mathbf{1}_s^\\top]` (:math:`D = L m` item-position slots);
    ``target_marginals``: :math:`\\mathbf{q}_{\\pi_e}` of shape ``(D,)``;
    ``indicators``: the slates' indicator vectors, shape ``(n, D)``. Uses the Moore–Penrose pseudo-inverse
    (``numpy.linalg.pinv``), so it costs :math:`O(D^3)` — for tests and small catalogues only.
    """
    gamma = np.asarray(gamma, dtype=np.float64)
    q = np.asarray(target_marginals, dtype=np.float64)
    ind = np.atleast_2d(np.asarray(indicators, dtype=np.float64))
    d = q.size
    if gamma.shape != (d, d) or ind.shape[1] != d:
        raise DataError(
            f"pseudo_inverse_weights: shapes disagree: gamma {gamma.shape}, q {q.shape}, "
            f"indicators {ind.shape}"
        )
    return ind @ (np.linalg.pinv(gamma, hermitian=True) @ q)
