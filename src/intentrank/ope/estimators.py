"""Single-item (contextual-bandit) off-policy estimators: IPS, SNIPS, DM, DR, SNDR.

Notation (as in Open Bandit Pipeline's docs): logged data :math:`\\mathcal{D} = \\{(x_i, a_i, r_i)\\}_{i=1}^n`
collected by the logging (behaviour) policy :math:`\\pi_b`; the target (evaluation) policy :math:`\\pi_e`;
the importance weight :math:`w_i := \\pi_e(a_i|x_i) / \\pi_b(a_i|x_i)`; a reward model
:math:`\\hat{q}(x, a) \\approx \\mathbb{E}[r|x, a]`; :math:`\\mathbb{E}_n` the empirical mean over the
:math:`n` rounds. The policy value is
:math:`V(\\pi_e) = \\mathbb{E}_x \\mathbb{E}_{a\\sim\\pi_e(\\cdot|x)}[q(x,a)]`.

All estimators assume the rounds are i.i.d. and the logged propensities are the true ones; the
importance-weighted ones also need common support (:math:`\\pi_b(a|x) > 0` wherever :math:`\\pi_e(a|x) > 0`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intentrank.errors import DataError
from intentrank.ope.base import OffPolicyEstimator, as_array, check_probability


@dataclass(frozen=True)
class OPEData:
    """Logged rounds for single-item OPE, validated once.

    Attributes (arrays of shape ``(n,)``):
        reward: observed reward :math:`r_i` (e.g. click 0/1).
        logging_prob: :math:`\\pi_b(a_i|x_i)`, the logging policy's probability of the logged action,
            in (0, 1].
        target_prob: :math:`\\pi_e(a_i|x_i)`, the target policy's probability of the logged action, in [0, 1].
        q_hat_logged: optional :math:`\\hat{q}(x_i, a_i)`, the reward model at the logged action (DR, SNDR).
        q_hat_target: optional :math:`\\sum_a \\pi_e(a|x_i) \\hat{q}(x_i, a)`, the reward model's expectation
            under the target policy (DM, DR, SNDR).
    """

    reward: np.ndarray
    logging_prob: np.ndarray
    target_prob: np.ndarray
    q_hat_logged: np.ndarray | None = None
    q_hat_target: np.ndarray | None = None

    def __post_init__(self) -> None:
        reward = as_array(self.reward, "reward")
        n = reward.size
        logging_prob = as_array(self.logging_prob, "logging_prob", n)
        target_prob = as_array(self.target_prob, "target_prob", n)
        check_probability(logging_prob, "logging_prob", allow_zero=False)
        check_probability(target_prob, "target_prob", allow_zero=True)
        object.__setattr__(self, "reward", reward)
        object.__setattr__(self, "logging_prob", logging_prob)
        object.__setattr__(self, "target_prob", target_prob)
        for name in ("q_hat_logged", "q_hat_target"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, as_array(value, name, n))

    @property
    def n(self) -> int:
        """Number of logged rounds."""
        return int(self.reward.size)

    @property
    def weight(self) -> np.ndarray:
        """Importance weights :math:`w_i = \\pi_e(a_i|x_i) / \\pi_b(a_i|x_i)`."""
        return self.target_prob / self.logging_prob

    def require_model(self, estimator: str, logged: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The reward-model arrays an estimator needs, or a DataError naming the missing one."""
        if self.q_hat_target is None:
            raise DataError(
                f"{estimator} needs q_hat_target (the reward model's expectation under the target)"
            )
        if logged and self.q_hat_logged is None:
            raise DataError(f"{estimator} needs q_hat_logged (the reward model at the logged action)")
        return self.q_hat_target, self.q_hat_logged


def _ones(n: int) -> np.ndarray:
    return np.ones(n)


