"""What the exploring logger writes (store slates table, migration) and hand-checked OPE on a tiny log."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from intentrank.errors import DataError
from intentrank.ope import IPS, SNIPS
from intentrank.ope.estimators import OPEData
from intentrank.ope.reward_model import ItemPositionModel
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.offpolicy import (
    LoggedSlates,
    TargetProbabilities,
    estimate_kpis,
    read_logged_run,
)
from intentrank.simulator.sinks import StoreSink
from intentrank.store import EventStore

CFG = SimulatorConfig(users=60, days=1, candidates=30, slate_size=5)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "s.duckdb"
    cat = synthetic_catalogue(500, seed=0)
    with EventStore(path) as st:
        st.write_items(cat.items)
        with st.begin_run(policy="ctr_oracle", seed=0) as run:
            simulate("ctr_oracle", CFG, seed=0, catalogue=cat, sink=StoreSink(run))
        with st.begin_run(policy="explore", seed=0) as run:
            simulate("explore", CFG, seed=0, catalogue=cat, sink=StoreSink(run))
    return path


def test_exploring_run_logs_candidates_and_propensities(store: Path) -> None:
    with EventStore(store, read_only=True) as st:
        slates = st.read_slates(runs="all")
        imp = st.read_impressions(runs=[1]).sort_values(["slate_id", "position"])
        runs = st.runs()
    assert set(slates["run_id"]) == {1}  # the deterministic run logs no slates
    assert set(slates["slate_id"]) == set(imp["slate_id"])  # ids offset like the impressions'
    assert (slates["model_version"] == "ctr_oracle").all()
    assert runs.loc[runs.run_id == 1, "slate_offset"].item() == slates["slate_id"].min()
    S = CFG.slate_size
    cand = np.stack(slates["candidates"].to_numpy())
    casc = np.stack(slates["cascade_propensity"].to_numpy())
    marg = np.stack(slates["marginal_propensity"].to_numpy())
    assert cand.shape[1] == CFG.candidates and casc.shape[1] == S
    # the cascade is the running product of the impressions' conditional propensities, down the slate
    cond = imp["propensity"].to_numpy().reshape(-1, S)
    assert np.allclose(np.cumprod(cond, axis=1), casc, rtol=1e-9)
    # position 0's marginal is its conditional; no marginal is below its cascade or above 1
    assert np.allclose(marg[:, 0], cond[:, 0])
    assert (marg >= casc * (1 - 1e-9)).all() and (marg <= 1).all() and (marg >= 0.1 / CFG.candidates).all()
    shown = imp["item_id"].to_numpy().reshape(-1, S)
    assert all(set(s) <= set(c) for s, c in zip(shown, cand, strict=True))


def test_read_logged_run_picks_the_exploring_run(store: Path) -> None:
    stored = read_logged_run(store)
    assert stored.run["run_id"] == 1 and stored.log.slate_size == CFG.slate_size
    assert stored.log.user_id.min() >= 0 and stored.log.user_id.max() < CFG.users  # run-local users
    with pytest.raises(DataError, match="run 0 \\(policy ctr_oracle\\) has no logged propensities"):
        read_logged_run(store, 0)


def test_store_without_slates_table_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with EventStore(path):
        pass
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE slates")
    con.close()
    with EventStore(path, read_only=True) as st:  # read-only: never changed, reads as no slates
        assert st.read_slates().empty
    with EventStore(path) as st:  # writable: the table is added
        assert st.read_slates().empty
    con = duckdb.connect(str(path), read_only=True)
    assert "slates" in {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    con.close()


def test_replacing_a_run_drops_its_slates(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    cat = synthetic_catalogue(500, seed=0)
    for on_existing in ("refuse", "replace"):
        with EventStore(path) as st, st.begin_run(
            policy="explore", seed=0, config_hash="h", on_existing=on_existing
        ) as run:
            simulate("explore", CFG, seed=0, catalogue=cat, sink=StoreSink(run))
    with EventStore(path, read_only=True) as st:
        slates = st.read_slates(runs="all")
        assert set(slates["run_id"]) == {1} and len(slates) == st.read_impressions()["slate_id"].nunique()


def _tiny_log() -> LoggedSlates:
    """Two slates of 2 positions out of 3 candidates (items 10, 11, 12), users 0 and 1."""
    return LoggedSlates(
        slate_id=np.array([0, 1]),
        user_id=np.array([0, 1]),
        day=np.zeros(2, int),
        ts=np.zeros(2),
        slate_index=np.zeros(2, np.int16),
        arm=np.array(["explore", "explore"]),
        candidates=np.array([[10, 11, 12], [10, 11, 12]]),
        order=np.array([[0, 1], [2, 0]]),  # shown: (10, 11) and (12, 10)
        click=np.array([[True, False], [False, True]]),
        conversion=np.zeros((2, 2), bool),
        logging_marginal=np.array([[0.5, 0.25], [0.2, 0.4]]),
        logging_cascade=np.array([[0.5, 0.2], [0.2, 0.1]]),
    )


def test_hand_checked_estimates_on_a_tiny_log() -> None:
    """Target: deterministic top-2 = (10, 11) on both contexts, so its marginals of the logged rows are
    slate 0: (1, 1), slate 1: (0, 0); cascades the same."""
    log = _tiny_log()
    target = TargetProbabilities(
        marginal=np.array([[1.0, 1.0], [0.0, 0.0]]),
        cascade=np.array([[1.0, 1.0], [0.0, 0.0]]),
        inclusion=np.array([[1.0, 1.0], [0.0, 1.0]]),
        q_target={"click": np.array([[0.3, 0.1], [0.3, 0.1]]), "conversion": np.zeros((2, 2))},
    )
    models = {"click": ItemPositionModel().fit(np.array([10, 11, 12, 10]), np.array([0, 1, 0, 1]),
                                               np.array([1.0, 0.0, 0.0, 1.0]))}  # fmt: skip
    kpis = ["ctr", "clicks_per_slate"]
    tab = estimate_kpis(log, target, models, ["ips", "snips", "iips", "rips"], kpis, n_bootstrap=50)
    v = tab.set_index(["kpi", "estimator"])["value"]
    # IPS over the 4 impressions: weights 1/0.5, 1/0.25, 0, 0; rewards 1, 0, 0, 1 -> (2 + 0) / 4
    assert v["ctr", "ips"] == pytest.approx(0.5)
    # SNIPS: Σ w r / Σ w = 2 / (2 + 4 + 0 + 0)
    assert v["ctr", "snips"] == pytest.approx(2 / 6)
    # IIPS per slate: slate 0: 1/0.5·1 + 1/0.25·0 = 2; slate 1: 0 -> mean 1
    assert v["clicks_per_slate", "iips"] == pytest.approx(1.0)
    # RIPS: slate 0: (1/0.5)·1 + (1/0.2)·0 = 2; slate 1: 0 -> 1
    assert v["clicks_per_slate", "rips"] == pytest.approx(1.0)
    assert (tab["n"] == 2).all()  # two users resampled
    # the same numbers from the estimators directly
    data = OPEData(reward=np.array([1.0, 0, 0, 1]), logging_prob=np.array([0.5, 0.25, 0.2, 0.4]),
                   target_prob=np.array([1.0, 1, 0, 0]))  # fmt: skip
    assert IPS().estimate_value(data) == pytest.approx(0.5)
    assert SNIPS().estimate_value(data) == pytest.approx(2 / 6)


def test_cluster_bootstrap_keeps_the_value_and_counts_groups() -> None:
    rng = np.random.default_rng(0)
    n = 400
    data = OPEData(reward=rng.random(n) < 0.3, logging_prob=rng.uniform(0.2, 1, n),
                   target_prob=rng.uniform(0, 1, n))  # fmt: skip
    groups = rng.integers(0, 50, n)  # unequal group sizes
    for est in (IPS(n_bootstrap=200), SNIPS(n_bootstrap=200)):
        plain, clustered = est.estimate(data), est.estimate_clustered(data, groups)
        assert clustered.value == pytest.approx(plain.value, rel=1e-12)
        assert clustered.n == len(np.unique(groups))
        assert clustered.ci_low < clustered.value < clustered.ci_high


def test_item_position_model_by_hand() -> None:
    # position 0 mean 0.5, position 1 mean 0.25 -> examination (1, 0.5)
    item, pos = np.array([0, 1, 0, 1, 0, 1, 0, 1]), np.array([0, 0, 1, 1, 0, 0, 1, 1])
    reward = np.array([1.0, 0, 1, 0, 1, 0, 0, 0])
    m = ItemPositionModel(prior_strength=0.0).fit(item, pos, reward)
    assert np.allclose(m.examination_, [1.0, 0.5])
    # item 0: rewards 3 over examinations 1 + 0.5 + 1 + 0.5 = 3 -> 1.0; item 1: 0
    assert np.allclose(m.attractiveness_, [1.0, 0.0])
    assert np.allclose(m.predict(np.array([0, 0, 1]), np.array([0, 1, 0])), [1.0, 0.5, 0.0])


def test_from_frames_rejects_a_log_without_slate_records() -> None:
    imp = pd.DataFrame({"slate_id": [0], "position": [0], "item_id": [1]})
    with pytest.raises(DataError, match="no logged propensities"):
        LoggedSlates.from_frames(imp, pd.DataFrame(columns=["slate_id"]))
