"""Trade-off tuning of a mitigation method: the Pareto frontier, a constrained pick, a confirmation A/B.

A mitigation trades clicks for less clickbait (and, when it works, more conversions). Which setting of
its knobs to ship is a business decision over three numbers, so the tuner lays the trade-off out:

1. **Baseline.** The production ranker (``ranker`` config, no mitigation) is trained on a random log of
   ``tuner.log_users`` users, then served with the ranking formula to a tuning cohort of ``tuner.users``
   users for ``tuner.days`` days: the reference values of every metric.
2. **Search.** optuna's multi-objective TPE sampler proposes the method's knobs (``tuner.space``, default
   :data:`~intentrank.experiments.config.TUNER_SPACES`); each trial serves the mitigated ranker to the
   *same* cohort with the *same* simulator seed as the baseline (common random numbers: the comparison
   sees the method, not a new draw of users) and records, per user, heavy-clickbait impressions
   (minimise), clicks and conversions (maximise). Serving-only methods (heuristic) reuse the baseline
   model; training methods (aux loss, down-weighting) retrain it; RL alignment re-aligns a copy.
3. **Frontier and pick.** ``study.best_trials`` is the Pareto frontier. A trial is *feasible* when every
   ``tuner.constraint`` term holds for its relative change vs the baseline on the cohort
   (``heavy_cb<=-50%,clicks>=-2%``). Picking the best of many noisy estimates overrates it (the winner's
   curse), so by default (``pick_by: ci``) a trial is *eligible* only when every term holds at its
   one-sided ``pick_confidence`` (0.9) bound, paired with the baseline (:func:`paired_relative`: the same
   users served by both, so the interval is of the per-user differences). The ``holdout_candidates`` eligible
   trials with the most conversions (then clicks) are re-served, with the baseline, to a *holdout* cohort
   (``holdout_users`` new users, another seed); the pick is the one that is still eligible there with the
   most holdout conversions (then clicks). ``pick_by: point`` and ``holdout_users: 0`` give the plain
   rule (the feasible trial with the most conversions).
4. **Confirmation.** The pick is tested against the baseline in a fresh A/B (new users, another seed, users
   randomised between the two arms) with :func:`intentrank.simulator.ab.compare_kpis`: relative change and
   95 % CI per metric. The constraint is *confirmed* when every term holds on the point estimate and its
   CI excludes a violation by more than ``confirm_margin`` (``clicks>=-8%`` with a margin of 2 points: the
   point estimate ≥ −8 % and the CI's low end ≥ −10 %); the strict reading (the whole CI inside the bound)
   and the point-only reading are reported beside it. Tuning on one cohort and confirming on another is
   what keeps the pick honest: the cohort's noise was optimised over, the fresh users' was not.

References:
    Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019.
    Ozaki et al., "Multiobjective tree-structured Parzen estimator", JAIR 2022.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intentrank.config import IntentRankConfig
from intentrank.errors import ConfigError, IntentRankError
from intentrank.experiments.config import ConstraintTerm, TunerConfig, parse_constraint
from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.ranking.events import load_events
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import UserHistory, add_history_columns
from intentrank.ranking.trainer import Trainer
from intentrank.serving.policy import Policy
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.ab import compare_kpis, simulate
from intentrank.simulator.catalogue import Catalogue, build_catalogue
from intentrank.simulator.kpis import RATIO_KPIS, summarise
from intentrank.simulator.sinks import CollectSink, HistorySink
from intentrank.store import config_hash

#: The three objectives: metric name -> optuna direction.
OBJECTIVES: dict[str, str] = {"heavy_cb": "minimize", "clicks": "maximize", "conversions": "maximize"}
#: Tuner metric -> (column of compare_kpis, key of summarise).
_METRIC_KEYS: dict[str, tuple[str, str]] = {
    "heavy_cb": ("impressions_heavy", "impressions_heavy_per_user"),
    "clicks": ("clicks", "clicks_per_user"),
    "conversions": ("conversions", "conversions_per_user"),
    "time_spent": ("time_spent_s", "time_spent_s_per_user"),
    "ctr": ("ctr", "ctr"),
    "bounce_rate": ("bounce_rate", "bounce_rate"),
}


def metrics_of(per_user: pd.DataFrame) -> dict[str, float]:
    """The tuner's metrics of a per-user KPI table (per-user means; ctr and bounce rate as ratios)."""
    s = summarise(per_user)
    return {m: float(s[key]) for m, (_, key) in _METRIC_KEYS.items()}


