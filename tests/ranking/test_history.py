"""User-history features (point in time; logged frame and incremental state agree) and title n-grams."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.errors import DataError
from intentrank.ranking.candidates import CandidateFeatures
from intentrank.ranking.config import HISTORY_COLUMNS, RankerConfig, TextFeature
from intentrank.ranking.features import FeatureEncoder, text_ngrams, tokenize_texts
from intentrank.ranking.history import UserHistory, add_history_columns, history_features_for_events
from intentrank.ranking.models.multitask import MultiTaskRanker

from .conftest import make_events

WINDOW = 3_600.0


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    imp, items = make_events(n_users=40, n_items=200, n_slates=500, seed=3)
    return imp.merge(items, on="item_id", how="left")


def _replay(frame: pd.DataFrame, history: UserHistory) -> np.ndarray:
    """Serve the log window by window: features from the history, then feed it the window's events."""
    start = frame.groupby("session_id")["ts"].transform("min")
    window = np.floor(start / WINDOW).to_numpy()
    out = np.zeros((len(frame), len(HISTORY_COLUMNS)))
    for w in np.unique(window):
        m = window == w
        sub = frame[m]
        out[m] = history.features(sub["user_id"], sub["topic"], sub["ts"], sub["item_id"]).to_numpy()
        history.update(sub)
    return out


def test_logged_frame_and_incremental_history_agree(log: pd.DataFrame) -> None:
    logged = history_features_for_events(log, window_s=WINDOW)
    assert list(logged.columns) == list(HISTORY_COLUMNS)
    served = _replay(log, UserHistory())
    np.testing.assert_allclose(logged.to_numpy(), served, rtol=1e-12)
    assert (logged["user_topic_reads"] > 0).mean() > 0.1 and logged["user_active_days"].max() >= 3
    # the same with a history that already holds the first half (the online learner's case)
    half = np.floor(log["ts"].median() / WINDOW) * WINDOW
    start = log.groupby("session_id")["ts"].transform("min")
    early = (start < half).to_numpy()
    base = UserHistory().update(log[early])
    late = history_features_for_events(log[~early], window_s=WINDOW, base=base)
    np.testing.assert_allclose(late.to_numpy(), logged[~early].to_numpy(), rtol=1e-12)


def test_no_leakage_a_row_sees_only_earlier_sessions(log: pd.DataFrame) -> None:
    f = history_features_for_events(log)
    first = log.groupby("user_id")["ts"].transform("min").to_numpy() == log["ts"].to_numpy()
    assert (f.loc[first, ["user_clicks", "user_impressions", "user_active_days"]] == 0).all().all()
    assert (f.loc[first, "hours_since_last_click"] == 720.0).all()
    # outcomes of the last day change nothing before it; row order does not matter either
    later = log["ts"] >= 2 * 86_400
    flipped = log.assign(click=np.where(later, ~log["click"], log["click"]), bounce=False)
    g = history_features_for_events(flipped.assign(bounce=log["bounce"] & ~later))
    pd.testing.assert_frame_equal(f[~later.to_numpy()], g[~later.to_numpy()])
    perm = np.random.default_rng(0).permutation(len(log))
    shuffled = history_features_for_events(log.iloc[perm])
    np.testing.assert_allclose(shuffled.to_numpy(), f.to_numpy()[perm])
    # a click counts for its topic (all sessions of a user that come later see it)
    by_hand = log[(log["user_id"] == log["user_id"].iloc[-1]) & log["click"]]
    last = log.index[-1]
    sess = log["session_id"].iloc[-1]
    start = log.loc[log["session_id"] == sess, "ts"].min()
    n = int(((by_hand["ts"] < start) & (by_hand["topic"] == log["topic"].iloc[-1])).sum())
    assert f.loc[last, "user_topic_clicks"] == n


