"""Off-policy evaluation of a registered policy on a logged run: its KPIs before it serves.

An exploring logging policy (``explore``, :class:`~intentrank.serving.explore.ExploringPolicy`) logs, per
slate, the candidates it ranked and each impression's item-position (marginal) and cascade propensity
(the store's slates table). Here a target policy is asked, on every logged context (user, candidates,
slate index, time, day), for its own probabilities of the logged slate
(:meth:`~intentrank.serving.policy.Policy.probabilities`) and of each candidate at each position
(:meth:`~intentrank.serving.policy.Policy.marginals`, for the direct and doubly robust estimators), and the
estimators of :mod:`intentrank.ope` turn the log into the target's KPIs with bootstrap CIs:

* per impression (``ctr``, ``conversion_rate``): IPS, SNIPS, DM, DR, SNDR with one round per impression
  (action = the item at that position, propensities = item-position marginals), bootstrapped by slate;
* per slate (``clicks_per_slate``, ``conversions_per_slate``): IIPS (marginals), RIPS (cascade), and PI
  when the logger drew slates uniformly (its closed form does not hold for a Plackett–Luce logger).

The contexts are the logged ones: a target that would change how long sessions last (how many slates a
user scrolls, how trust evolves) is evaluated on the logger's distribution of contexts, not its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intentrank.errors import DataError, IntentRankError
from intentrank.ope import DM, DR, IIPS, IPS, PI, RIPS, SNDR, SNIPS, OPEData, OPEEstimate, SlateData
from intentrank.ope.reward_model import ItemPositionModel
from intentrank.serving.policy import ItemTable, Policy, SlateRequest

#: Estimators per KPI unit.
SINGLE_ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr")
SLATE_ESTIMATORS = ("iips", "rips", "pi")
ESTIMATORS = SINGLE_ESTIMATORS + SLATE_ESTIMATORS
#: KPI name → (reward column, unit).
KPIS: dict[str, tuple[str, str]] = {
    "ctr": ("click", "impression"),
    "clicks_per_slate": ("click", "slate"),
    "conversion_rate": ("conversion", "impression"),
    "conversions_per_slate": ("conversion", "slate"),
}


@dataclass
class LoggedSlates:
    """A logged OPE run, one row per slate (arrays of ``n`` slates, ``K`` candidates, ``S`` positions).

    ``user_id`` is run-local (the store's id minus the run's user offset); ``order`` holds the shown
    items' columns in ``candidates``; ``logging_marginal``/``logging_cascade`` are the logger's
    item-position and cascade propensities of the shown slate.
    """

    slate_id: np.ndarray
    user_id: np.ndarray
    day: np.ndarray
    ts: np.ndarray
    slate_index: np.ndarray
    arm: np.ndarray
    candidates: np.ndarray
    order: np.ndarray
    click: np.ndarray
    conversion: np.ndarray
    logging_marginal: np.ndarray
    logging_cascade: np.ndarray

    @property
    def n_slates(self) -> int:
        return len(self.slate_id)

    @property
    def slate_size(self) -> int:
        return int(self.order.shape[1])

    @property
    def items(self) -> np.ndarray:
        """(n, S) item ids of the shown slates."""
        return np.take_along_axis(self.candidates, self.order, axis=1)

    @classmethod
    def from_frames(
        cls, impressions: pd.DataFrame, slates: pd.DataFrame, user_offset: int = 0, what: str = "log"
    ) -> LoggedSlates:
        """Join the impressions of exploring slates with their slate records (store or simulator frames).

        Raises DataError when no impression has a slate record (a log without propensities), or when a
        logged slate is incomplete or shows an item that is not among its candidates.
        """
        if slates is None or len(slates) == 0:
            raise DataError(
                f"{what}: no logged propensities (no slate records): it was not written by an exploring "
                "policy; log with one (e.g. --policy explore) to evaluate other policies off-policy"
            )
        imp = impressions[impressions["slate_id"].isin(slates["slate_id"])]
        if imp.empty:
            raise DataError(f"{what}: the slate records match no impression")
        imp = imp.sort_values(["slate_id", "position"], kind="stable")
        sizes = imp.groupby("slate_id", sort=True).size()
        S = int(sizes.iloc[0])
        if (sizes != S).any() or not (imp["position"].to_numpy().reshape(-1, S) == np.arange(S)).all():
            raise DataError(f"{what}: every logged slate must have all positions 0..{S - 1} exactly once")
        sl = slates.set_index("slate_id").loc[sizes.index]
        cand = np.stack(sl["candidates"].to_numpy()).astype(np.int64)
        marg = np.stack(sl["marginal_propensity"].to_numpy()).astype(np.float64)
        casc = np.stack(sl["cascade_propensity"].to_numpy()).astype(np.float64)
        if marg.shape[1] != S or casc.shape[1] != S:
            raise DataError(f"{what}: slate records have {marg.shape[1]} propensities for {S} positions")
        items = imp["item_id"].to_numpy(np.int64).reshape(-1, S)
        hit = cand[:, None, :] == items[:, :, None]  # (n, S, K)
        if not hit.any(axis=2).all():
            raise DataError(f"{what}: a logged item is not among its slate's logged candidates")
        first = imp.groupby("slate_id", sort=True).first()
        return cls(
            slate_id=sizes.index.to_numpy(np.int64),
            user_id=first["user_id"].to_numpy(np.int64) - int(user_offset),
            day=first["day"].to_numpy(np.int64),
            ts=first["ts"].to_numpy(np.float64),
            slate_index=first["slate_index"].to_numpy(np.int16),
            arm=first["policy"].astype(str).to_numpy(),
            candidates=cand,
            order=hit.argmax(axis=2),
            click=imp["click"].to_numpy(bool).reshape(-1, S),
            conversion=imp["conversion"].to_numpy(bool).reshape(-1, S),
            logging_marginal=marg,
            logging_cascade=casc,
        )

    def subset(self, rows: np.ndarray) -> LoggedSlates:
        """The slates at ``rows`` (indices or a boolean mask)."""
        return LoggedSlates(**{k: v[rows] for k, v in self.__dict__.items()})


@dataclass
class TargetProbabilities:
    """The target policy's probabilities of the logged slates, (n, S) each, and its reward-model
    expectation per position for each reward (``q_target[reward]``, (n, S))."""

    marginal: np.ndarray
    cascade: np.ndarray
    inclusion: np.ndarray
    q_target: dict[str, np.ndarray]


def target_probabilities(
    log: LoggedSlates,
    policy: Policy,
    items: ItemTable,
    models: dict[str, ItemPositionModel] | None = None,
    n_samples: int = 256,
    seed: int = 0,
    batch: int = 1024,
) -> TargetProbabilities:
    """Ask ``policy`` (already bound to its world, if it reads one) for its probabilities on every logged
    context, in batches of ``batch`` slates of one day."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A6]))
    n, S = log.n_slates, log.slate_size
    models = models or {}
    marginal, cascade, inclusion = np.zeros((n, S)), np.zeros((n, S)), np.zeros((n, S))
    q_target = {r: np.zeros((n, S)) for r in models}
    positions = np.arange(S)
    for day in np.unique(log.day):
        rows_day = np.flatnonzero(log.day == day)
        for b0 in range(0, len(rows_day), batch):
            rows = rows_day[b0 : b0 + batch]
            cand = log.candidates[rows]
            req = SlateRequest(log.user_id[rows], cand, log.slate_index[rows], log.ts[rows], int(day))
            scores = np.asarray(policy.scores(req, items), dtype=np.float64)
            if scores.shape != cand.shape:
                raise IntentRankError(
                    f"policy {policy.name!r} returned scores of shape {scores.shape}, expected {cand.shape}"
                )
            order = log.order[rows]
            cascade[rows] = policy.probabilities(scores, order, rng, n_samples).cascade
            mat = policy.marginals(scores, S, rng, n_samples)  # (B, K, S)
            b = np.arange(len(rows))[:, None]
            # a Monte Carlo marginal can fall below the (exact) cascade of the prefix ending there
            marginal[rows] = np.maximum(mat[b, order, positions[None, :]], cascade[rows])
            inclusion[rows] = mat.sum(axis=2)[b, order]
            for r, model in models.items():
                q = model.predict(cand[:, :, None], positions[None, None, :])  # (B, K, S)
                q_target[r][rows] = np.einsum("bks,bks->bs", mat, q)
    clip = (np.clip(x, 0.0, 1.0) for x in (marginal, cascade, inclusion))
    return TargetProbabilities(*clip, q_target)


