"""Trainer on synthetic events: learning, metrics, checkpoints, hooks, and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.errors import DataError
from intentrank.ranking.config import CategoricalFeature, DenseFeature, RankerConfig, ShallowTowerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.labels import make_labels
from intentrank.ranking.metrics import ndcg_per_slate
from intentrank.ranking.trainer import Trainer
from intentrank.runtime import torch_seed

from .conftest import make_events


def small_config(**train: object) -> RankerConfig:
    cfg = RankerConfig()
    t = {"epochs": 3, "batch_size": 512, "progress": False, "lr": 3e-3} | train
    small_ids = {"user_id": 5003, "item_id": 2003}
    cats = [
        c.model_copy(update={"buckets": small_ids.get(c.name, c.buckets)}) for c in cfg.features.categorical
    ]
    return cfg.model_copy(
        update={
            "features": cfg.features.model_copy(update={"categorical": cats}),
            "train": cfg.train.model_copy(update=t),
            "model": cfg.model.model_copy(
                update={
                    "mlp_hidden": [32],
                    "tower_hidden": [16],
                    "cross": cfg.model.cross.model_copy(update={"layers": 2, "rank": 8}),
                }
            ),
        }
    )


@pytest.fixture(scope="module")
def trained() -> tuple[Trainer, dict]:
    # 60k rows: on the 20k-row set the held-out CTCVR AUC swings 0.53-0.61 with the init seed alone
    # (few conversions); here it is 0.67-0.68 over seeds 0-3, well clear of the 0.55 bar.
    imp, items = make_events(n_slates=3000)
    tr = Trainer(small_config(epochs=4))
    assert tr.fit(imp, items) is tr
    return tr, tr.fit_report_


def test_fit_learns_above_chance_and_reports_metrics(trained: tuple[Trainer, dict]) -> None:
    _, res = trained
    v = res["valid"]
    assert v["click"]["auc"] > 0.58
    assert v["ctcvr"]["auc"] > 0.55
    assert v["dwell"]["rmse_log1p"] < 1.5
    assert 0 < v["ndcg@20"] <= 1
    assert res["n_valid"] > 0 and res["best_epoch"] >= 1


def test_deterministic_with_seed(events: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    imp, items = events
    sub = imp.iloc[:4000]
    a = Trainer(small_config(epochs=1)).fit(sub, items).fit_report_
    tr = Trainer(small_config(epochs=1)).fit(sub, items)
    assert a["valid"] == tr.fit_report_["valid"]
    # a second fit starts fresh (same result again); warm_start continues from the fitted weights
    assert tr.fit(sub, items).fit_report_["valid"] == a["valid"]
    tr.warm_start = True
    assert tr.fit(sub, items).fit_report_["valid"] != a["valid"]
    assert len(tr.history_) == 2


def test_checkpoint_round_trip_and_other_spec_refused(
    trained: tuple[Trainer, dict], tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    tr, _ = trained
    imp, items = events
    tr.save(tmp_path / "m", {"x": 1})
    back = Trainer.load(tmp_path / "m")
    np.testing.assert_allclose(
        back.predict(imp.iloc[:200], items)["score"], tr.predict(imp.iloc[:200], items)["score"]
    )
    other = tr.config.features.model_copy(
        update={"categorical": [*tr.config.features.categorical, CategoricalFeature(name="day", buckets=8)]}
    )
    with pytest.raises(DataError, match=r"another feature spec.*'day' only in the requested spec"):
        Trainer.load(tmp_path / "m", tr.config.model_copy(update={"features": other}))
    (tmp_path / "m" / "feature_spec.json").write_text(other.model_dump_json())
    with pytest.raises(DataError, match="disagrees"):
        Trainer.load(tmp_path / "m")
    with pytest.raises(DataError, match="not a ranker checkpoint"):
        Trainer.load(tmp_path / "nothing")


def test_reads_duckdb_and_parquet(events: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    imp, items = events
    db = tmp_path / "ev.duckdb"
    with duckdb.connect(str(db)) as con:
        con.register("i", imp.iloc[:2000])
        con.register("it", items)
        con.execute("CREATE TABLE impressions AS SELECT * FROM i")
        con.execute("CREATE TABLE items AS SELECT * FROM it")
    df = load_events(db)
    assert len(df) == 2000 and "clickbait_score" in df.columns and "hour" in df.columns
    assert len(load_events(db, since_event_id=999)) == 1000
    pq = tmp_path / "pq"
    pq.mkdir()
    imp.iloc[:2000].to_parquet(pq / "impressions.parquet")
    items.to_parquet(pq / "items.parquet")
    df2 = load_events(pq)
    pd.testing.assert_series_equal(df2["clickbait_score"], df["clickbait_score"])


def with_clickbait(cfg: RankerConfig) -> RankerConfig:
    """``cfg`` whose model also reads the clickbait score (as a mitigation method makes it)."""
    dense = [*cfg.features.dense, DenseFeature(name="clickbait_score")]
    return cfg.model_copy(update={"features": cfg.features.model_copy(update={"dense": dense})})


def test_hooks_extra_loss_sample_weight_extra_module(events: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    imp, items = events
    tr = Trainer(with_clickbait(small_config(epochs=1, valid_fraction=0.0)))
    calls = {"loss": 0, "w": 0}
    made: dict = {}

    def hooks_for(model: torch.nn.Module) -> dict:
        head = torch.nn.Linear(model.backbone.out_dim, 1)
        made["head"], made["before"] = head, head.weight.detach().clone()

        def adv(out: dict, batch: dict) -> torch.Tensor:
            calls["loss"] += 1
            return ((head(model.encode(batch)).squeeze(-1) - batch["clickbait_score"]) ** 2).mean()

        return {"extra_losses": [adv], "extra_modules": [head]}

    def weight(batch: dict) -> torch.Tensor:
        calls["w"] += 1
        return 1.0 - 0.5 * batch["clickbait_score"]

    tr.fit(imp.iloc[:3000], items, sample_weight_fn=weight, hooks_for=hooks_for)
    assert calls["loss"] > 0 and calls["w"] > 0
    assert not torch.equal(made["before"], made["head"].weight)


def test_shallow_tower_training(events: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    imp, items = events
    cfg = with_clickbait(small_config(epochs=1)).model_copy(update={"shallow_tower": ShallowTowerConfig()})
    tr = Trainer(cfg).fit(imp.iloc[:4000], items)
    fresh = Trainer(cfg)
    with torch_seed(cfg.train.seed):
        fresh._init_model()  # the same seeded initial weights, untrained
    trained_w = [p for n, p in tr.model_.named_parameters() if n.startswith("shallow.")]
    init_w = [p for n, p in fresh.model_.named_parameters() if n.startswith("shallow.")]
    assert trained_w and any(not torch.equal(a, b) for a, b in zip(trained_w, init_w, strict=True))


# -- bad input ---------------------------------------------------------------------------------
def test_missing_columns(events: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    imp, items = events
    with pytest.raises(DataError, match=r"missing columns required by the feature spec: \['length'"):
        Trainer(small_config()).fit(imp.iloc[:500], items.drop(columns=["length"]))
    with pytest.raises(DataError, match=r"missing columns required by the feature spec: \['title'"):
        Trainer(small_config()).fit(imp.iloc[:500], items.drop(columns=["title"]))
    with pytest.raises(DataError, match=r"user-history features need the event columns \['topic'"):
        Trainer(small_config()).fit(imp.iloc[:500], items.drop(columns=["topic"]))
    with pytest.raises(DataError, match=r"missing outcome columns.*dwell_s"):
        Trainer(small_config()).fit(imp.iloc[:500].drop(columns=["dwell_s"]), items)


def test_wrong_dtypes(events: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    imp, items = events
    bad = items.assign(length=items["length"].astype(str))
    with pytest.raises(DataError, match=r"'length'.*must be numeric"):
        Trainer(small_config()).fit(imp.iloc[:500], bad)
    with pytest.raises(DataError, match=r"'title'.*must hold strings"):
        Trainer(small_config()).fit(imp.iloc[:500], items.assign(title=1.5))
    with pytest.raises(DataError, match=r"'position'.*must be integer"):
        Trainer(small_config()).fit(imp.iloc[:500].assign(position=0.5), items)
    with pytest.raises(DataError, match="'click' must be boolean"):
        Trainer(small_config()).fit(imp.iloc[:500].assign(click="yes"), items)


def test_nan_labels(events: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    imp, items = events
    bad = imp.iloc[:500].copy()
    bad["dwell_s"] = bad["dwell_s"].astype(float)
    bad.loc[bad.index[3], "dwell_s"] = np.nan
    with pytest.raises(DataError, match="'dwell_s' has 1 missing"):
        Trainer(small_config()).fit(bad, items)
    bad2 = imp.iloc[:500].astype({"conversion": "object"})
    bad2.loc[bad2.index[0], "conversion"] = None
    with pytest.raises(DataError, match="'conversion' has 1 missing"):
        Trainer(small_config()).fit(bad2, items)


def test_empty_event_set(events: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    imp, items = events
    with pytest.raises(DataError, match="empty"):
        Trainer(small_config()).fit(imp.iloc[:0], items)
    db = tmp_path / "empty.duckdb"
    with duckdb.connect(str(db)) as con:
        con.register("i", imp.iloc[:0])
        con.execute("CREATE TABLE impressions AS SELECT * FROM i")
    with pytest.raises(DataError, match="empty"):
        load_events(db)
    with pytest.raises(DataError, match="not found"):
        load_events(tmp_path / "nope.duckdb")


# -- labels and metrics ---------------------------------------------------------------------------
def test_bounced_click_is_not_a_success() -> None:
    df = pd.DataFrame(
        {
            "click": [True, True, True, False],
            "dwell_s": [60.0, 60.0, 5.0, 0.0],
            "bounce": [False, True, False, False],
            "conversion": [True, False, False, False],
        }
    )
    cfg = RankerConfig().labels.model_copy(
        update={"click_target": "long_click", "bounce_weight": 0.5, "conversion_weight": 2.0}
    )
    lab = make_labels(df, cfg)
    np.testing.assert_array_equal(lab["long"], [1, 0, 0, 0])
    np.testing.assert_array_equal(lab["y_click"], [1, 0, 0, 0])
    np.testing.assert_array_equal(lab["clicked"], [1, 1, 1, 0])
    np.testing.assert_allclose(lab["w"], [3.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(lab["y_dwell"], np.log1p([60, 60, 5, 0]), rtol=1e-6)


def test_ndcg_per_slate() -> None:
    slate = np.array([0, 0, 0, 1, 1, 2, 2])
    rel = np.array([0, 1, 0, 1, 0, 0, 0])
    perfect = ndcg_per_slate(slate, rel.astype(float), rel)
    assert perfect == pytest.approx(1.0)
    worst = ndcg_per_slate(slate, np.array([3, 1, 2, 0, 1, 0, 0.0]), rel)
    assert worst == pytest.approx(np.mean([1 / np.log2(4), 1 / np.log2(3)]))


def test_reads_the_event_store_class(events: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    from intentrank.store import PRODUCER_COLUMNS, EventStore

    imp, items = events
    path = tmp_path / "store.duckdb"
    with EventStore(path) as store:
        store.write_items(items)
        store.append_impressions(imp.iloc[:3000][list(PRODUCER_COLUMNS)])
        from_obj = load_events(store, since_event_id=999)
    from_path = load_events(path, since_event_id=999)
    assert len(from_obj) == len(from_path) == 2000
    np.testing.assert_allclose(from_obj["clickbait_score"], from_path["clickbait_score"])
