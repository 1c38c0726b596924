"""Reinforcement-learning alignment of a trained ranker against clickbait (post-training step).

The ranker is the *actor*. A state is a set of K items sampled from the catalogue (optionally with a
context, e.g. the user it is ranked for); the actor's policy over the set is the softmax of its
ranking logits (log of the ranking score) divided by a temperature — the distribution a
Plackett–Luce slate sampler would draw the first item from. An action is an item drawn from that
policy; its reward is the clickbait penalty (``-c``, or ``-L_cb`` at the frozen model's p_click).

Each update:
  * a *critic* V(s) (a small MLP on summary statistics of the set's rewards, including the frozen
    policy's expected reward) is fit to the observed rewards (MSE), and
  * the actor follows the advantage policy gradient ``-E[log π(a|s) · (r(a) - V(s))]`` (scaled by
    ``loss_weight``; estimator ``sampled``: ``actions_per_set`` draws per set, or ``all_actions``:
    every item of the set weighted by π, lower variance) plus ``β · KL(π ‖ π_frozen)``, the exact
    KL over the set, to a frozen copy of the trained model.
β adapts by a proportional controller (rate ``kl_rate``) so the measured KL tracks half the
bound. At the end the KL is measured on fresh sets; if it exceeds the bound the parameters are
pulled back towards the frozen model
(bisection on θ = θ₀ + α(θ − θ₀)), so the returned model is always within the bound on those sets.

Strength knobs: ``loss_weight``, ``kl_bound`` and the sampling strategy (``uniform``, ``popularity``
or ``clickbait``: sets rich in clickbait give the actor more to learn from).

The actor is anything a :data:`SetScorer` can score: the default scorer is for models that take
``(item_ids, context)``; :func:`intentrank.mitigation.pipeline.ranker_set_scorer` adapts the
multi-task ranker.

References:
    "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz): alignment of the
    trained ranker by reinforcement learning with a clickbait reward, KL-bounded to the original model.
    V. Konda, J. Tsitsiklis, "Actor-Critic Algorithms", NeurIPS 1999 (the advantage actor-critic).
    W. Kool, H. van Hoof, M. Welling, "Stochastic Beams and Where to Find Them: The Gumbel-Top-k Trick
    for Sampling Sequences Without Replacement", ICML 2019 (the set sampler).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from intentrank.errors import ConfigError, DataError
from intentrank.mitigation.config import RLAlignmentMethod
from intentrank.mitigation.validation import validate_method

#: (model, item_ids (S, K) long, context (S,) long or None) -> ranking logits (S, K), differentiable.
SetScorer = Callable[[nn.Module, Tensor, Tensor | None], Tensor]
#: (model, item_ids, context) -> click logits (S, K); needed only for the ``neg_lcb`` reward.
ClickScorer = Callable[[nn.Module, Tensor, Tensor | None], Tensor]


def default_set_scorer(model: nn.Module, item_ids: Tensor, context: Tensor | None) -> Tensor:
    """Scores a set with ``model(item_ids, context)`` (the stand-in actor's signature)."""
    return model(item_ids, context)


# ---------------------------------------------------------------------------------------------------
# sampling item sets from the catalogue
# ---------------------------------------------------------------------------------------------------
class ItemSetSampler:
    """Draws sets of distinct items from the catalogue: uniformly, by popularity or by clickbait score.

    Without replacement within a set, vectorised with the Gumbel-top-k trick: the K largest of
    ``log w_i + Gumbel`` are a weighted sample without replacement. Item weights: 1 (``uniform``),
    ``(popularity + 1) ** power`` or ``(c + 0.001) ** power`` (``clickbait``).

    Args:
        clickbait: Clickbait score per item (N,), in [0, 1].
        strategy: ``"uniform"``, ``"popularity"`` or ``"clickbait"``.
        popularity: Counts per item (N,), needed by ``"popularity"``.
        power: Exponent of the weights.
        contexts: Context ids (e.g. users) to draw one per set from; None = no context.

    Raises:
        DataError: Invalid clickbait scores or popularity.
        ConfigError: Unknown strategy, or ``"popularity"`` without counts.

    Example:
        >>> import numpy as np
        >>> sampler = ItemSetSampler(np.linspace(0, 1, 50), strategy="clickbait")
        >>> items, ctx = sampler.sample(n_sets=3, set_size=5, rng=np.random.default_rng(0))
        >>> items.shape, ctx, all(len(set(row)) == 5 for row in items)
        ((3, 5), None, True)

    References:
        Kool, van Hoof, Welling, "Stochastic Beams and Where to Find Them", ICML 2019.
    """

    STRATEGIES = ("uniform", "popularity", "clickbait")

    def __init__(
        self,
        clickbait: np.ndarray,
        strategy: str = "uniform",
        popularity: np.ndarray | None = None,
        power: float = 1.0,
        contexts: np.ndarray | None = None,
    ) -> None:
        c = np.asarray(clickbait, dtype=np.float64)
        if c.ndim != 1 or c.size < 2:
            raise DataError(f"rl_alignment: clickbait must be a 1-D array of ≥ 2 items (got shape {c.shape})")
        if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 1:
            raise DataError("rl_alignment: clickbait scores must be finite and in [0, 1]")
        if strategy not in self.STRATEGIES:
            raise ConfigError(f"rl_alignment.sampling: unknown strategy {strategy!r} (use {self.STRATEGIES})")
        if strategy == "uniform":
            weights = np.ones_like(c)
        elif strategy == "popularity":
            if popularity is None:
                raise ConfigError("rl_alignment.sampling: 'popularity' needs item popularity counts")
            pop = np.asarray(popularity, dtype=np.float64)
            if pop.shape != c.shape or not np.all(np.isfinite(pop)) or pop.min() < 0:
                raise DataError("rl_alignment: popularity must be finite, non-negative, one per item")
            weights = (pop + 1.0) ** power  # +1: unseen items keep a chance
        else:
            weights = (c + 1e-3) ** power
        self.clickbait = c
        self.log_w = np.log(weights / weights.sum())
        self.strategy = strategy
        self.contexts = None if contexts is None else np.asarray(contexts, dtype=np.int64)

    @property
    def n_items(self) -> int:
        return self.clickbait.size

    def sample(
        self, n_sets: int, set_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw ``n_sets`` sets of ``set_size`` distinct items.

        Args:
            n_sets: Number of sets S.
            set_size: Items per set K (≤ catalogue size).
            rng: Random generator.

        Returns:
            (item ids (S, K) int64, context ids (S,) or None).

        Raises:
            ConfigError: ``set_size`` larger than the catalogue.
        """
        if set_size > self.n_items:
            raise ConfigError(f"rl_alignment.set_size: {set_size} > catalogue size {self.n_items}")
        keys = self.log_w[None, :] + rng.gumbel(size=(n_sets, self.n_items))
        items = np.argpartition(-keys, set_size - 1, axis=1)[:, :set_size]
        ctx = None
        if self.contexts is not None and self.contexts.size:
            ctx = rng.choice(self.contexts, size=n_sets)
        return items.astype(np.int64), ctx


# ---------------------------------------------------------------------------------------------------
# critic
# ---------------------------------------------------------------------------------------------------
class SetCritic(nn.Module):
    """V(s): expected reward of the actor's draw from a set, from summary statistics of the set.

    A small MLP (5 → ``hidden`` → 1, tanh) on :meth:`features`; the baseline that turns rewards into
    advantages ``r(a) - V(s)`` and lowers the policy gradient's variance.

    Args:
        hidden: Hidden units.

    Example:
        >>> import torch
        >>> critic = SetCritic()
        >>> rewards, probs = -torch.rand(4, 10), torch.full((4, 10), 0.1)
        >>> critic(SetCritic.features(rewards, probs)).shape
        torch.Size([4])
    """

    N_FEATURES = 5

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(self.N_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    @staticmethod
    def features(rewards: Tensor, frozen_probs: Tensor) -> Tensor:
        """Summary statistics of each set.

        Args:
            rewards: Reward of each item (S, K).
            frozen_probs: The frozen policy's probabilities over each set (S, K).

        Returns:
            (S, 5): mean, std, min, max of the set's rewards and the frozen policy's expected reward.
        """
        return torch.stack(
            [
                rewards.mean(1),
                rewards.std(1),
                rewards.min(1).values,
                rewards.max(1).values,
                (frozen_probs * rewards).sum(1),
            ],
            dim=1,
        )

    def forward(self, feats: Tensor) -> Tensor:
        """Features (S, 5) → V(s) (S,)."""
        return self.net(feats).squeeze(-1)


# ---------------------------------------------------------------------------------------------------
# the alignment loop
# ---------------------------------------------------------------------------------------------------
@dataclass
class AlignmentReport:
    """What an alignment run did and measured (on fresh evaluation sets, same sets for both models)."""

    kl: float
    kl_bound: float
    mean_c_topk_frozen: float
    mean_c_topk_aligned: float
    expected_reward_frozen: float
    expected_reward_aligned: float
    kl_coef: float
    pullback_alpha: float  # 1.0 = no pull-back needed
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("history")
        return d


class RLAligner:
    """Actor–critic alignment, KL-bounded to the frozen trained model; ``align(model)`` updates in place.

    See the module docstring for the update. The returned model's KL to the frozen one, measured on
    fresh sets, is within ``kl_bound`` (parameters are pulled back if needed).

    Args:
        sampler: Draws the item sets (the states).
        cfg: The method's config; None = built from ``params`` (validated).
        set_scorer: ``(model, item_ids (S, K), context) -> ranking logits (S, K)``.
        click_scorer: ``(model, item_ids, context) -> click logits (S, K)``; needed by the ``neg_lcb``
            reward.
        seed: Seed of the sets, the actions and torch.
        **params: Fields of :class:`~intentrank.mitigation.config.RLAlignmentMethod` when ``cfg`` is None.

    Raises:
        ConfigError: Invalid parameters, ``neg_lcb`` without a click scorer, sets larger than the
            catalogue.

    Example:
        >>> import numpy as np, torch
        >>> from torch import nn
        >>> class Actor(nn.Module):  # one learnable score per item
        ...     def __init__(self, n):
        ...         super().__init__()
        ...         self.score = nn.Embedding(n, 1)
        ...     def forward(self, items, ctx):
        ...         return self.score(items).squeeze(-1)
        >>> _ = torch.manual_seed(0)
        >>> aligner = RLAligner(ItemSetSampler(np.linspace(0, 1, 50)), set_size=10, steps=10, seed=0)
        >>> report = aligner.align(Actor(50))
        >>> report.kl <= report.kl_bound, report.expected_reward_aligned > report.expected_reward_frozen
        (True, True)

    References:
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz), RL alignment;
        Konda & Tsitsiklis, NeurIPS 1999.
    """

    def __init__(
        self,
        sampler: ItemSetSampler,
        cfg: RLAlignmentMethod | None = None,
        set_scorer: SetScorer = default_set_scorer,
        click_scorer: ClickScorer | None = None,
        seed: int = 0,
        **params: Any,
    ) -> None:
        self.cfg = cfg if cfg is not None else validate_method(RLAlignmentMethod, "rl_alignment", **params)
        if self.cfg.reward == "neg_lcb" and click_scorer is None:
            raise ConfigError("rl_alignment.reward: 'neg_lcb' needs a click scorer (the model's click logit)")
        if self.cfg.set_size > sampler.n_items:
            raise ConfigError(
                f"rl_alignment.set_size: {self.cfg.set_size} > catalogue size {sampler.n_items}"
            )
        self.sampler = sampler
        self.set_scorer = set_scorer
        self.click_scorer = click_scorer
        self.seed = seed
        self.c = torch.tensor(sampler.clickbait, dtype=torch.float32)

    # -- pieces ------------------------------------------------------------------------------------
    def _draw(self, n_sets: int, rng: np.random.Generator) -> tuple[Tensor, Tensor | None]:
        items, ctx = self.sampler.sample(n_sets, self.cfg.set_size, rng)
        return torch.from_numpy(items), None if ctx is None else torch.from_numpy(ctx)

    def _log_probs(self, model: nn.Module, items: Tensor, ctx: Tensor | None) -> Tensor:
        logits = self.set_scorer(model, items, ctx)
        if logits.shape != items.shape:
            raise DataError(
                f"rl_alignment: set scorer returned shape {tuple(logits.shape)}, want {tuple(items.shape)}"
            )
        return F.log_softmax(logits.float() / self.cfg.temperature, dim=1)

    def _rewards(self, frozen: nn.Module, items: Tensor, ctx: Tensor | None) -> Tensor:
        c = self.c[items]
        if self.cfg.reward == "neg_c":
            return -c
        assert self.click_scorer is not None
        with torch.no_grad():
            z = self.click_scorer(frozen, items, ctx).float()
        return -F.softplus(z) * (2.0 * c - 1.0)

    @staticmethod
    def _kl(logp: Tensor, logp0: Tensor) -> Tensor:
        """Per-set KL(π ‖ π₀) over the finite set."""
        return (logp.exp() * (logp - logp0)).sum(1)

    def _topk_c(self, logp: Tensor, items: Tensor) -> float:
        k = min(self.cfg.top_k, items.shape[1])
        top = logp.topk(k, dim=1).indices
        return float(self.c[items.gather(1, top)].mean())

    # -- main loop ---------------------------------------------------------------------------------
    def align(self, model: nn.Module, frozen: nn.Module | None = None) -> AlignmentReport:
        """Align ``model`` in place; ``frozen`` defaults to a deep copy of ``model`` taken now.

        Args:
            model: The actor (scored by ``set_scorer``); its parameters are updated.
            frozen: The reference policy for the KL term and the rewards.

        Returns:
            :class:`AlignmentReport` measured on fresh evaluation sets.
        """
        cfg = self.cfg
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        was_training = model.training
        if frozen is None:
            frozen = copy.deepcopy(model)
        frozen.eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        model.eval()  # align the serving-mode scores (no dropout; the shallow tower's input zeroed)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("rl_alignment: the model has no trainable parameters")
        theta0 = [p.detach().clone() for p in params]
        critic = SetCritic()
        opts: list[
            torch.optim.Optimizer
        ] = []  # built after the first backward (sparse grads need SparseAdam)
        copt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
        beta = cfg.kl_coef
        target = 0.5 * cfg.kl_bound
        history: list[dict[str, float]] = []
        S, A = cfg.sets_per_step, cfg.actions_per_set
        for step in range(cfg.steps):
            items, ctx = self._draw(S, rng)
            with torch.no_grad():
                logp0 = self._log_probs(frozen, items, ctx)
            rewards = self._rewards(frozen, items, ctx)
            logp = self._log_probs(model, items, ctx)
            actions = torch.multinomial(logp.detach().exp(), A, replacement=True)  # (S, A)
            r_a = rewards.gather(1, actions)
            # critic
            feats = SetCritic.features(rewards, logp0.exp())
            v = critic(feats)
            closs = F.mse_loss(v[:, None].expand_as(r_a), r_a)
            copt.zero_grad()
            closs.backward()
            copt.step()
            adv = (r_a - v.detach()[:, None]).detach()
            # actor
            if cfg.estimator == "sampled":
                pg = -(logp.gather(1, actions) * adv).mean()
            else:  # all-actions: every item of the set, weighted by its probability
                all_adv = (rewards - v.detach()[:, None]).detach()
                pg = -(logp.detach().exp() * logp * all_adv).sum(1).mean()
            kl = self._kl(logp, logp0).mean()
            # divided by (1 + β): the gradient's scale stays put while β moves over orders of magnitude,
            # so Adam's running moments do not lock the actor after a high-β phase
            loss = (cfg.loss_weight * pg + beta * kl) / (1.0 + beta)
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            if not opts:
                opts = _optimizers(params, cfg.lr)
            for o in opts:
                o.step()
            kl_v = float(kl.detach())
            # proportional controller (Ziegler et al. 2019): smooth, so Adam is not whipsawed by β
            err = min(max(kl_v / target - 1.0, -0.2), 0.2)
            beta = min(max(beta * (1.0 + cfg.kl_rate * err), 1e-3), 1e4)
            history.append(
                {
                    "step": float(step),
                    "kl": kl_v,
                    "beta": beta,
                    "expected_reward": float((logp.detach().exp() * rewards).sum(1).mean()),
                    "critic_mse": float(closs.detach()),
                }
            )
        # final check on fresh sets, pull back towards the frozen model if over the bound
        items, ctx = self._draw(cfg.eval_sets, np.random.default_rng(self.seed + 1))
        with torch.no_grad():
            logp0 = self._log_probs(frozen, items, ctx)
            rewards = self._rewards(frozen, items, ctx)
            theta1 = [p.detach().clone() for p in params]
            kl_now = float(self._kl(self._log_probs(model, items, ctx), logp0).mean())
            alpha = 1.0
            if kl_now > cfg.kl_bound:
                lo, hi = 0.0, 1.0
                for _ in range(20):
                    mid = 0.5 * (lo + hi)
                    _interpolate(params, theta0, theta1, mid)
                    if float(self._kl(self._log_probs(model, items, ctx), logp0).mean()) <= cfg.kl_bound:
                        lo = mid
                    else:
                        hi = mid
                alpha = lo
                _interpolate(params, theta0, theta1, alpha)
            logp = self._log_probs(model, items, ctx)
            report = AlignmentReport(
                kl=float(self._kl(logp, logp0).mean()),
                kl_bound=cfg.kl_bound,
                mean_c_topk_frozen=self._topk_c(logp0, items),
                mean_c_topk_aligned=self._topk_c(logp, items),
                expected_reward_frozen=float((logp0.exp() * rewards).sum(1).mean()),
                expected_reward_aligned=float((logp.exp() * rewards).sum(1).mean()),
                kl_coef=beta,
                pullback_alpha=alpha,
                steps=cfg.steps,
                history=history,
            )
        model.train(was_training)
        return report


def _optimizers(params: list[Tensor], lr: float) -> list[torch.optim.Optimizer]:
    """Adam for dense gradients, SparseAdam for sparse ones (e.g. the ranker's sparse id embeddings)."""
    sparse = [p for p in params if p.grad is not None and p.grad.is_sparse]
    dense = [p for p in params if not (p.grad is not None and p.grad.is_sparse)]
    opts: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=lr)] if dense else []
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=lr))
    return opts


def _interpolate(params: list[Tensor], theta0: list[Tensor], theta1: list[Tensor], alpha: float) -> None:
    for p, a, b in zip(params, theta0, theta1, strict=True):
        p.copy_(a + alpha * (b - a))
