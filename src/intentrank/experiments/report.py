"""The experiment's report: one self-contained HTML file (inline matplotlib SVGs, no script, no network).

Sections: the setup (arms, shares, SRM, warnings), the KPI table with 95 % CIs, an interval plot per
metric (every arm's relative change vs control), the clickbait-category mix per arm, the loop's per-day
curves, the A/A calibration (false-positive rate of random re-splits of control + A/A users), the
trade-off tuner's Pareto frontier (``--pareto``: the tuner's ``pareto.json``) and off-policy estimates
beside the A/B (``--ope``: ``intentrank ope --out``'s JSON).
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from intentrank.errors import IntentRankError

if TYPE_CHECKING:
    from intentrank.experiments.abtest import ABTestResult

#: Metrics with a per-day curve.
DAY_METRICS = ("heavy_share", "ctr", "clicks", "time_spent", "bounce_rate", "conversions")
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.sig-up{background:#e3f4e3}.sig-down{background:#fbe3e3}
.warn{background:#fff4d6;border:1px solid #e6c200;padding:.5em}.note{color:#666;font-size:.85em}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid figure{margin:0}figure svg{max-width:100%;height:auto}
"""


def _svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (text kept as text, no external references)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 8})
    return plt


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool | str):
        return _e(x)
    x = float(x)
    if pct:
        return f"{x:+.1%}"
    return f"{x:.4g}"


def interval_plot(table: Any, metric: str) -> str:
    """Relative change vs control with its 95 % CI, one row per arm (a forest plot) for ``metric``."""
    plt = _plt()
    rows = table[table["metric"] == metric]
    fig, ax = plt.subplots(figsize=(4.2, 0.32 * len(rows) + 0.9))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows.itertuples(index=False), strict=True):
        ok = math.isfinite(r.rel_ci_low) and math.isfinite(r.rel_ci_high)
        color = "#2a7" if (ok and r.rel_ci_low > 0) else "#c33" if (ok and r.rel_ci_high < 0) else "#555"
        if ok:
            ax.plot([r.rel_ci_low * 100, r.rel_ci_high * 100], [yi, yi], color=color, lw=2)
        if math.isfinite(r.rel_value):
            ax.plot([r.rel_value * 100], [yi], "o", color=color, ms=4)
    ax.axvline(0, color="#888", lw=0.8, ls="--")
    ax.set_yticks(y, list(rows["arm"]))
    ax.set_xlabel(f"{metric}: change vs control, % (95% CI)")
    ax.set_title(metric)
    return _svg(fig)


def category_mix_plot(levels: Mapping[str, Mapping[str, float]]) -> str:
    """Share of impressions per clickbait category (non / light / heavy), stacked, one bar per arm."""
    plt = _plt()
    arms = list(levels)
    cats = [("impressions_non_cb", "non", "#8c8"), ("impressions_light_cb", "light", "#fc6"),
            ("impressions_heavy_cb", "heavy", "#e55")]  # fmt: skip
    tot = np.array([sum(levels[a][c] for c, _, _ in cats) for a in arms])
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(arms) + 1.0))
    left = np.zeros(len(arms))
    y = np.arange(len(arms))[::-1]
    for col, label, color in cats:
        share = np.array([levels[a][col] for a in arms]) / np.where(tot > 0, tot, 1)
        ax.barh(y, share * 100, left=left, color=color, label=label)
        for yi, s, lft in zip(y, share, left, strict=True):
            if label == "heavy":
                ax.text(lft + s * 100 + 0.5, yi, f"{s:.1%}", va="center", fontsize=7)
        left += share * 100
    ax.set_yticks(y, arms)
    ax.set_xlim(0, 108)
    ax.set_xlabel("share of impressions, %")
    ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _svg(fig)


def day_curve_plot(per_day: Any, metric: str) -> str:
    """One line per arm of ``metric``'s level per day of the loop."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.8, 2.6))
    for arm, f in per_day.groupby("arm", sort=False):
        ax.plot(f["day"], f[metric], marker="o", ms=3, lw=1, label=arm)
    ax.set_title(metric)
    ax.set_xlabel("day")
    ax.set_xticks(sorted(per_day["day"].unique()))
    return _svg(fig)


def day_legend(arms: Sequence[str]) -> str:
    """A legend of the arms' line colours (shared by the per-day curves)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.25 * math.ceil(len(arms) / 4) + 0.2))
    for a in arms:
        ax.plot([], [], marker="o", ms=3, lw=1, label=a)
    ax.legend(ncol=4, loc="center", frameon=False)
    ax.axis("off")
    return _svg(fig)


