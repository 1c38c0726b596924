"""The A/B harness: named arms randomised in one closed loop, every arm compared with control.

An experiment (``experiment.abtest`` of the config; docs/experiments.md) is a list of named arms. A
learned arm is a *recipe* — training target (raw clicks or downstream signals), ranker overrides
(architecture, features), mitigation methods by name, ranking formula — and a reference arm is a policy
of the simulator's registry (``truth_formula``, ``ctr_oracle``), optionally post-processed.

1. **Plan** (:func:`plan_experiment`, before anything runs): names, shares, recipes and references
   checked; an A/A copy of control added; the expected minimum detectable effect of the smallest arm
   estimated, with a warning when it is too large for any power.
2. **Pre-period.** The living world's users browse for ``log_days`` under the uniformly random policy:
   the log every learned arm first trains on, and each user's pre-period behaviour (CUPED covariates;
   the treatment cannot have changed it: users are assigned afterwards and the log is policy-blind).
3. **Loop** (:func:`intentrank.simulator.loop.run_loop`): users go to arms by a stable hash of
   (experiment name, user id); all arms run on the same days; each arm's model learns from its own
   traffic after every ``update_every`` windows (``learner: own``), from all traffic (``shared``) or not
   at all (``frozen``). RL alignment runs on a copy of its arm's freshly updated model after every
   ``rl_every`` updates and the aligned copy is served (the learner keeps training the unaligned
   weights, so each alignment is KL-bounded to the current model, not to the previous aligned one).
4. **Compare** with :mod:`intentrank.stats`: every arm vs control per user (relative change, 95 % CI,
   Welch p; delta method for ratios; CUPED on the pre-period; Holm or BH over metrics × arms), an SRM
   check against the designed shares, the MDE per metric, and the false-positive rate of ``K`` random
   re-splits of the control and A/A users (an A/A calibration on the experiment's own data).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from tqdm.auto import tqdm

from intentrank.config import IntentRankConfig
from intentrank.errors import ConfigError
from intentrank.experiments.config import ABTestConfig, ArmConfig
from intentrank.mitigation.config import RLAlignmentMethod
from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.mitigation.ranker_adapter import CONTEXT_COLUMNS
from intentrank.mitigation.validation import describe_validation_error
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import UserHistory, add_history_columns
from intentrank.ranking.trainer import Trainer
from intentrank.runtime import torch_threads
from intentrank.serving.incremental import IncrementalTrainer, ModelSlot, UpdateReport
from intentrank.serving.policy import Policy
from intentrank.serving.postprocess import PenalizedPolicy
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.catalogue import Catalogue, build_catalogue
from intentrank.simulator.engine import Simulator
from intentrank.simulator.living import living_catalogue
from intentrank.simulator.loop import LoopResult, run_loop
from intentrank.simulator.registry import default_registry, get_policy
from intentrank.simulator.sinks import StoreSink
from intentrank.simulator.world import World
from intentrank.stats import compare_experiment, srm_check
from intentrank.stats.compare import aggregates, compare_metric, metric_specs
from intentrank.store import EventStore

#: The experiment's metrics (results.json names), in report order.
METRICS: tuple[str, ...] = (
    "impressions_non_cb",
    "impressions_light_cb",
    "impressions_heavy_cb",
    "ctr",
    "clicks",
    "time_spent",
    "bounce_rate",
    "conversions",
    "return_rate",
)
#: Ratio metrics: (numerator, denominator) per-user columns (delta method).
RATIOS: dict[str, tuple[str, str]] = {"ctr": ("clicks", "impressions"), "bounce_rate": ("bounces", "clicks")}
#: Per-user means.
MEANS: tuple[str, ...] = tuple(m for m in METRICS if m not in RATIOS)
#: CUPED covariates from the pre-period (the same behaviour under the random logging policy). The
#: return rate has none: a one-day pre-period has no return.
COVARIATES: dict[str, str | tuple[str, str]] = {
    "impressions_non_cb": "pre_impressions_non_cb",
    "impressions_light_cb": "pre_impressions_light_cb",
    "impressions_heavy_cb": "pre_impressions_heavy_cb",
    "clicks": "pre_clicks",
    "time_spent": "pre_time_spent",
    "conversions": "pre_conversions",
    "ctr": ("pre_clicks", "pre_impressions"),
    "bounce_rate": ("pre_bounces", "pre_clicks"),
}
#: KPI-frame columns renamed to the experiment's metric names.
_RENAME = {
    "impressions_non": "impressions_non_cb",
    "impressions_light": "impressions_light_cb",
    "impressions_heavy": "impressions_heavy_cb",
    "time_spent_s": "time_spent",
}
#: Per-user coefficient of variation of clicks assumed by the MDE warning (measured: 0.89 in the
#: production arm of configs/paper_comparison.yaml, 2 days of the loop; docs/experiments.md).
CLICKS_CV = 0.9
#: Labels of the two training targets.
TARGET_LABELS: dict[str, dict[str, Any]] = {
    "multitask": {},
    "click": {"click_target": "click", "conversion_weight": 0.0, "long_click_weight": 0.0},
    "downstream": {"click_target": "long_click", "conversion_weight": 1.0},
}


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- planning ---------------------------------------------------------------------------------------
@dataclass
class PlannedArm:
    """An arm as it will run: its config, its traffic share and (learned arms) its ranker config."""

    config: ArmConfig
    share: float
    ranker: RankerConfig | None = None
    plan: MitigationPlan | None = None
    copy_of: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def learned(self) -> bool:
        return self.config.policy is None

    def recipe_key(self) -> str:
        """Arms with the same key train the same initial model (the A/A copy, post-processing variants)."""
        assert self.plan is not None
        train_side = [
            m.model_dump() for m in self.plan.config.methods if m.method not in ("heuristic", "rl_alignment")
        ]  # type: ignore[attr-defined]
        return json.dumps(
            {"target": self.config.target, "ranker": self.config.ranker, "methods": train_side},
            sort_keys=True,
        )


@dataclass
class ExperimentPlan:
    """The checked experiment: arms in order (control first), shares, warnings."""

    config: ABTestConfig
    arms: list[PlannedArm]
    warnings: list[str] = field(default_factory=list)
    expected_mde: float = float("nan")

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.arms]

    @property
    def shares(self) -> np.ndarray:
        return np.array([a.share for a in self.arms])

    @property
    def aa_name(self) -> str | None:
        return next((a.name for a in self.arms if a.copy_of is not None), None)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def arm_ranker_config(base: RankerConfig, arm: ArmConfig, where: str) -> RankerConfig:
    """The learned arm's ranker config: ``base`` with the arm's overrides, target labels and formula."""
    data = _deep_merge(base.model_dump(), arm.ranker)
    data["labels"] = {**data["labels"], **TARGET_LABELS[arm.target]}
    if arm.formula is not None:
        data["formula"] = arm.formula.model_dump()
    try:
        return RankerConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, f"{where}.ranker")) from None


def expected_mde(n_users: float, cv: float = CLICKS_CV, alpha: float = 0.05, power: float = 0.8) -> float:
    """Relative MDE of a per-user mean with coefficient of variation ``cv`` between two arms of
    ``n_users`` each: ``(z_{1-α/2} + z_power) · cv · sqrt(2 / n)`` (normal approximation)."""
    from scipy import stats

    if n_users < 2:
        return float("inf")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * cv * math.sqrt(2.0 / n_users))


def plan_experiment(cfg: IntentRankConfig) -> ExperimentPlan:
    """Check ``cfg.experiment.abtest`` before anything runs; ConfigError on a bad config, warnings in
    the plan (also issued as :class:`UserWarning`) where it would run but say little."""
    ab = cfg.experiment.abtest
    where = "experiment.abtest"
    if not ab.arms:
        raise ConfigError(f"{where}.arms: no arms (give at least the control '{ab.control}' and one more)")
    registry = default_registry()
    arms = list(ab.arms)
    ctrl = next(a for a in arms if a.name == ab.control)
    copy_of: dict[str, str] = {}
    if ab.aa:
        aa = ctrl.model_copy(update={"name": f"{ab.control}_aa"})
        arms.insert(arms.index(ctrl) + 1, aa)
        copy_of[aa.name] = ctrl.name
    arms.sort(key=lambda a: a.name != ab.control)  # control first, the rest in config order
    given = sum(a.share for a in arms if a.share is not None)
    free = [a for a in arms if a.share is None]
    rest = (1.0 - given) / len(free) if free else 0.0
    planned: list[PlannedArm] = []
    for i, a in enumerate(ab.arms):
        if a.policy is not None and a.policy not in registry:
            raise ConfigError(
                f"{where}.arms.{i}.policy: unknown policy {a.policy!r} for arm {a.name!r}; "
                f"known: {', '.join(registry.names())}"
            )
    for a in arms:
        idx = next((i for i, x in enumerate(ab.arms) if x.name == copy_of.get(a.name, a.name)), 0)
        p = PlannedArm(a, a.share if a.share is not None else rest, copy_of=copy_of.get(a.name))
        if p.learned:
            p.ranker = arm_ranker_config(cfg.ranker, a, f"{where}.arms.{idx}")
            p.plan = MitigationPlan(a.mitigation)
            try:
                p.ranker = p.plan.ranker_config(p.ranker)
            except ConfigError as err:
                raise ConfigError(f"{where}.arms.{idx} ({a.name}): {err}") from None
        else:
            try:
                registry.create(a.policy, **a.params)  # type: ignore[arg-type]
            except ConfigError as err:
                raise ConfigError(f"{where}.arms.{idx} ({a.name}): {err}") from None
        planned.append(p)
    sim = cfg.simulator
    if sim.candidates > ab.live_items:
        raise ConfigError(
            f"simulator.candidates ({sim.candidates}) exceeds {where}.live_items ({ab.live_items})"
        )
    plan = ExperimentPlan(ab, planned)
    smallest = min(planned, key=lambda p: p.share)
    n_min = ab.users * smallest.share
    if n_min < 2:
        raise ConfigError(
            f"{where}.users: {ab.users:,} users give arm {smallest.name!r} ({smallest.share:.1%}) "
            f"{n_min:.1f} expected users; a comparison needs at least 2 per arm"
        )
    plan.expected_mde = expected_mde(n_min, alpha=ab.alpha)
    if plan.expected_mde > ab.mde_warn:
        plan.warnings.append(
            f"{where}.users: too few users for any power: arm {smallest.name!r} expects {n_min:,.0f} users, "
            f"so only a change of clicks per user of about ±{plan.expected_mde:.0%} or more is detectable "
            f"(80% power, alpha {ab.alpha}; mde_warn {ab.mde_warn:.0%})"
        )
    rl_arms = [p.name for p in planned if p.plan is not None and p.plan.config.get("rl_alignment")]
    if rl_arms and any(a.learner == "frozen" for a in arms if a.name in rl_arms):
        plan.warnings.append(f"{where}: frozen RL arms {rl_arms} are aligned once, before the loop")
    for w in plan.warnings:
        warnings.warn(w, UserWarning, stacklevel=2)
    return plan


def assign_users(user_ids: np.ndarray, experiment: str, shares: np.ndarray) -> np.ndarray:
    """Arm index of each user: a SplitMix64 hash of (user id, CRC32 of the experiment name) mapped to
    [0, 1) and cut at the cumulative shares — stable across runs, independent between experiments."""
    salt = np.uint64(zlib.crc32(experiment.encode("utf-8")))
    with np.errstate(over="ignore"):
        z = user_ids.astype(np.uint64) + (salt + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    cuts = np.cumsum(shares)[:-1]
    return np.searchsorted(cuts, u, side="right").astype(np.int16)


# -- learners ---------------------------------------------------------------------------------------
class _MitigatedTrainer(Trainer):
    """A Trainer whose every ``fit`` (the first and each online update) carries its mitigation hooks
    (aux loss, row down-weighting, adversarial head); the hooks are built once per model object."""

    def __init__(self, plan: MitigationPlan, config: RankerConfig, **kwargs: Any) -> None:
        super().__init__(config, model_factory=plan.build_model, **kwargs)
        self.mitigation = plan
        self._hooks: tuple[int, dict[str, Any]] | None = None

    def _hooks_for(self, model: Any) -> dict[str, Any]:
        if self._hooks is None or self._hooks[0] != id(model):
            self._hooks = (id(model), self.mitigation.trainer_hooks(model).as_kwargs())
        return self._hooks[1]

    def fit(self, events: Any, items: Any = None, **kwargs: Any) -> Trainer:  # type: ignore[override]
        kwargs.setdefault("hooks_for", self._hooks_for)
        return super().fit(events, items, **kwargs)


class AligningLearner:
    """An arm's online learner followed by RL alignment: after every ``every`` updates of the inner
    learner, a copy of its model is aligned (contexts: its recent rows) and published to the served slot.

    The inner learner publishes to its own slot and keeps training the unaligned weights."""

    def __init__(
        self,
        inner: IncrementalTrainer,
        plan: MitigationPlan,
        serve: ModelSlot,
        items: pd.DataFrame,
        every: int = 1,
        seed: int = 0,
    ) -> None:
        self.inner, self.plan, self.serve, self.items = inner, plan, serve, items
        self.every, self.seed = int(every), int(seed)
        self.updates = 0
        self._seen = len(getattr(inner, "reports", []))  # inner updates already accounted for
        self.alignments: list[dict[str, Any]] = []
        self.align_seconds = 0.0

    def align_and_publish(self, contexts: pd.DataFrame) -> None:
        """Align a copy of the inner model on ``contexts`` and serve it."""
        t0 = time.perf_counter()
        model = copy.deepcopy(self.inner.trainer.model_)
        history = UserHistory(self.inner.trainer.config_.labels.long_click_threshold_s)
        if self.inner.history is not None:
            history = self.inner.history
        rep = self.plan.align(
            model, self.items, contexts[list(CONTEXT_COLUMNS)].drop_duplicates(["user_id", "slate_index"]),
            self.inner.trainer.formula, seed=self.seed + len(self.alignments), history=history,
        )  # fmt: skip
        model.eval()
        self.serve.swap(model)
        self.alignments.append(rep.as_dict() if rep is not None else {})
        self.align_seconds += time.perf_counter() - t0

    def update(self, store: Any, batch: Any = None) -> UpdateReport | None:
        """Update the inner learner, then align after every ``every``-th of its updates. Its updates are
        counted from its reports, so a learner shared with other arms (``learner: shared``), which another
        arm's call may have just updated, still triggers the alignment."""
        rep = self.inner.update(store, batch)
        fresh = len(self.inner.reports) - self._seen
        self._seen = len(self.inner.reports)
        if fresh <= 0:
            return None
        self.updates += fresh
        if self.updates // self.every > (self.updates - fresh) // self.every:
            recent = self.inner.last_contexts  # the contexts of the rows it just learned from
            if recent is not None and len(recent):
                self.align_and_publish(recent)
        return rep if rep is not None else self.inner.reports[-1]