def fit_reward_models(log: LoggedSlates, prior_strength: float = 20.0) -> dict[str, ItemPositionModel]:
    """An item × position reward model per reward column, fitted on the log (DM/DR/SNDR's q̂)."""
    pos = np.broadcast_to(np.arange(log.slate_size), log.order.shape).reshape(-1)
    return {
        r: ItemPositionModel(prior_strength).fit(log.items.reshape(-1), pos, getattr(log, r).reshape(-1))
        for r in ("click", "conversion")
    }


def _estimator(name: str, n_bootstrap: int, alpha: float, seed: int, n_items: int | None) -> Any:
    classes = {"ips": IPS, "snips": SNIPS, "dm": DM, "dr": DR, "sndr": SNDR, "iips": IIPS, "rips": RIPS}
    if name == "pi":
        return PI(n_bootstrap=n_bootstrap, alpha=alpha, seed=seed, logging="uniform_ranking", n_items=n_items)
    return classes[name](n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)


def check_estimators(names: Sequence[str]) -> list[str]:
    """The estimator names, lower-cased; ConfigError-like IntentRankError for unknown ones."""
    out = [n.strip().lower() for n in names if n.strip()]
    bad = [n for n in out if n not in ESTIMATORS]
    if bad or not out:
        raise IntentRankError(
            f"unknown estimator(s) {', '.join(bad) or '(none given)'}; known: {', '.join(ESTIMATORS)}"
        )
    return out


