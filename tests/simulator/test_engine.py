"""The engine: determinism, event invariants, policies, propensities, config errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from intentrank.config import load_config
from intentrank.errors import ConfigError, IntentRankError
from intentrank.serving.policy import SlateRequest
from intentrank.simulator.ab import simulate
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import Simulator, assign_arms
from intentrank.simulator.policies import CallableScorerPolicy, StaticScorePolicy
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import CollectSink
from intentrank.simulator.world import World

CFG = SimulatorConfig(users=300, days=3, candidates=60, batch_users=128, flush_rows=1000)


def run(catalogue, policies, seed=0, cfg=CFG) -> tuple[pa.Table, object]:
    sink = CollectSink()
    res = simulate(policies, cfg, seed=seed, catalogue=catalogue, sink=sink)
    return sink.table(), res


def test_same_seed_same_event_log(small_catalogue) -> None:
    a, _ = run(small_catalogue, ["ctr_oracle", "random"], seed=7)
    b, _ = run(small_catalogue, ["ctr_oracle", "random"], seed=7)
    c, _ = run(small_catalogue, ["ctr_oracle", "random"], seed=8)
    assert len(a) > 1000
    assert a.equals(b)
    assert not a.equals(c)


def test_event_invariants(small_catalogue) -> None:
    t, res = run(small_catalogue, ["intent_oracle", "random"])
    df = t.to_pandas()
    assert len(df) == res.per_user["impressions"].sum()
    assert df["click"].sum() == res.per_user["clicks"].sum()
    assert not (df["bounce"] & ~df["click"]).any() and not (df["conversion"] & ~df["click"]).any()
    assert not (df["bounce"] & df["conversion"]).any()
    assert ((df["dwell_s"] > 0) == df["click"]).all()
    assert df["position"].between(0, CFG.slate_size - 1).all()
    assert not df.duplicated(["session_id", "item_id"]).any()  # no item repeats within a session
    assert (df.groupby("slate_id")["position"].count() == CFG.slate_size).all()
    assert df.groupby("session_id")["user_id"].nunique().max() == 1
    assert set(df["policy"]) == {"intent_oracle", "random"}
    det = df[df["policy"] == "intent_oracle"]
    assert (det["propensity"] == 1.0).all()
    rnd = df[df["policy"] == "random"]
    # uniform Plackett-Luce: the pick at position p has probability 1 / (K - p)
    assert np.allclose(rnd["propensity"], 1.0 / (CFG.candidates - rnd["position"]))
    assert df["day"].max() == CFG.days - 1
    assert (df["ts"] >= df["day"] * 86400).all() and (df["ts"] < (df["day"] + 2) * 86400).all()


def test_trap_direction_small(small_catalogue) -> None:
    cfg = CFG.model_copy(update={"users": 2000})
    _, res = run(small_catalogue, ["intent_oracle", "ctr_oracle"], cfg=cfg)
    s = res.summary()
    assert s["ctr_oracle"]["ctr"] > s["intent_oracle"]["ctr"]
    assert s["ctr_oracle"]["conversions_per_user"] < s["intent_oracle"]["conversions_per_user"]
    assert s["ctr_oracle"]["time_spent_s_per_user"] < s["intent_oracle"]["time_spent_s_per_user"]
    assert s["ctr_oracle"]["bounce_rate"] > s["intent_oracle"]["bounce_rate"]
    tab = res.compare("intent_oracle", "ctr_oracle").set_index("metric")
    assert tab.loc["ctr", "rel_ci_low"] > 0 and tab.loc["conversions", "rel_ci_high"] < 0
    assert not res.srm().mismatch


def test_policies_by_name_and_callables(small_catalogue) -> None:
    with pytest.raises(ConfigError, match="unknown policy 'nope'"):
        get_policy("nope")
    with pytest.raises(ConfigError, match="temperature"):
        StaticScorePolicy(np.zeros(3), temperature=0.0)
    world = World.create(small_catalogue, CFG)
    bad = CallableScorerPolicy(lambda r, c: np.zeros((1, 1)), name="bad")
    with pytest.raises(IntentRankError, match="shape"):
        Simulator(world, bad).run()
    seen: list[SlateRequest] = []

    def by_clickbait(req: SlateRequest, cat) -> np.ndarray:
        seen.append(req)
        return -cat.clickbait_score[req.candidates]

    t, _ = run(small_catalogue, [CallableScorerPolicy(by_clickbait, name="anti_cb")])
    assert seen and seen[0].candidates.shape[1] == CFG.candidates and seen[0].slate_index[0] == 0
    df = t.to_pandas()
    first = df[df["position"] == 0]["item_id"].to_numpy()
    assert small_catalogue.clickbait_score[first].mean() < small_catalogue.clickbait_score.mean()


def test_popularity_learns_and_static_policy(small_catalogue) -> None:
    pop = get_policy("popularity")
    run(small_catalogue, [pop])
    assert pop._clicks is not None and pop._clicks.sum() > 0
    static = StaticScorePolicy(small_catalogue.quality, name="quality", stochastic=True, temperature=0.1)
    t, _ = run(small_catalogue, [static])
    p = t.column("propensity").to_numpy()
    assert ((p > 0) & (p <= 1)).all() and (p < 1).any()


def test_invalid_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"simulator\.users"):
        load_config(None, {"simulator": {"users": 0}})
    with pytest.raises(ConfigError, match=r"simulator\.behaviour\.position_decay"):
        load_config(None, {"simulator": {"behaviour": {"position_decay": -1}}})
    with pytest.raises(ConfigError, match=r"simulator\.population\.trust_beta"):
        load_config(None, {"simulator": {"population": {"trust_beta": [0, 1]}}})
    with pytest.raises(ConfigError, match="candidates"):
        load_config(None, {"simulator": {"candidates": 5, "slate_size": 20}})
    with pytest.raises(ConfigError, match=r"simulator\.behaviour\.not_a_param"):
        load_config(None, {"simulator": {"behaviour": {"not_a_param": 1}}})


def test_arms_are_stable_and_balanced() -> None:
    ids = np.arange(100_000)
    a = assign_arms(ids, 2, salt=3)
    assert np.array_equal(a, assign_arms(ids, 2, salt=3))
    assert abs(a.mean() - 0.5) < 0.01
    assert not np.array_equal(a, assign_arms(ids, 2, salt=4))


def test_catalogue_too_small_for_candidates(small_catalogue) -> None:
    cfg = CFG.model_copy(update={"candidates": 5000})
    with pytest.raises(ConfigError, match="candidates"):
        Simulator(World.create(small_catalogue, cfg), get_policy("random"))


def test_day_frames_split_the_run_by_day(small_catalogue) -> None:
    world = World.create(small_catalogue, CFG, seed=0)
    sim = Simulator(world, [get_policy("ctr_oracle"), get_policy("random")], seed=1, daily=True)
    whole = sim.run().frame(sim.arms, sim.arm_names)
    days = [sim.day_frame(d) for d in range(CFG.days)]
    for col in ("impressions", "clicks", "conversions", "impressions_heavy"):
        assert sum(int(d[col].sum()) for d in days) == int(whole[col].sum())
    assert all(d["impressions"].sum() > 0 for d in days)
    assert set(days[1]["return_rate"].unique()) <= {0.0, 1.0} and days[0]["return_rate"].sum() == 0
    with pytest.raises(IntentRankError, match="daily=True"):
        Simulator(world, get_policy("random")).day_frame(0)


def test_comparison_table_says_why_where_no_interval_exists() -> None:
    import pandas as pd

    from intentrank.simulator.ab import compare_kpis, format_comparison

    rng = np.random.default_rng(0)
    n = 100
    df = pd.DataFrame({c: rng.integers(1, 9, 2 * n) for c in ("impressions", "clicks", "sessions")})
    df["arm"] = ["a"] * n + ["b"] * n
    df["clicks"] = np.minimum(df["clicks"], df["impressions"])
    for c in ("time_spent_s", "conversions", "bounces", "return_rate", "impressions_non",
              "impressions_light"):  # fmt: skip
        df[c] = rng.integers(0, 2, 2 * n)
    df["bounces"] = np.minimum(df["bounces"], df["clicks"])
    df["conversions"] = np.minimum(df["conversions"], df["clicks"])
    df["impressions_heavy"] = np.r_[np.zeros(n), rng.integers(0, 3, n)]  # control never saw heavy items
    text = format_comparison(compare_kpis(df, "a", "b"), "a", "b")
    heavy = next(line for line in text.splitlines() if line.startswith("impressions_heavy"))
    assert "n/a" in heavy and "undefined" in heavy and "nan" not in heavy