# -- results ----------------------------------------------------------------------------------------
@dataclass
class ABTestResult:
    """Everything the harness measured; :meth:`to_json` is ``results.json``."""

    plan: ExperimentPlan
    per_user: pd.DataFrame
    comparisons: pd.DataFrame
    levels: dict[str, dict[str, float]]
    srm_p_value: float
    per_day: pd.DataFrame
    calibration: pd.DataFrame
    updates: dict[str, int]
    seconds: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"arms": {ARM: {METRIC: value}}, "comparisons": [...], "srm_p_value": p}`` (NaN → null)."""
        rows = []
        for r in self.comparisons.itertuples(index=False):
            rows.append(
                {
                    "arm": r.arm,
                    "metric": r.metric,
                    "control": _num(r.control),
                    "treatment": _num(r.treatment),
                    "rel_change": _num(r.rel_value),
                    "ci_low": _num(r.rel_ci_low),
                    "ci_high": _num(r.rel_ci_high),
                    "p_value": _num(r.rel_p_value),
                    "p_adjusted": _num(r.p_adjusted),
                }
            )
        return {
            "arms": {a: {m: _num(ms[m]) for m in METRICS} for a, ms in self.levels.items()},
            "comparisons": rows,
            "srm_p_value": _num(self.srm_p_value),
        }

    def write(self, out: str | Path, pareto: Any = None, ope: Any = None) -> dict[str, Path]:
        """Write ``results.json``, ``report.html`` and the tables (per-user, comparisons, per-day, A/A)."""
        from intentrank.experiments.report import write_report

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"results": out / "results.json", "report": out / "report.html"}
        paths["results"].write_text(json.dumps(self.to_json(), indent=2, allow_nan=False), encoding="utf-8")
        self.per_user.to_parquet(out / "per_user.parquet", index=False)
        self.comparisons.to_csv(out / "comparisons.csv", index=False)
        self.per_day.to_csv(out / "per_day.csv", index=False)
        self.calibration.to_csv(out / "aa_calibration.csv", index=False)
        write_report(self, paths["report"], pareto=pareto, ope=ope)
        return paths


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def metric_frame(kpis: pd.DataFrame, pre: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-user table with the experiment's metric names (and the pre-period's ``pre_*`` columns)."""
    df = kpis.rename(columns=_RENAME)
    if pre is not None:
        p = pre.rename(columns=_RENAME)
        cols = ["impressions", "clicks", "bounces", "time_spent", "conversions",
                "impressions_non_cb", "impressions_light_cb", "impressions_heavy_cb"]  # fmt: skip
        df = df.merge(p[["user_id", *cols]].rename(columns={c: f"pre_{c}" for c in cols}), on="user_id")
    return df