def uniform_logger(log: LoggedSlates) -> bool:
    """True when every logged item-position propensity is 1/K (a uniformly random logger: PI applies)."""
    K = log.candidates.shape[1]
    return bool(np.allclose(log.logging_marginal, 1.0 / K, rtol=1e-6))


def estimate_kpis(
    log: LoggedSlates,
    target: TargetProbabilities,
    models: dict[str, ItemPositionModel],
    estimators: Sequence[str] = ESTIMATORS,
    kpis: Sequence[str] = tuple(KPIS),
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (kpi, estimator): value, ci_low, ci_high, se, n (bootstrap units: slates).

    Skips PI (with a ``note``) unless the logger was uniform. The bootstrap resamples users (a cluster
    bootstrap: a user's impressions and slates share their tastes), so ``n`` is the number of users."""
    estimators = check_estimators(estimators)
    n, S = log.n_slates, log.slate_size
    K = log.candidates.shape[1]
    users = log.user_id  # the bootstrap resamples users: a user's slates share their tastes
    pos = np.broadcast_to(np.arange(S), (n, S))
    items = log.items
    rows: list[dict[str, Any]] = []
    for kpi in kpis:
        if kpi not in KPIS:
            raise IntentRankError(f"unknown KPI {kpi!r}; known: {', '.join(KPIS)}")
        reward_name, unit = KPIS[kpi]
        reward = getattr(log, reward_name).astype(np.float64)
        names = [e for e in estimators if (e in SINGLE_ESTIMATORS) == (unit == "impression")]
        for name in names:
            est = _estimator(name, n_bootstrap, alpha, seed, K)
            note = ""
            if unit == "impression":
                model = models[reward_name]
                data = OPEData(
                    reward=reward.reshape(-1),
                    logging_prob=log.logging_marginal.reshape(-1),
                    target_prob=target.marginal.reshape(-1),
                    q_hat_logged=model.predict(items, pos).reshape(-1),
                    q_hat_target=target.q_target[reward_name].reshape(-1),
                )
                res: OPEEstimate = est.estimate_clustered(data, np.repeat(users, S))
            else:
                if name == "pi" and not uniform_logger(log):
                    rows.append(_row(kpi, name, None, "not applicable: the logger is not uniformly random"))
                    continue
                data = SlateData(
                    slate_id=np.repeat(log.slate_id, S),
                    position=(pos + 1).reshape(-1),
                    reward=reward.reshape(-1),
                    logging_marginal=log.logging_marginal.reshape(-1),
                    target_marginal=target.marginal.reshape(-1),
                    logging_cascade=log.logging_cascade.reshape(-1),
                    target_cascade=target.cascade.reshape(-1),
                    target_inclusion=target.inclusion.reshape(-1),
                )
                res = est.estimate_clustered(data, users)
            rows.append(_row(kpi, name, res, note))
    return pd.DataFrame(rows)


def _row(kpi: str, name: str, res: OPEEstimate | None, note: str) -> dict[str, Any]:
    nan = float("nan")
    if res is None:
        return {"kpi": kpi, "estimator": name, "value": nan, "ci_low": nan, "ci_high": nan, "se": nan,
                "n": 0, "note": note}  # fmt: skip
    return {"kpi": kpi, "estimator": name, "value": res.value, "ci_low": res.ci_low, "ci_high": res.ci_high,
            "se": res.se, "n": res.n, "note": note}  # fmt: skip


def logged_kpis(log: LoggedSlates) -> dict[str, float]:
    """The logging policy's own KPIs on its log (what it got, for reference)."""
    S = log.slate_size
    return {
        "ctr": float(log.click.mean()),
        "clicks_per_slate": float(log.click.sum(axis=1).mean()),
        "conversion_rate": float(log.conversion.mean()),
        "conversions_per_slate": float(log.conversion.sum(axis=1).mean()),
        "slates": float(log.n_slates),
        "impressions": float(log.n_slates * S),
    }


# -- from an event store -----------------------------------------------------------------------------
@dataclass
class StoredLog:
    """A run of an event store read for OPE: the slates, and the run's row of the runs table."""

    log: LoggedSlates
    run: dict[str, Any]
    n_items: int


def read_logged_run(path: str | Path, run_id: int | None = None) -> StoredLog:
    """The OPE log of run ``run_id`` (default: the latest complete run with slate records) of a store.

    DataError before anything is computed when the store (or the run) holds no logged propensities."""
    from intentrank.store import EventStore

    with EventStore(path, read_only=True) as store:
        runs = store.runs()
        complete = runs[runs["status"] == "complete"]
        if complete.empty:
            raise DataError(f"{path}: no complete run to evaluate")
        if run_id is not None and run_id not in set(runs["run_id"].astype(int)):
            raise DataError(f"{path}: no run {run_id}; runs: {', '.join(map(str, runs['run_id']))}")
        slates = store.read_slates(runs="all")
        with_slates = set(slates["run_id"].astype(int)) if len(slates) else set()
        if run_id is None:
            usable = [int(r) for r in complete["run_id"] if int(r) in with_slates]
            if not usable:
                who = ", ".join(f"{int(r.run_id)} ({r.policy})" for r in complete.itertuples())
                raise DataError(
                    f"{path}: no logged propensities: no run was written by an exploring policy "
                    f"(runs: {who}); log one with e.g. `intentrank simulate --policy explore --out {path}`"
                )
            run_id = usable[-1]
        elif run_id not in with_slates:
            policy = runs.loc[runs["run_id"] == run_id, "policy"].iloc[0]
            raise DataError(
                f"{path}: run {run_id} (policy {policy}) has no logged propensities: it was not written "
                "by an exploring policy, so no policy can be evaluated off it"
            )
        run = runs[runs["run_id"] == run_id].iloc[0].to_dict()
        if run["status"] != "complete":
            raise DataError(f"{path}: run {run_id} is {run['status']}, not complete")
        imp = store.read_impressions(runs=[int(run_id)])
        n_items = len(store.read_items())
        slates = slates[slates["run_id"] == run_id]
    log = LoggedSlates.from_frames(imp, slates, int(run["user_offset"]), what=f"{path} run {run_id}")
    return StoredLog(log, run, n_items)