def calibration_plot(calib: Any, alpha: float) -> str:
    """A/A false-positive rate per metric, with α and a ±2 binomial standard-error band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.6))
    x = np.arange(len(calib))
    ax.bar(x, calib["false_positive_rate"] * 100, color="#69c")
    se = float(calib["se"].iloc[0]) if len(calib) else 0.0
    ax.axhspan((alpha - 2 * se) * 100, (alpha + 2 * se) * 100, color="#ddd", zorder=0)
    ax.axhline(alpha * 100, color="#c33", lw=1, ls="--")
    ax.set_xticks(x, list(calib["metric"]), rotation=30, ha="right")
    ax.set_ylabel("false positives, %")
    return _svg(fig)


def _pareto_rows(data: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """(all rows, frontier rows, the pick) from the tuner's ``pareto.json`` (or a plain list of rows)."""
    if isinstance(data, list):
        rows, pick = data, None
        front = [r for r in rows if r.get("pareto", True)]
    elif isinstance(data, dict):
        rows = data.get("trials") or data.get("pareto") or data.get("rows") or []
        front = data.get("pareto") or [r for r in rows if r.get("pareto")] or rows
        pick = data.get("pick")
    else:
        raise IntentRankError("pareto file: expected a JSON list of rows or the tuner's object")
    need = ("heavy_cb", "clicks", "conversions")
    for r in [*rows, *front]:
        if not isinstance(r, dict) or any(k not in r for k in need):
            raise IntentRankError(
                f"pareto file: every row needs {', '.join(need)} (and params); got {r!r:.120}"
            )
    return rows, front, pick