def arm_levels(per_user: pd.DataFrame, arms: list[str]) -> dict[str, dict[str, float]]:
    """Per arm, every metric's level: Σnum/Σden for ratios, the per-user mean otherwise."""
    out: dict[str, dict[str, float]] = {}
    for arm in arms:
        f = per_user[per_user["arm"] == arm]
        row: dict[str, float] = {}
        for m in METRICS:
            if m in RATIOS:
                num, den = RATIOS[m]
                d = float(f[den].sum())
                row[m] = float(f[num].sum()) / d if d else float("nan")
            else:
                row[m] = float(f[m].mean()) if len(f) else float("nan")
        row["users"] = float(len(f))
        out[arm] = row
    return out


def per_day_table(result: LoopResult, days: range, arms: list[str]) -> pd.DataFrame:
    """One row per (day, arm): the metrics' levels on that day (the loop's per-day curves)."""
    rows = []
    for d in days:
        frame = metric_frame(result.day_frame(d))
        for arm, lv in arm_levels(frame, arms).items():
            f = frame[frame["arm"] == arm]
            imp = float(f["impressions"].sum())
            heavy = float(f["impressions_heavy_cb"].sum()) / imp if imp else float("nan")
            rows.append({"day": d, "arm": arm, **lv, "heavy_share": heavy})
    return pd.DataFrame(rows)