def test_trainer_fills_history_columns_and_serving_needs_a_history(log: pd.DataFrame) -> None:
    spec = RankerConfig().features
    out = add_history_columns(log, spec)
    assert set(HISTORY_COLUMNS) <= set(out.columns) and add_history_columns(out, spec) is out
    _, items = make_events(n_users=40, n_items=200, n_slates=1, seed=3)
    with pytest.raises(DataError, match="user-history columns"):
        CandidateFeatures(spec, items)
    rows = CandidateFeatures(spec, items, history=UserHistory().update(log))
    cat, dense = rows.encode(np.array([0, 1]), np.array([[0, 1], [2, 3]]), np.zeros(2), np.full(2, 4e5))
    assert cat.shape[0] == dense.shape[0] == 4 and rows.encode_text(np.array([[0, 1], [2, 3]])).shape == (
        4,
        64,
    )


def test_title_ngrams_hashed_padded_and_learned() -> None:
    f = TextFeature(name="title", buckets=1000, max_tokens=10)
    assert text_ngrams("Big  News!", f)[:3] == ["w:big", "w:news", "b:big news"]
    ids = tokenize_texts(np.array(["Big News", "big news", "", "Other"], dtype=object), f)
    assert ids.shape == (4, 10) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids[0], ids[1])  # case-insensitive
    assert (ids[2] == 0).all() and ((ids >= 0) & (ids < 1000)).all() and (ids[0] > 0).sum() == 10
    # the model reads the packed text; packed and named give the same outputs; titles change the output
    cfg = RankerConfig.model_validate({"features": {"categorical": [{"name": "item_id", "buckets": 50}],
                                                    "dense": [], "text": [f.model_dump()]}})  # fmt: skip
    model = MultiTaskRanker(cfg).eval()
    enc = FeatureEncoder(cfg.features)
    frame = pd.DataFrame({"item_id": [1, 1, 1], "title": ["Big News", "You won't believe", ""]})
    batch = enc.encode(frame)
    assert batch["text"].shape == (3, 10)
    idx, table = enc.encode_text_table(frame.iloc[[0, 1, 0, 2]])  # one table row per distinct title
    assert table.shape == (3, 10) and idx.tolist() == [0, 1, 0, 2]
    np.testing.assert_array_equal(table[idx], batch["text"].numpy()[[0, 1, 0, 2]])
    named = {"item_id": batch["item_id"], "title": batch["title"].clone()}
    a, b = model(batch), model(named)
    torch.testing.assert_close(a["click"], b["click"])
    assert len(set(a["click"].tolist())) == 3
    with pytest.raises(KeyError, match="text feature"):
        model({"item_id": batch["item_id"]})


@pytest.mark.parametrize(
    "method", ["plain_feature", "shallow_tower", "aux_loss", "downweight", "adversarial"]
)
def test_the_baseline_never_sees_clickbait_only_a_mitigation_adds_it(method: str) -> None:
    from intentrank.mitigation.pipeline import MitigationPlan

    base = RankerConfig()
    assert "clickbait_score" not in {f.source for f in base.features.dense}
    assert MitigationPlan([{"method": "heuristic"}]).ranker_config(base).features == base.features
    mitigated = MitigationPlan([{"method": method}]).ranker_config(base)
    assert "clickbait_score" in {f.source for f in mitigated.features.dense}
    assert mitigated.features.text == base.features.text


def test_history_sink_feeds_a_day_at_a_time(log: pd.DataFrame) -> None:
    import pyarrow as pa

    from intentrank.simulator.sinks import CollectSink, HistorySink

    _, items = make_events(n_users=40, n_items=200, n_slates=1, seed=3)
    imp = log.drop(columns=[c for c in items.columns if c != "item_id"])
    history, then = UserHistory(), CollectSink()
    sink = HistorySink(history, items, then=then)
    first, second = imp[imp["day"] == 0], imp[imp["day"] == 1]
    sink(pa.Table.from_pandas(first, preserve_index=False))
    assert history.events == 0 and len(then.batches) == 1  # nothing fed before the day ends
    sink.commit()
    assert history.events == len(first)
    sink(pa.Table.from_pandas(second, preserve_index=False))
    sink.commit()
    expected = UserHistory().update(log[log["day"] <= 1])
    users, topics, ts, item = log["user_id"], log["topic"], np.full(len(log), 3e5), log["item_id"]
    pd.testing.assert_frame_equal(
        history.features(users, topics, ts, item), expected.features(users, topics, ts, item)
    )


