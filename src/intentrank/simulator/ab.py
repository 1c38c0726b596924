"""Run policies as arms of a simulated A/B test and compare their per-user KPIs with 95% CIs.

This is the reusable entry point the experiments layer and ``intentrank simulate compare`` call:
users are split into arms by a stable hash of their id, every arm is simulated the same way (same
world, same day structure), KPIs are computed per user (the randomisation unit) and compared with
:func:`intentrank.stats.compare_arms` (Welch for means, delta method for ratios and relative changes),
with a sample-ratio-mismatch check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from intentrank.errors import ConfigError
from intentrank.serving.policy import Policy
from intentrank.simulator.catalogue import Catalogue, build_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import DayResult, EventSink, Simulator
from intentrank.simulator.kpis import MEAN_KPIS, RATIO_KPIS, summarise
from intentrank.simulator.registry import get_policy
from intentrank.simulator.world import World
from intentrank.stats import SRMResult, compare_arms, srm_check


@dataclass
class SimulationResult:
    """Per-user KPIs of a run (column ``arm``), the arm names and the per-day log."""

    per_user: pd.DataFrame
    arm_names: list[str]
    days: list[DayResult] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per-arm KPI summary (what ``intentrank simulate`` prints)."""
        return {arm: summarise(self.per_user[self.per_user["arm"] == arm]) for arm in self.arm_names}

    def srm(self, expected_share: Sequence[float] | None = None) -> SRMResult:
        """Sample-ratio-mismatch check of the arm sizes (default: an equal split)."""
        counts = self.per_user["arm"].value_counts()
        return srm_check([int(counts.get(a, 0)) for a in self.arm_names], expected_share)

    def compare(self, control: str, treatment: str, alpha: float = 0.05) -> pd.DataFrame:
        """KPI table of treatment vs control (see :func:`compare_kpis`)."""
        return compare_kpis(self.per_user, control, treatment, alpha)


def compare_kpis(per_user: pd.DataFrame, control: str, treatment: str, alpha: float = 0.05) -> pd.DataFrame:
    """Every simulator KPI of ``treatment`` vs ``control``: levels, difference, relative change, CIs."""
    return compare_arms(per_user, "arm", control, treatment, means=MEAN_KPIS, ratios=RATIO_KPIS, alpha=alpha)


def _resolve(policies: Sequence[str | Policy] | Mapping[str, Policy]) -> dict[str, Policy]:
    if isinstance(policies, Mapping):
        return dict(policies)
    out: dict[str, Policy] = {}
    for p in policies:
        pol = get_policy(p) if isinstance(p, str) else p
        if pol.name in out:
            raise ConfigError(f"policies: {pol.name!r} given twice (name the arms with a mapping)")
        out[pol.name] = pol
    return out


def simulate(
    policies: Sequence[str | Policy] | Mapping[str, Policy] | str | Policy,
    config: SimulatorConfig | None = None,
    seed: int = 0,
    catalogue: Catalogue | None = None,
    sink: EventSink | None = None,
    arms: np.ndarray | None = None,
    on_day: Callable[[DayResult], None] | None = None,
    world: World | None = None,
) -> SimulationResult:
    """Simulate ``config.users`` users for ``config.days`` days under one or more policies (arms).

    With several policies, users are split evenly by a stable hash of (user id, seed) unless ``arms``
    gives each user's arm index. The catalogue defaults to the shipped headlines scored by the default
    clickbait model (cached).
    """
    cfg = config or SimulatorConfig()
    if isinstance(policies, str | Policy):
        policies = [policies]
    arm_policies = _resolve(policies)
    if world is None:
        cat = catalogue if catalogue is not None else build_catalogue(config=cfg.catalogue, seed=seed)
        world = World.create(cat, cfg, seed=seed)
    sim = Simulator(world, arm_policies, arms=arms, seed=seed)
    log: list[DayResult] = []

    def record(day: DayResult) -> None:
        log.append(day)
        if on_day is not None:
            on_day(day)

    kpis = sim.run(sink, on_day=record)
    per_user = kpis.frame(sim.arms, sim.arm_names)
    return SimulationResult(per_user=per_user, arm_names=sim.arm_names, days=log)


def format_comparison(table: pd.DataFrame, control: str, treatment: str) -> str:
    """Plain-text table: metric, both arms, relative change with its 95% CI, whether it is significant
    (``*``), and the Holm-adjusted p-value over the table's metrics (``holm p``). Where no interval exists
    (e.g. a control mean of 0, where the delta method breaks down) the row says why instead."""
    w = max(14, len(control) + 2, len(treatment) + 2)
    lines = [
        f"{'metric':<22}{control:>{w}}{treatment:>{w}}{'rel. change':>13}  {'95% CI':<20} sig  holm p",
    ]
    for _, r in table.iterrows():
        ci = f"[{r['rel_ci_low']:+.1%}, {r['rel_ci_high']:+.1%}]"
        holm = f"{r['rel_p_holm']:.2g}" if "rel_p_holm" in r else ""
        note = r.get("note")
        if not np.isfinite(r["rel_ci_low"]) and isinstance(note, str) and note:
            lines.append(
                f"{r['metric']:<22}{_fmt(r['control']):>{w}}{_fmt(r['treatment']):>{w}}{'n/a':>13}  {note}"
            )
            continue
        lines.append(
            f"{r['metric']:<22}{_fmt(r['control']):>{w}}{_fmt(r['treatment']):>{w}}{r['rel_value']:>+13.1%}  "
            f"{ci:<20} {'*' if r['rel_significant'] else ' '}    {holm}"
        )
    return "\n".join(lines)


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if abs(x) < 10 else f"{x:,.1f}"