def relative(values: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Relative change of each metric vs the baseline (NaN where the baseline is 0)."""
    return {m: (v / base[m] - 1.0) if base[m] else float("nan") for m, v in values.items()}


def paired_relative(
    trial: pd.DataFrame, base: pd.DataFrame, alpha: float = 0.05
) -> dict[str, tuple[float, float]]:
    """95 % CI (``1 - alpha``) of each tuner metric's relative change, trial vs baseline served to the
    *same* users (common random numbers): ``{metric: (ci_low, ci_high)}``.

    A metric is ``R = (t̄_n / t̄_d) / (b̄_n / b̄_d)`` over per-user means (``d`` ≡ 1 for a per-user mean
    metric). The pairing enters through the covariance of the per-user columns: with ``x_i`` the user's
    ``(t_n, b_n, t_d, b_d)``, ``Var(log R̂) ≈ gᵀ Σ g / N`` with ``g = (1/t̄_n, −1/b̄_n, −1/t̄_d, 1/b̄_d)``
    (delta method), and the CI is ``exp(log R̂ ± z·se) − 1`` like :mod:`intentrank.stats.compare`'s.
    Where the trial's mean is 0 (a −100 % change, no log) a mean metric's CI is that of the mean
    per-user difference over the baseline mean; otherwise an undefined CI is NaN.
    """
    from scipy.stats import norm

    t, b = trial.sort_values("user_id"), base.sort_values("user_id")
    if not np.array_equal(t["user_id"].to_numpy(), b["user_id"].to_numpy()):
        raise IntentRankError("paired comparison: the trial and the baseline were served to other users")
    z, n = float(norm.ppf(1 - alpha / 2)), len(t)
    out: dict[str, tuple[float, float]] = {}
    nan = (float("nan"), float("nan"))
    for m, (col, _) in _METRIC_KEYS.items():
        num, den = RATIO_KPIS.get(col, (col, None))
        cols = [t[num], b[num]] + ([t[den], b[den]] if den else [])
        x = np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])
        mean = x.mean(axis=0)
        if n < 2 or mean[1] <= 0 or (den is not None and mean.min() <= 0):
            out[m] = nan
            continue
        if mean[0] > 0:
            g = np.array([1.0, -1.0, -1.0, 1.0])[: x.shape[1]] / mean
            se = float(np.sqrt(max(g @ np.atleast_2d(np.cov(x, rowvar=False)) @ g, 0.0) / n))
            log_r = float(np.log(mean[0] / mean[1]) - (np.log(mean[2] / mean[3]) if den else 0.0))
            out[m] = (float(np.exp(log_r - z * se) - 1), float(np.exp(log_r + z * se) - 1))
        elif den is None:
            d = (x[:, 0] - x[:, 1]) / mean[1]
            se = float(d.std(ddof=1) / np.sqrt(n))
            out[m] = (max(-1.0, float(d.mean() - z * se)), float(d.mean() + z * se))  # never below -100 %
        else:
            out[m] = nan
    return out


def holds_at_bound(term: ConstraintTerm, ci: tuple[float, float] | list[float]) -> bool:
    """The term holds at the pessimistic end of a relative-change CI (the high end for ``<=``)."""
    return term.holds(ci[1] if term.op == "<=" else ci[0])


@dataclass
class TrialRecord:
    """One trial: its knobs, metrics on the cohort, relative changes and standing."""

    number: int
    params: dict[str, float]
    method: dict[str, Any]
    metrics: dict[str, float]
    rel: dict[str, float]
    feasible: bool
    pareto: bool = False
    #: Each relative change's paired interval on the cohort whose ends are one-sided
    #: ``tuner.pick_confidence`` bounds (:func:`paired_relative`).
    ci: dict[str, list[float]] = field(default_factory=dict)
    #: Every term holds at the pessimistic end of its CI.
    feasible_ci: bool = False

    def row(self) -> dict[str, Any]:
        return {
            "number": self.number, "params": self.params, "method": self.method,
            **{m: self.metrics[m] for m in OBJECTIVES}, "rel": self.rel, "feasible": self.feasible,
            "pareto": self.pareto, "ci": self.ci, "feasible_ci": self.feasible_ci,
        }  # fmt: skip


@dataclass
class TuneResult:
    """The baseline, every trial, the frontier, the pick and its confirmation."""

    method: str
    constraint: list[ConstraintTerm]
    baseline: dict[str, float]
    trials: list[TrialRecord]
    pick: TrialRecord | None
    confirm: dict[str, Any] | None
    seconds: dict[str, float] = field(default_factory=dict)
    pick_by: str = "point"
    #: The holdout stage: cohort, baseline and each candidate's metrics, CI and standing (None: none).
    holdout: dict[str, Any] | None = None

    @property
    def frontier(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.pareto]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; ``pareto``: rows ``{params, heavy_cb, clicks, conversions, …}`` for the report."""
        return {
            "method": self.method,
            "objectives": OBJECTIVES,
            "constraint": [str(t) for t in self.constraint],
            "baseline": self.baseline,
            "pareto": [t.row() for t in self.frontier],
            "trials": [t.row() for t in self.trials],
            "pick_by": self.pick_by,
            "holdout": self.holdout,
            "pick": None if self.pick is None else self.pick.row(),
            "confirm": self.confirm,
            "seconds": self.seconds,
        }


def method_settings(cfg: TunerConfig, params: dict[str, float]) -> dict[str, Any]:
    """The method's config for a trial's knobs (the heuristic's ``gap`` becomes ``l = h - gap``)."""
    out: dict[str, Any] = {"method": cfg.method, **cfg.fixed, **params}
    if cfg.method == "heuristic" and "gap" in out:
        gap = out.pop("gap")
        out["l"] = max(0.0, float(out.get("h", 0.7)) - float(gap))
    return out


class _World:
    """What every trial shares: the catalogue, the trained baseline and the serving helper."""

    def __init__(self, cfg: IntentRankConfig, say: Callable[[str], None]) -> None:
        self.cfg, self.tc, self.say = cfg, cfg.tuner, say
        self.catalogue: Catalogue = build_catalogue(
            config=cfg.simulator.catalogue, seed=cfg.seed, clickbait=cfg.clickbait
        )
        self.items = self.catalogue.items
        self.formula = RankingFormula.from_config(cfg.ranker.formula)
        self.log = self._log()
        self.base = Trainer(cfg.ranker).fit(self.log)
        self._baselines: dict[tuple[int, int, int], pd.DataFrame] = {}

    def baseline(self, users: int, days: int, seed: int) -> pd.DataFrame:
        """Per-user KPIs of the unmitigated baseline on a cohort (served once, then kept)."""
        key = (users, days, seed)
        if key not in self._baselines:
            self._baselines[key] = self.serve({"baseline": self.model_for(None)}, users, days, seed)
        return self._baselines[key]

    def _log(self) -> pd.DataFrame:
        tc, cfg = self.tc, self.cfg
        self.say(f"tune: random log of {tc.log_users:,} users x {tc.log_days} days, then the baseline ranker")
        sink = CollectSink()
        sim_cfg = cfg.simulator.model_copy(update={"users": tc.log_users, "days": tc.log_days})
        simulate("random", sim_cfg, seed=cfg.seed, catalogue=self.catalogue, sink=sink)
        events = load_events(sink.table().to_pandas(), self.items)
        return add_history_columns(events, cfg.ranker.features, cfg.ranker.labels.long_click_threshold_s)

    def model_for(self, settings: dict[str, Any] | None) -> tuple[Any, list[Any]]:
        """(model, post-processors) of the baseline with a method's settings (None: unmitigated)."""
        if settings is None:
            return self.base.model_, []
        plan = MitigationPlan([settings])
        if settings["method"] == "rl_alignment":
            model = copy.deepcopy(self.base.model_)
            plan.align_on_log(
                model, self.log, self.items, self.formula, seed=self.cfg.seed,
                long_click_threshold_s=self.cfg.ranker.labels.long_click_threshold_s,
            )  # fmt: skip
            return model.eval(), []
        if plan.changes_training:
            trainer = plan.make_trainer(self.cfg.ranker)
            plan.fit(trainer, self.log, self.items)
            return trainer.model_, plan.post_processors()
        return self.base.model_, plan.post_processors()

    def serve(self, arms: dict[str, tuple[Any, list[Any]]], users: int, days: int, seed: int) -> pd.DataFrame:
        """Per-user KPIs of the arms (model, post-processors) served to ``users`` fresh users, split by a
        stable hash when there are several; each user's history grows day by day."""
        history = UserHistory(self.cfg.ranker.labels.long_click_threshold_s)
        feed = HistorySink(history, self.items)
        policies: dict[str, Policy] = {
            name: RankerPolicy(model, formula=self.formula, post_processors=post, name=name, history=history)
            for name, (model, post) in arms.items()
        }
        sim_cfg = self.cfg.simulator.model_copy(update={"users": users, "days": days})
        res = simulate(policies, sim_cfg, seed=seed, catalogue=self.catalogue, sink=feed, on_day=feed.commit)
        return res.per_user


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def study_identity(cfg: IntentRankConfig) -> str:
    """Hash of what a trial's result depends on (not the constraint nor the confirmation; the pick
    confidence, as the trials' stored bounds are at it): a stored study is resumed only with the same
    identity."""
    tc = cfg.tuner
    keep = cfg.model_dump(mode="json", include={"seed", "simulator", "ranker", "clickbait"})
    keep["tuner"] = tc.model_dump(mode="json", include={"method", "space", "fixed", "log_users", "log_days",
                                                         "users", "days", "pick_confidence"})  # fmt: skip
    keep["space_in_force"] = {k: r.model_dump() for k, r in tc.search_space().items()}
    return config_hash(keep)


def tune(
    cfg: IntentRankConfig,
    say: Callable[[str], None] = _say,
    progress: bool = True,
    storage: str | Path | None = None,
) -> TuneResult:
    """Run the tuner of ``cfg.tuner`` (see the module docstring); deterministic for a seed.

    ``storage``: an SQLite file for the optuna study. A study already there (same settings: see
    :func:`study_identity`) is resumed up to ``tuner.trials`` trials in all, and the pick and confirmation
    are made anew under the current constraint: re-picking under another constraint costs no new trials.
    (A resumed study's later proposals differ from an uninterrupted run's: the sampler restarts.)
    """
    import optuna

    tc = cfg.tuner
    terms = parse_constraint(tc.constraint)
    space = tc.search_space()
    t0 = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=max(2, min(10, tc.trials // 2)))
    identity = study_identity(cfg)
    study = optuna.create_study(
        directions=list(OBJECTIVES.values()), sampler=sampler, study_name=f"tune-{tc.method}",
        storage=None if storage is None else f"sqlite:///{Path(storage).resolve()}", load_if_exists=True,
    )  # fmt: skip
    if study.user_attrs.get("identity", identity) != identity:
        raise ConfigError(
            f"the study in {storage} was made with other tuner/simulator/ranker settings; "
            "use another --out folder or delete it"
        )
    study.set_user_attr("identity", identity)
    world = _World(cfg, say)
    cohort_seed = cfg.seed + 1
    base_metrics = study.user_attrs.get("baseline")
    if base_metrics is None:
        base_metrics = metrics_of(world.baseline(tc.users, tc.days, cohort_seed))
        study.set_user_attr("baseline", base_metrics)
    seconds = {"baseline": time.perf_counter() - t0}
    alpha = cfg.experiment.alpha
    pick_alpha = 2 * (1 - tc.pick_confidence)  # a two-sided interval whose ends are one-sided bounds

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        params = {k: trial.suggest_float(k, r.low, r.high, log=r.log) for k, r in space.items()}
        settings = method_settings(tc, params)
        per_user = world.serve({"trial": world.model_for(settings)}, tc.users, tc.days, cohort_seed)
        m = metrics_of(per_user)
        trial.set_user_attr("metrics", m)
        trial.set_user_attr("method", settings)
        ci = paired_relative(per_user, world.baseline(tc.users, tc.days, cohort_seed), pick_alpha)
        trial.set_user_attr("ci", {k: list(v) for k, v in ci.items()})
        return tuple(m[k] for k in OBJECTIVES)  # type: ignore[return-value]

    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    todo = max(0, tc.trials - done)
    t1 = time.perf_counter()
    say(f"tune: {todo} trials of {tc.method} on {tc.users:,} users x {tc.days} day(s) ({done} stored)")
    if todo:
        study.optimize(objective, n_trials=todo, show_progress_bar=progress)
    seconds["search"] = time.perf_counter() - t1
    front = {t.number for t in study.best_trials}
    records = []
    nan2 = [float("nan"), float("nan")]
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        m = t.user_attrs["metrics"]
        rel = relative(m, base_metrics)
        ci = t.user_attrs.get("ci", {})  # absent in a study stored before CIs were recorded
        records.append(TrialRecord(
            t.number, dict(t.params), t.user_attrs["method"], m, rel,
            feasible=all(term.holds(rel[term.metric]) for term in terms), pareto=t.number in front, ci=ci,
            feasible_ci=all(holds_at_bound(term, ci.get(term.metric, nan2)) for term in terms),
        ))  # fmt: skip

    eligible = [r for r in records if (r.feasible_ci if tc.pick_by == "ci" else r.feasible)]
    ranked = sorted(eligible, key=lambda r: (r.metrics["conversions"], r.metrics["clicks"]), reverse=True)
    holdout = None
    pick = ranked[0] if ranked else None
    if ranked and tc.holdout_users:
        t1 = time.perf_counter()
        holdout = holdout_check(world, study, ranked[: tc.holdout_candidates], terms, cfg, say)
        kept = [r for r in ranked if holdout["candidates"].get(str(r.number), {}).get("eligible")]
        hold_m = {int(k): v["metrics"] for k, v in holdout["candidates"].items()}
        pick = max(kept, key=lambda r: (hold_m[r.number]["conversions"], hold_m[r.number]["clicks"]),
                   default=None)  # fmt: skip
        seconds["holdout"] = time.perf_counter() - t1

    confirm = None
    if pick is not None:
        t1 = time.perf_counter()
        say(f"tune: confirming trial {pick.number} in a fresh A/B of {tc.confirm_users:,} users")
        confirm = confirm_pick(world, pick.method, terms, tc.confirm_users, tc.confirm_days, cfg.seed + 2,
                               alpha, tc.confirm_margin)  # fmt: skip
        seconds["confirm"] = time.perf_counter() - t1
    elif eligible:
        say("tune: no eligible trial held on the holdout cohort: nothing to confirm")
    seconds["total"] = time.perf_counter() - t0
    return TuneResult(tc.method, terms, base_metrics, records, pick, confirm,
                      {k: round(v, 1) for k, v in seconds.items()}, tc.pick_by, holdout)  # fmt: skip


def holdout_check(
    world: _World, study: Any, candidates: list[TrialRecord], terms: list[ConstraintTerm],
    cfg: IntentRankConfig, say: Callable[[str], None],
) -> dict[str, Any]:
    """Re-serve the candidates and the baseline to a holdout cohort (new users, seed ``seed + 3``; the
    same users for all: common random numbers) and say which still meet the constraint (``pick_by``'s
    reading). Results are kept in the study, so a re-pick re-serves only new candidates."""
    tc = cfg.tuner
    seed = cfg.seed + 3
    key = f"holdout:{tc.holdout_users}x{tc.days}:{seed}:{tc.pick_confidence}"
    stored: dict[str, Any] = dict(study.user_attrs.get(key, {}))
    todo = [c for c in candidates if str(c.number) not in stored.get("candidates", {})]
    if todo:
        say(f"tune: holdout re-evaluation of trials {[c.number for c in todo]} on {tc.holdout_users:,} "
            "new users")  # fmt: skip
        base = world.baseline(tc.holdout_users, tc.days, seed)
        stored.setdefault("baseline", metrics_of(base))
        cands = dict(stored.get("candidates", {}))
        for c in todo:
            per_user = world.serve({"trial": world.model_for(c.method)}, tc.holdout_users, tc.days, seed)
            m = metrics_of(per_user)
            ci = paired_relative(per_user, base, 2 * (1 - tc.pick_confidence))
            cands[str(c.number)] = {"metrics": m, "rel": relative(m, stored["baseline"]),
                                    "ci": {k: list(v) for k, v in ci.items()}}  # fmt: skip
        stored["candidates"] = cands
        study.set_user_attr(key, stored)
    out = {"users": tc.holdout_users, "days": tc.days, "seed": seed, "baseline": stored["baseline"],
           "candidates": {}}  # fmt: skip
    for c in candidates:
        h = dict(stored["candidates"][str(c.number)])
        h["feasible"] = all(t.holds(h["rel"][t.metric]) for t in terms)
        h["feasible_ci"] = all(holds_at_bound(t, h["ci"][t.metric]) for t in terms)
        h["eligible"] = h["feasible_ci"] if tc.pick_by == "ci" else h["feasible"]
        out["candidates"][str(c.number)] = h
    return out


def confirm_pick(
    world: _World, settings: dict[str, Any], terms: list[ConstraintTerm], users: int, days: int, seed: int,
    alpha: float = 0.05, margin: float = 0.0,
) -> dict[str, Any]:
    """A fresh A/B, baseline vs the pick: each constrained metric's relative change with its CI, and
    whether the constraint holds on the point estimates (``constraint_met``), on the whole CI
    (``constraint_met_with_ci``), with the CI excluding a violation by more than ``margin``
    (``constraint_met_within_margin``) and — the verdict — on the point estimates *and* within the margin
    (``confirmed``)."""
    per_user = world.serve({"baseline": world.model_for(None), "pick": world.model_for(settings)},
                           users, days, seed)  # fmt: skip
    table = compare_kpis(per_user, "baseline", "pick", alpha=alpha).set_index("metric")
    metrics: dict[str, dict[str, float]] = {}
    for m in dict.fromkeys([*OBJECTIVES, *(t.metric for t in terms)]):
        row = table.loc[_METRIC_KEYS[m][0]]
        metrics[m] = {k: float(row[c]) for k, c in (("control", "control"), ("treatment", "treatment"),
                      ("rel_change", "rel_value"), ("ci_low", "rel_ci_low"), ("ci_high", "rel_ci_high"),
                      ("p_value", "rel_p_value"), ("diff", "diff_value"), ("diff_ci_low", "diff_ci_low"),
                      ("diff_ci_high", "diff_ci_high"))}  # fmt: skip
        if isinstance(row.get("note"), str) and row["note"]:
            metrics[m]["note"] = row["note"]  # e.g. the delta method breaks down at a treatment mean of 0
    met = all(t.holds(metrics[t.metric]["rel_change"]) for t in terms)
    met_ci = all(_holds_with_ci(t, metrics[t.metric]) for t in terms)
    met_margin = all(_holds_with_ci(t, metrics[t.metric], margin) for t in terms)
    n = per_user["arm"].value_counts()
    return {"users": {str(k): int(v) for k, v in n.items()}, "seed": seed, "metrics": metrics,
            "margin": margin, "confirmed": bool(met and met_margin), "constraint_met": bool(met),
            "constraint_met_with_ci": bool(met_ci), "constraint_met_within_margin": bool(met_margin),
            "criterion": "confirmed = every term holds on the point estimate and its 95 % CI excludes a "
                         f"violation by more than {100 * margin:g} points"}  # fmt: skip


def _holds_with_ci(term: ConstraintTerm, m: dict[str, Any], margin: float = 0.0) -> bool:
    """The term, loosened by ``margin``, holds over the whole relative-change CI; where the delta method
    gives no interval (a treatment mean of 0: a -100 % change), over the absolute difference's CI turned
    relative."""
    lo, hi = m["ci_low"], m["ci_high"]
    if lo != lo or hi != hi:  # NaN
        base = m["control"]
        if not base:
            return False
        lo, hi = m["diff_ci_low"] / base, m["diff_ci_high"] / base
    loose = term.model_copy(update={"value": term.value + (margin if term.op == "<=" else -margin)})
    return loose.holds(hi if term.op == "<=" else lo)


def write_result(result: TuneResult, out: str | Path) -> Path:
    """``out/pareto.json`` (everything) and ``out/pareto.svg`` (the frontier); returns the JSON path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pareto.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.as_dict(), indent=2, default=_json_default), encoding="utf-8")
    tmp.replace(path)
    plot_frontier(result, out / "pareto.svg")
    return path


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def plot_frontier(result: TuneResult, path: str | Path) -> None:
    """Relative change in heavy-clickbait impressions vs clicks, conversions as colour, the clicks bounds
    as grey bars; the frontier joined, the constraint's heavy_cb/clicks bounds as red lines, the pick
    circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    x = np.array([100 * t.rel["heavy_cb"] for t in result.trials])
    y = np.array([100 * t.rel["clicks"] for t in result.trials])
    c = np.array([100 * t.rel["conversions"] for t in result.trials])
    lo = np.array([100 * t.ci.get("clicks", [np.nan] * 2)[0] for t in result.trials])
    hi = np.array([100 * t.ci.get("clicks", [np.nan] * 2)[1] for t in result.trials])
    if np.isfinite(lo).any():  # the clicks bounds the pick is made at
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="none", ecolor="0.7", lw=0.8, zorder=0,
                    label="clicks, paired bound")  # fmt: skip
    sc = ax.scatter(x, y, c=c, cmap="viridis", s=28, edgecolors="none")
    fig.colorbar(sc, ax=ax, label="conversions, % vs baseline")
    front = sorted(result.frontier, key=lambda t: t.rel["heavy_cb"])
    ax.plot([100 * t.rel["heavy_cb"] for t in front], [100 * t.rel["clicks"] for t in front], "k--", lw=0.8,
            label="Pareto frontier (3 objectives)")  # fmt: skip
    for t in result.constraint:
        if t.metric == "heavy_cb":
            ax.axvline(100 * t.value, color="tab:red", lw=0.8)
        elif t.metric == "clicks":
            ax.axhline(100 * t.value, color="tab:red", lw=0.8)
    if result.pick is not None:
        ax.scatter([100 * result.pick.rel["heavy_cb"]], [100 * result.pick.rel["clicks"]], s=160,
                   facecolors="none", edgecolors="tab:red", label="pick")  # fmt: skip
    ax.set_xlabel("heavy-clickbait impressions per user, % vs baseline")
    ax.set_ylabel("clicks per user, % vs baseline")
    ax.set_title(f"{result.method}: trade-off ({', '.join(str(t) for t in result.constraint)})", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def _pct_ci(rel: float, ci: Any) -> str:
    ci = ci if ci is not None and len(ci) == 2 else [float("nan")] * 2
    return f"{100 * rel:+.1f}% [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def format_result(result: TuneResult) -> str:
    """Markdown: every trial (relative changes with their pick bounds; ``*``: on the frontier), the
    holdout stage and the confirmation."""
    lines = ["| trial | knobs | heavy_cb | clicks | conversions | feasible | eligible |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    yes = {True: "yes", False: "no"}
    for t in sorted(result.trials, key=lambda t: t.rel["heavy_cb"]):
        knobs = ", ".join(f"{k}={v:.3g}" for k, v in t.params.items())
        rel = " | ".join(_pct_ci(t.rel[m], t.ci.get(m)) for m in OBJECTIVES)
        tag = ("*" if t.pareto else "") + (" (pick)" if result.pick is t else "")
        lines.append(f"| {t.number}{tag} | {knobs} | {rel} | {yes[t.feasible]} | {yes[t.feasible_ci]} |")
    terms = ", ".join(str(t) for t in result.constraint)
    if result.holdout is not None:
        h = result.holdout
        lines.append(f"\nholdout ({h['users']:,} new users, seed {h['seed']}):")
        for k, v in h["candidates"].items():
            rel = "; ".join(f"{m} {_pct_ci(v['rel'][m], v['ci'].get(m))}" for m in OBJECTIVES)
            lines.append(f"- trial {k}: {rel}; eligible: {yes[v['eligible']]}")
    if result.pick is None:
        n_point = sum(t.feasible for t in result.trials)
        n_bound = sum(t.feasible_ci for t in result.trials)
        lines.append(f"\nno pick under {terms} (pick_by {result.pick_by}; {n_point} trial(s) feasible on the "
                     f"point estimates, {n_bound} at the bound): nothing to confirm")  # fmt: skip
    elif result.confirm is not None:
        c = result.confirm
        changes = "; ".join(f"{m} {_pct_ci(v['rel_change'], [v['ci_low'], v['ci_high']])}"
                            for m, v in c["metrics"].items())  # fmt: skip
        met = (f"confirmed: {c['confirmed']} (point estimates: {c['constraint_met']}; CI within "
               f"{100 * c['margin']:g} points: {c['constraint_met_within_margin']}; whole CI inside the "
               f"bound: {c['constraint_met_with_ci']})")  # fmt: skip
        lines.append(f"\nconfirmation A/B of trial {result.pick.number} (fresh users {c['users']}): "
                     f"{changes}; {terms}: {met}")  # fmt: skip
    return "\n".join(lines)