def test_item_and_topic_rates_are_point_in_time(log: pd.DataFrame) -> None:
    """The item's track record at an impression at time t counts the item's events (all users) before t:
    nothing at or after t (its own outcome included) changes it."""
    f = history_features_for_events(log)
    start = log.groupby("session_id")["ts"].transform("min").to_numpy()
    t = float(np.quantile(start, 0.6))
    at_or_after = start >= t
    flipped = log.assign(
        click=np.where(at_or_after, ~log["click"], log["click"]),
        bounce=np.where(at_or_after, False, log["bounce"]),
        dwell_s=np.where(at_or_after, 500.0, log["dwell_s"]),
    )
    g = history_features_for_events(flipped)
    pd.testing.assert_frame_equal(f[~at_or_after], g[~at_or_after])
    assert not f[at_or_after].equals(g[at_or_after])  # the flip shows later on
    # by hand: impressions and clicks of the row's item in sessions that started before the row's session
    rng = np.random.default_rng(1)
    item, click = log["item_id"].to_numpy(), log["click"].to_numpy()
    for r in rng.choice(len(log), 25, replace=False):
        before = (item == item[r]) & (start < start[r])
        assert f.at[r, "item_impressions"] == before.sum()
        assert f.at[r, "item_ctr"] == pytest.approx((click[before].sum() + 1) / (before.sum() + 20))
        mine = (log["user_id"].to_numpy() == log["user_id"].iloc[r]) & (log["topic"] == log["topic"].iloc[r])
        assert f.at[r, "user_topic_impressions"] == (mine & (start < start[r])).sum()
        read = (log["click"] & ~log["bounce"] & (log["dwell_s"] >= 30.0)).to_numpy()
        n_read, n_topic = (read & mine & (start < start[r])).sum(), (mine & (start < start[r])).sum()
        want = (n_read + 10 * 0.5 * f.at[r, "user_ctr"]) / (n_topic + 10)
        assert f.at[r, "user_topic_read_rate"] == pytest.approx(want)
        # the user × source counts: known once the item has a past impression (its source is then known)
        src = (log["user_id"].to_numpy() == log["user_id"].iloc[r]) & (log["source"] == log["source"].iloc[r])
        past = (src & (start < start[r])).to_numpy()
        n_src = past.sum() if before.sum() > 0 else 0
        assert f.at[r, "user_source_impressions"] == n_src
        user_ctr = f.at[r, "user_ctr"]
        clicks_src = click[past].sum() if before.sum() > 0 else 0
        assert f.at[r, "user_source_ctr"] == pytest.approx((clicks_src + 5 * user_ctr) / (n_src + 5))
    assert f["item_impressions"].max() > 20 and f["user_topic_ctr"].between(0, 1).all()
    assert f["user_source_impressions"].max() > 5 and f["user_source_ctr"].between(0, 1).all()
    assert f["item_read_rate"].between(0, 1).all() and f["item_bounce_rate"].between(0, 1).all()


def test_seed_items_carries_the_item_track_record_not_the_users(log: pd.DataFrame) -> None:
    full = UserHistory().update(log)
    seeded = UserHistory().seed_items(log)
    users, topics, items = log["user_id"], log["topic"], log["item_id"]
    ts = np.full(len(log), 4e5)
    a, b = full.features(users, topics, ts, items), seeded.features(users, topics, ts, items)
    item_cols = [c for c in HISTORY_COLUMNS if c.startswith("item_")]
    pd.testing.assert_frame_equal(a[item_cols], b[item_cols])
    assert len(seeded) == 0 and (b["user_impressions"] == 0).all()
    assert (b["user_source_impressions"] == 0).all()
    # a user's later events count against the seeded items' sources
    one = log[log["user_id"] == log["user_id"].iloc[0]]
    seeded.update(one)
    got = seeded.features(one["user_id"], one["topic"], np.full(len(one), 4e5), one["item_id"])
    assert (got["user_source_impressions"] > 0).all()