def pareto_plot(rows: list[dict[str, Any]], front: list[dict[str, Any]], pick: dict[str, Any] | None) -> str:
    """Heavy-clickbait impressions vs clicks per user (colour: conversions), the frontier highlighted."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = [r["heavy_cb"] for r in rows]
    y = [r["clicks"] for r in rows]
    sc = ax.scatter(x, y, c=[r["conversions"] for r in rows], cmap="viridis", s=14, alpha=0.7)
    fig.colorbar(sc, ax=ax, label="conversions per user")
    fs = sorted(front, key=lambda r: r["heavy_cb"])
    ax.plot([r["heavy_cb"] for r in fs], [r["clicks"] for r in fs], "o-", mfc="none", color="#c33", ms=7,
            lw=1, label="Pareto frontier")  # fmt: skip
    if pick:
        ax.plot([pick["heavy_cb"]], [pick["clicks"]], "*", color="#e80", ms=14, label="pick")
    ax.set_xlabel("heavy-clickbait impressions per user")
    ax.set_ylabel("clicks per user")
    ax.legend(frameon=False, fontsize=7)
    return _svg(fig)


def _read_json(src: Any, what: str) -> Any:
    if src is None or isinstance(src, dict | list):
        return src
    p = Path(src)
    if not p.is_file():
        raise IntentRankError(f"{what} file not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IntentRankError(f"{what} file {p}: not valid JSON ({err})") from None


def _table_html(
    rows: Sequence[Mapping[str, Any]], cols: Sequence[str] | None = None, limit: int = 200
) -> str:
    if not rows:
        return "<p class='note'>(no rows)</p>"
    cols = list(cols or dict.fromkeys(k for r in rows for k in r))
    out = ["<table><tr>" + "".join(f"<th class='l'>{_e(c)}</th>" for c in cols) + "</tr>"]
    for r in list(rows)[:limit]:
        cells = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, dict | list):
                v = json.dumps(v, default=str)[:120]
            cells.append(
                f"<td class='l'>{_fmt(v) if isinstance(v, float) else _e('' if v is None else v)}</td>"
            )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if len(rows) > limit:
        out.append(f"<p class='note'>{len(rows) - limit} more rows not shown</p>")
    return "".join(out)


#: On-policy value of each OPE KPI from the A/B's per-user table: (numerator, denominator) columns.
OPE_KPIS: dict[str, tuple[str, str]] = {
    "ctr": ("clicks", "impressions"),
    "clicks_per_slate": ("clicks", "slates"),
    "conversion_rate": ("conversions", "impressions"),
    "conversions_per_slate": ("conversions", "slates"),
}


def _on_policy(per_user: Any, arm: str, kpi: str) -> float | None:
    if kpi not in OPE_KPIS or per_user is None:
        return None
    f = per_user[per_user["arm"] == arm]
    num, den = OPE_KPIS[kpi]
    if num not in f or den not in f or not float(f[den].sum()):
        return None
    return float(f[num].sum() / f[den].sum())


def _ope_section(ope: Any, result: ABTestResult) -> str:
    """Off-policy estimates (``intentrank ope --out``'s JSON, one policy, or a list of them) as rows; where
    the estimated policy is an arm (by arm name, or the registry policy of a reference arm) the A/B's
    on-policy value of the KPI goes beside the estimate."""
    payloads = ope if isinstance(ope, list) else [ope]
    by_policy = {p.name: p.name for p in result.plan.arms}
    for p in result.plan.arms:  # a reference arm served as its registry policy is that policy
        if p.config.policy and not p.config.mitigation and p.copy_of is None:
            by_policy.setdefault(p.config.policy, p.name)
    out = []
    for payload in payloads:
        if not isinstance(payload, dict) or not isinstance(payload.get("estimates"), list):
            out.append("<pre>" + _e(json.dumps(payload, indent=1, default=str)[:20000]) + "</pre>")
            continue
        policy = str(payload.get("policy", ""))
        arm = by_policy.get(policy)
        head = f"policy <b>{_e(policy)}</b> from the log of {_e(payload.get('logging_policy', '?'))}"
        head += f" ({payload.get('impressions', '?')} impressions)"
        head += f"; A/B arm: <b>{_e(arm)}</b>" if arm else "; not an arm of this A/B"
        rows = []
        for r in payload["estimates"]:
            if not isinstance(r, dict):
                continue
            row = dict(r)
            if arm is not None:
                row["a/b (on-policy)"] = _on_policy(
                    result.per_user, arm, str(r.get("kpi", r.get("metric", "")))
                )
            rows.append(row)
        out.append(f"<p>{head}</p>" + _table_html(rows))
    return "".join(out)


def write_report(
    result: ABTestResult, path: str | Path, pareto: Any = None, ope: Any = None, title: str | None = None
) -> Path:
    """Write the report of ``result`` to ``path``; ``pareto`` / ``ope``: a file path or loaded JSON."""
    from intentrank.experiments.abtest import METRICS

    pareto = _read_json(pareto, "pareto")
    ope = _read_json(ope, "OPE")
    plan = result.plan
    ab = plan.config
    table = result.comparisons
    levels = {a: {k: v for k, v in lv.items()} for a, lv in result.levels.items()}
    name = title or f"A/B test: {ab.name}"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(name)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{_e(name)}</h1>"]  # fmt: skip
    # setup
    parts.append(
        f"<p>{ab.users:,} users of the living world, {ab.log_days} pre-period day(s) under the random "
        f"policy, "
        f"then {ab.days} day(s) of the loop (windows of {ab.window_min:g} simulated minutes, learners "
        f"updated every {ab.update_every} window(s), RL alignment after every {ab.rl_every} update(s) of its "
        f"arm's model). Users are assigned by a stable hash of (experiment name, user id). Comparisons: "
        f"every arm vs <b>{_e(ab.control)}</b>, per user, 95% CIs (ratio metrics by the delta method"
        f"{', CUPED on the pre-period' if ab.cuped else ''}), p-values adjusted by "
        f"{'Holm' if ab.correction == 'holm' else 'Benjamini-Hochberg'} over metrics x arms.</p>"
    )
    srm_ok = result.srm_p_value >= 0.001
    parts.append(
        f"<p>Sample-ratio check: p = {result.srm_p_value:.3g} "
        f"({'no mismatch' if srm_ok else '<b>MISMATCH: do not trust the comparisons</b>'}). "
        f"Seconds: {_e(json.dumps(result.seconds))}.</p>"
    )
    for w in result.extra.get("warnings", []):
        parts.append(f"<p class='warn'>warning: {_e(w)}</p>")
    arm_rows = []
    for p in plan.arms:
        c = p.config
        what = f"registry policy {c.policy}" if c.policy else f"ranker, target {c.target}"
        formula = c.formula.model_dump() if c.formula else None
        arm_rows.append({
            "arm": p.name, "share": f"{p.share:.1%}", "users": int(levels[p.name]["users"]), "what": what,
            "mitigation": ", ".join(c.method_names()) or "-", "formula": formula or "default",
            "learner": c.learner if c.policy is None else "-", "updates": result.updates.get(p.name, 0),
            "copy of": p.copy_of or "",
        })  # fmt: skip
    parts.append("<h2>Arms</h2>" + _table_html(arm_rows))
    # KPI table
    parts.append("<h2>KPIs vs control (relative change, 95% CI)</h2><table><tr><th class='l'>metric</th>"
                 "<th class='l'>arm</th><th>control</th><th>arm</th><th>change</th><th>95% CI</th><th>p</th>"
                 "<th>p adj.</th><th>MDE</th><th>CUPED var. ratio</th>"
                 "<th class='l'>note</th></tr>")  # fmt: skip
    for m in METRICS:
        for r in table[table["metric"] == m].itertuples(index=False):
            sig = bool(r.significant_adjusted)
            cls = ("sig-up" if r.rel_value > 0 else "sig-down") if sig else ""
            ci = (f"[{_fmt(r.rel_ci_low, True)}, {_fmt(r.rel_ci_high, True)}]"
                  if math.isfinite(r.rel_ci_low) else "n/a")  # fmt: skip
            note = r.note if isinstance(r.note, str) else ""
            parts.append(
                f"<tr class='{cls}'><td class='l'>{_e(m)}</td><td class='l'>{_e(r.arm)}</td>"
                f"<td>{_fmt(r.control)}</td><td>{_fmt(r.treatment)}</td><td>{_fmt(r.rel_value, True)}</td>"
                f"<td>{ci}</td><td>{_fmt(r.rel_p_value)}</td><td>{_fmt(r.p_adjusted)}</td>"
                f"<td>{_fmt(r.mde_rel)}</td><td>{_fmt(r.variance_ratio)}</td>"
                f"<td class='l note'>{_e(note)}</td></tr>"
            )
    parts.append("</table><p class='note'>Green/red: significant after the correction. MDE: the relative "
                 "change detectable with 80% power at this size. CUPED variance ratio: Var(adjusted "
                 "difference) / Var(unadjusted): 0.5 = the precision of twice the users.</p>")  # fmt: skip
    # interval plots
    parts.append("<h2>Interval plots</h2><p class='note'>Relative change vs control with its 95% CI; "
                 "green/red where the interval excludes 0 (before the correction: see p adj.).</p>"
                 "<div class='grid'>")  # fmt: skip
    for m in METRICS:
        parts.append(f"<figure class='interval'>{interval_plot(table, m)}</figure>")
    parts.append("</div>")
    # category mix
    parts.append("<h2>Clickbait-category mix per arm</h2><figure class='mix'>")
    parts.append(category_mix_plot(levels) + "</figure>")
    # per-day curves
    parts.append("<h2>Per-day curves of the loop</h2>")
    if len(result.per_day):
        parts.append(f"<figure>{day_legend(plan.names)}</figure><div class='grid'>")
        for m in DAY_METRICS:
            parts.append(f"<figure class='day'>{day_curve_plot(result.per_day, m)}</figure>")
        parts.append("</div>")
    # A/A calibration
    parts.append("<h2>A/A calibration</h2>")
    calib = result.calibration
    if len(calib):
        parts.append(
            f"<p>{int(calib['splits'].max())} random re-splits of the users of {_e(ab.control)} and its A/A "
            f"copy (the same policy) into two halves: the share of splits where a metric is 'significant' at "
            f"alpha = {ab.alpha} (expected: alpha; the grey band is ±2 binomial standard errors).</p>"
        )
        parts.append(f"<figure class='calib'>{calibration_plot(calib.dropna(), ab.alpha)}</figure>")
        parts.append(_table_html(calib.to_dict("records")))
    else:
        parts.append("<p class='note'>not run (calibration_splits: 0)</p>")
    # Pareto
    parts.append("<h2>Trade-off: Pareto frontier</h2>")
    if pareto is None:
        parts.append("<p class='note'>no tuner result given (intentrank abtest --pareto pareto.json)</p>")
    else:
        rows, front, pick = _pareto_rows(pareto)
        parts.append(f"<figure class='pareto'>{pareto_plot(rows, front, pick)}</figure>")
        parts.append(
            "<h3>Frontier</h3>" + _table_html(front, ["params", "heavy_cb", "clicks", "conversions"])
        )
        if pick:
            parts.append("<h3>Pick</h3>" + _table_html([pick]))
        if isinstance(pareto, dict) and pareto.get("confirm"):
            parts.append(
                "<h3>Confirmation A/B</h3><pre>" + _e(json.dumps(pareto["confirm"], indent=1)) + "</pre>"
            )
    # OPE
    parts.append("<h2>Off-policy estimates beside the A/B</h2>")
    if ope is None:
        parts.append("<p class='note'>no OPE result given (intentrank abtest --ope FILE)</p>")
    else:
        parts.append(_ope_section(ope, result))
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