def aa_calibration(
    per_user: pd.DataFrame,
    arms: list[str],
    splits: int,
    alpha: float = 0.05,
    covariates: dict[str, Any] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """False-positive rate per metric over ``splits`` random re-splits of the users of ``arms`` (control
    and its A/A copy: the same policy) into two halves, at level ``alpha``; with CUPED where given."""
    cols = ["metric", "splits", "false_positive_rate", "se"]
    users = per_user[per_user["arm"].isin(arms)]
    if splits < 1 or len(users) < 8:
        return pd.DataFrame(columns=cols)
    specs = metric_specs(MEANS, RATIOS, covariates)
    used = list(dict.fromkeys(c for s in specs for c in s.columns))
    values = users[used].to_numpy(np.float64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xAA]))
    reject = np.zeros(len(specs))
    counted = np.zeros(len(specs))
    n = len(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(splits):
            half = rng.permutation(n) < n // 2
            a, b = aggregates(values[half], used), aggregates(values[~half], used)
            for i, s in enumerate(specs):
                p = compare_metric(s, a, b, alpha).rel.p_value
                if np.isfinite(p):
                    counted[i] += 1
                    reject[i] += p < alpha
    fpr = np.divide(reject, counted, out=np.full(len(specs), np.nan), where=counted > 0)
    se = np.sqrt(alpha * (1 - alpha) / np.maximum(counted, 1))
    return pd.DataFrame(
        {
            "metric": [s.name for s in specs],
            "splits": counted.astype(int),
            "false_positive_rate": fpr,
            "se": se,
        }
    )


# -- running ----------------------------------------------------------------------------------------
def _online(config: RankerConfig, epochs: int) -> RankerConfig:
    return config.model_copy(
        update={
            "train": config.train.model_copy(
                update={"epochs": epochs, "valid_fraction": 0.0, "progress": False}
            )
        }
    )


def _build_policies(
    plan: ExperimentPlan,
    cfg: IntentRankConfig,
    log: pd.DataFrame,
    items: pd.DataFrame,
    watermark: int,
    history_log: pd.DataFrame,
    say: Callable[[str], None],
) -> tuple[dict[str, Policy], dict[str, Any], dict[str, Any]]:
    """Policies and learners per arm (initial models trained once per recipe on the log)."""
    ab = plan.config
    policies: dict[str, Policy] = {}
    learners: dict[str, Any] = {}
    info: dict[str, Any] = {"initial": {}}
    trained: dict[str, Trainer] = {}
    serving_history = UserHistory(cfg.ranker.labels.long_click_threshold_s).update(history_log)
    serving_history.watermark = watermark
    shared: dict[str, Any] = {}

    def learner_history() -> UserHistory:
        h = UserHistory(cfg.ranker.labels.long_click_threshold_s).update(history_log)
        h.watermark = watermark
        return h

    for p in plan.arms:
        a = p.config
        if not p.learned:
            pol = get_policy(a.policy, **a.params)  # type: ignore[arg-type]
            mit = MitigationPlan(a.mitigation)
            penalty = mit.penalty()
            policies[a.name] = PenalizedPolicy(pol, penalty, name=a.name) if penalty is not None else pol
            policies[a.name].name = a.name
            continue
        assert p.ranker is not None and p.plan is not None
        key = p.recipe_key()
        if key not in trained:
            t0 = time.perf_counter()
            first = p.ranker.model_copy(
                update={
                    "train": p.ranker.train.model_copy(
                        update={"epochs": ab.initial_epochs, "progress": False}
                    )
                }
            )
            tr = _MitigatedTrainer(p.plan, first)
            tr.fit(add_history_columns(log, first.features, first.labels.long_click_threshold_s), items)
            trained[key] = tr
            info["initial"][a.name] = {
                "seconds": round(time.perf_counter() - t0, 1),
                "valid_click_auc": tr.fit_report_.get("valid", {}).get("click", {}).get("auc"),
            }
            say(f"      trained the initial model of {a.name} ({info['initial'][a.name]['seconds']} s)")
        tr = copy.deepcopy(trained[key])
        tr.mitigation = p.plan  # the arm's own plan (same training side, its own serving/alignment)
        tr._hooks = None
        tr.config = _online(tr.config_, ab.online_epochs)
        slot = ModelSlot(copy.deepcopy(tr.model_))
        formula = RankingFormula.from_config(p.ranker.formula)
        policies[a.name] = RankerPolicy(
            slot,
            formula=formula,
            post_processors=p.plan.post_processors(),
            name=a.name,
            history=serving_history,
        )
        rl = p.plan.config.get("rl_alignment")
        if rl is not None and ab.rl_steps is not None:
            methods = [m if m.method != "rl_alignment" else RLAlignmentMethod(**{**m.model_dump(), "steps": ab.rl_steps})  # type: ignore[attr-defined]  # noqa: E501
                       for m in p.plan.config.methods]  # fmt: skip
            p.plan = MitigationPlan(methods)
        if a.learner == "shared":
            if key not in shared:
                # an RL arm serves its aligned copy from its own slot: the shared model gets another one
                shared[key] = IncrementalTrainer(
                    tr, slot=ModelSlot(copy.deepcopy(tr.model_)) if rl is not None else slot, items=items,
                    arm=None, replay_events=ab.replay_events, watermark=watermark, history=learner_history(),
                )  # fmt: skip
                inner = shared[key]
            else:
                inner = shared[key]
            if rl is None and inner.slot is not slot:  # serve the shared model
                policies[a.name] = RankerPolicy(
                    inner.slot, formula=formula, post_processors=p.plan.post_processors(), name=a.name,
                    history=serving_history,
                )  # fmt: skip
        elif a.learner == "own":
            inner = IncrementalTrainer(
                tr, slot=ModelSlot(copy.deepcopy(tr.model_)) if rl is not None else slot, items=items,
                arm=a.name, replay_events=ab.replay_events, watermark=watermark, history=learner_history(),
            )  # fmt: skip
        else:
            inner = None
        if rl is not None:
            t0 = time.perf_counter()
            aligner = AligningLearner(
                inner or IncrementalTrainer(tr, items=items, watermark=watermark, history=learner_history()),
                p.plan, slot, items, every=ab.rl_every, seed=cfg.seed,
            )  # fmt: skip
            aligner.align_and_publish(log)  # the first served model is aligned too
            say(f"      aligned the initial model of {a.name} ({time.perf_counter() - t0:.1f} s)")
            if inner is not None:
                learners[a.name] = aligner
            info.setdefault("aligners", {})[a.name] = aligner
        elif inner is not None:
            learners[a.name] = inner
    return policies, learners, info


def run_abtest(
    cfg: IntentRankConfig,
    out_dir: str | Path | None = None,
    pool: Catalogue | None = None,
    plan: ExperimentPlan | None = None,
    progress: bool = True,
) -> ABTestResult:
    """Run the experiment ``cfg.experiment.abtest`` (see the module docstring). ``pool``: the headline
    pool of the living world (default: the shipped headlines scored by the clickbait model, cached);
    ``out_dir`` keeps the event store there (default: a temporary one)."""
    plan = plan or plan_experiment(cfg)
    with torch_threads(cfg.ranker.train.threads):
        return _run(cfg, plan, out_dir, pool, progress)


def _run(
    cfg: IntentRankConfig,
    plan: ExperimentPlan,
    out_dir: str | Path | None,
    pool: Catalogue | None,
    progress: bool,
) -> ABTestResult:
    ab = plan.config
    say = _say if progress else (lambda _m: None)
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    living = cfg.simulator.living.model_copy(
        update={"enabled": True, "window_min": ab.window_min, "live_items": ab.live_items}
    )
    sim_cfg = cfg.simulator.model_copy(update={"users": ab.users, "days": ab.days, "living": living})
    t0 = time.perf_counter()
    if pool is None:
        pool = build_catalogue(config=sim_cfg.catalogue, seed=cfg.seed, clickbait=cfg.clickbait)
    cat = living_catalogue(pool, living, days=ab.log_days + ab.days, seed=cfg.seed)
    world = World.create(cat, sim_cfg, seed=cfg.seed)
    seconds["world"] = time.perf_counter() - t0
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="abtest-")
        store_path = Path(tmp.name) / "events.duckdb"
    else:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        store_path = Path(out_dir) / "events.duckdb"
    try:
        with EventStore(store_path) as store:
            store.write_items(cat.items)
            t0 = time.perf_counter()
            say(f"[1/4] pre-period: {ab.users:,} users x {ab.log_days} day(s) under the random policy")
            with store.begin_run(
                seed=cfg.seed, policy="random", command="abtest log", shared_users=True, on_existing="append"
            ) as run:
                pre_sim = Simulator(world, get_policy("random"), seed=cfg.seed)
                pre_kpis = pre_sim.run(StoreSink(run), days=ab.log_days)
            log = load_events(store, runs=[run.run_id])
            train_log = log
            if ab.initial_users is not None and ab.initial_users < ab.users:
                rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x1A1]))
                keep = rng.choice(ab.users, ab.initial_users, replace=False)
                train_log = log[log["user_id"].isin(keep)].reset_index(drop=True)
            watermark = int(store.watermark())
            pre = pre_kpis.frame()
            seconds["pre_period"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            say(f"[2/4] initial models on {len(train_log):,} logged impressions")
            policies, learners, info = _build_policies(plan, cfg, train_log, cat.items, watermark, log, say)
            seconds["initial_training"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            assignment = assign_users(np.arange(ab.users, dtype=np.int64), ab.name, plan.shares)
            n_windows = math.ceil(17 * 60 / ab.window_min) * ab.days
            bar = tqdm(total=n_windows, desc="[3/4] loop windows", disable=not progress, file=sys.stderr)
            say(f"[3/4] loop: {ab.days} day(s), {len(plan.arms)} arms: {', '.join(plan.names)}")
            res = run_loop(
                world, policies, store, learners, seed=cfg.seed + 1, update_every=ab.update_every,
                arms=assignment, days=ab.days, first_day=ab.log_days, on_window=lambda _w: bar.update(1),
            )  # fmt: skip
            bar.close()
            seconds["loop"] = time.perf_counter() - t0
            seconds.update({f"loop_{k}": v for k, v in res.seconds.items() if k != "total"})
    finally:
        if tmp is not None:
            tmp.cleanup()

    t0 = time.perf_counter()
    say("[4/4] comparing arms")
    per_user = metric_frame(res.per_user(), pre if ab.cuped else None)
    names = plan.names
    covariates = COVARIATES if ab.cuped else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = compare_experiment(
            per_user, "arm", ab.control, treatments=names[1:], means=MEANS, ratios=RATIOS, alpha=ab.alpha,
            covariates=covariates, correction=ab.correction,
        )  # fmt: skip
    counts = per_user["arm"].value_counts()
    srm = srm_check([int(counts.get(a, 0)) for a in names], list(plan.shares))
    per_day = per_day_table(res, range(ab.log_days, ab.log_days + ab.days), names)
    aa_arms = [ab.control] + ([plan.aa_name] if plan.aa_name else [])
    calib = aa_calibration(per_user, aa_arms, ab.calibration_splits, ab.alpha, covariates, seed=cfg.seed)
    seconds["analysis"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_all
    aligners = info.pop("aligners", {})
    extra = {
        "initial": info["initial"],
        "alignments": {a: len(al.alignments) for a, al in aligners.items()},
        "align_seconds": {a: round(al.align_seconds, 1) for a, al in aligners.items()},
        "shares": dict(zip(names, plan.shares.tolist(), strict=True)),
        "warnings": plan.warnings,
        "expected_mde_clicks": plan.expected_mde,
        "settings": ab.model_dump(mode="json", exclude={"arms"}),
        "arms": [
            p.config.model_dump(mode="json", exclude_defaults=True) | {"name": p.name} for p in plan.arms
        ],
    }
    return ABTestResult(
        plan=plan,
        per_user=per_user,
        comparisons=table,
        levels=arm_levels(per_user, names),
        srm_p_value=float(srm.p_value),
        per_day=per_day,
        calibration=calib,
        updates={a: len(r) for a, r in res.updates.items()},
        seconds={k: round(v, 1) for k, v in seconds.items()},
        extra=extra,
    )


def format_table(result: ABTestResult) -> str:
    """Plain-text KPI table: per arm and metric, the relative change vs control with its 95 % CI and the
    adjusted p-value (``*``: significant after the correction)."""
    lines = [f"{'arm':<24}{'metric':<22}{'control':>11}{'arm':>11}{'change':>9}  {'95% CI':<19}{'p adj':>8}"]
    for r in result.comparisons.itertuples(index=False):
        ci = (
            f"[{r.rel_ci_low:+.1%}, {r.rel_ci_high:+.1%}]"
            if np.isfinite(r.rel_ci_low)
            else "n/a (" + (str(r.note)[:40] if isinstance(r.note, str) else "") + ")"
        )
        star = "*" if bool(r.significant_adjusted) else " "
        lines.append(
            f"{r.arm:<24}{r.metric:<22}{r.control:>11.4g}{r.treatment:>11.4g}{r.rel_value:>+9.1%}  {ci:<19}"
            f"{r.p_adjusted:>8.2g}{star}"
        )
    lines.append(f"SRM p = {result.srm_p_value:.3g}")
    return "\n".join(lines)