@dataclass(frozen=True)
class IPS(OffPolicyEstimator[OPEData]):
    """Inverse Propensity Scoring (IPS, also IPW).

    .. math::

        \\hat{V}_{\\mathrm{IPS}}(\\pi_e; \\mathcal{D}) := \\mathbb{E}_n [w_i r_i],
        \\qquad w_i = \\pi_e(a_i|x_i) / \\pi_b(a_i|x_i).

    Unbiased when the logged propensities are true and the support condition holds; its variance
    grows with the spread of the weights (a target far from the logger).

    References:
        Horvitz, Thompson. "A Generalization of Sampling Without Replacement from a Finite Universe". 1952.
        Strehl, Langford, Li, Kakade. "Learning from Logged Implicit Exploration Data". NeurIPS 2010.
    """

    name: str = "ips"

    def terms(self, data: OPEData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.zeros(data.n), data.weight * data.reward, _ones(data.n)


@dataclass(frozen=True)
class SNIPS(OffPolicyEstimator[OPEData]):
    """Self-Normalised Inverse Propensity Scoring (SNIPS).

    .. math::

        \\hat{V}_{\\mathrm{SNIPS}}(\\pi_e; \\mathcal{D}) :=
        \\frac{\\mathbb{E}_n [w_i r_i]}{\\mathbb{E}_n [w_i]}.

    Consistent but slightly biased (a ratio estimator); usually much lower variance than IPS, and
    always inside the range of the observed rewards. Invariant to rescaling all propensities.

    References:
        Swaminathan, Joachims. "The Self-Normalized Estimator for Counterfactual Learning". NeurIPS 2015.
    """

    name: str = "snips"

    def terms(self, data: OPEData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = data.weight
        if not np.any(w > 0):
            raise DataError("snips: the target policy gives probability 0 to every logged action")
        return np.zeros(data.n), w * data.reward, w


@dataclass(frozen=True)
class DM(OffPolicyEstimator[OPEData]):
    """Direct Method (DM): the reward model's prediction averaged under the target policy.

    .. math::

        \\hat{V}_{\\mathrm{DM}}(\\pi_e; \\mathcal{D}, \\hat{q}) :=
        \\mathbb{E}_n \\Big[ \\sum_{a} \\pi_e(a|x_i) \\hat{q}(x_i, a) \\Big].

    Low variance, but biased by exactly the reward model's error; ignores the logged rewards except
    through the model. The CI reflects only the sampling of contexts, not the model's error.

    References:
        Beygelzimer, Langford. "The Offset Tree for Learning with Partial Labels". KDD 2009.
    """

    name: str = "dm"

    def terms(self, data: OPEData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q_target, _ = data.require_model(self.name, logged=False)
        return q_target, np.zeros(data.n), _ones(data.n)


@dataclass(frozen=True)
class DR(OffPolicyEstimator[OPEData]):
    """Doubly Robust (DR): DM plus an importance-weighted correction of the model's residual.

    .. math::

        \\hat{V}_{\\mathrm{DR}}(\\pi_e; \\mathcal{D}, \\hat{q}) :=
        \\mathbb{E}_n \\Big[ \\sum_{a} \\pi_e(a|x_i) \\hat{q}(x_i, a)
        + w_i \\big(r_i - \\hat{q}(x_i, a_i)\\big) \\Big].

    Unbiased when the propensities are true (whatever the model), and consistent when either the
    propensities or the model are right; a good model lowers the variance below IPS's.

    References:
        Dudík, Langford, Li. "Doubly Robust Policy Evaluation and Learning". ICML 2011.
        Dudík, Erhan, Langford, Li. "Doubly Robust Policy Evaluation and Optimization".
        Statistical Science 2014.
    """

    name: str = "dr"

    def terms(self, data: OPEData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q_target, q_logged = data.require_model(self.name, logged=True)
        return q_target, data.weight * (data.reward - q_logged), _ones(data.n)


@dataclass(frozen=True)
class SNDR(OffPolicyEstimator[OPEData]):
    """Self-Normalised Doubly Robust (SNDR): DR with the correction term self-normalised.

    .. math::

        \\hat{V}_{\\mathrm{SNDR}}(\\pi_e; \\mathcal{D}, \\hat{q}) :=
        \\mathbb{E}_n \\Big[ \\sum_{a} \\pi_e(a|x_i) \\hat{q}(x_i, a) \\Big]
        + \\frac{\\mathbb{E}_n \\big[ w_i \\big(r_i - \\hat{q}(x_i, a_i)\\big) \\big]}{\\mathbb{E}_n [w_i]}.

    Consistent, slightly biased like SNIPS, and more stable than DR when a few weights are large.

    References:
        Kallus, Uehara. "Intrinsically Efficient, Stable, and Bounded Off-Policy Evaluation for
        Reinforcement Learning". NeurIPS 2019.
        Saito, Aihara, Matsutani, Narita. "Open Bandit Dataset and Pipeline". NeurIPS 2021 D&B
        (obp's ``SNDR``).
    """

    name: str = "sndr"

    def terms(self, data: OPEData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q_target, q_logged = data.require_model(self.name, logged=True)
        w = data.weight
        if not np.any(w > 0):
            raise DataError("sndr: the target policy gives probability 0 to every logged action")
        return q_target, w * (data.reward - q_logged), w
