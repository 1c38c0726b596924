"""The main job end to end at toy scale: log → store → train → A/B with an A/A arm → result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.config import load_config
from intentrank.experiments.main_job import ARMS, run_main_job
from intentrank.ranking.events import load_events
from intentrank.ranking.trainer import Trainer
from intentrank.store import EventStore

TINY = {
    "experiment": {"log_users": 150, "log_days": 2, "ab_users": 160, "ab_days": 1},
    "simulator": {"candidates": 40, "max_slates": 3},
    "ranker": {"train": {"progress": False, "epochs": 1}},
}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run")
    return run_main_job(load_config(None, overrides=TINY), out)


def test_log_lands_in_the_store_and_splits_by_day(result) -> None:
    with EventStore(result.out_dir / "events.duckdb", read_only=True) as store:
        assert store.count() == result.log["events"] > 0
    assert result.log["train_events"] + result.log["held_out_events"] == result.log["events"]
    assert result.log["held_out_events"] > 0


def test_every_arm_gets_users_and_a_comparison(result) -> None:
    summary = result.summary()
    assert list(summary["arms"]) == list(ARMS)
    assert sum(a["users"] for a in summary["arms"].values()) == 160
    assert set(result.comparisons) == set(ARMS[1:])
    for table in result.comparisons.values():
        assert {"ctr", "conversions", "impressions_heavy"} <= set(table["metric"])
    # a stable-hash split of 160 users into 4 arms: no sample-ratio mismatch
    assert summary["srm"]["p_value"] > 0.001 and not summary["srm"]["mismatch"]


def test_held_out_metrics_and_files(result) -> None:
    held = result.training["held_out"]
    # the reported held-out AUC is what the saved model gives on the held-out day of the job's own run
    events = load_events(result.out_dir / "events.duckdb")
    last = events[events["day"] == events["day"].max()]
    again = Trainer.load(result.out_dir / "model").evaluate(last)
    assert held["click"]["auc"] == pytest.approx(again["click"]["auc"], abs=1e-4)
    saved = json.loads((result.out_dir / "summary.json").read_text())
    assert saved["log"] == result.log
    assert (result.out_dir / "model").is_dir()
    assert (result.out_dir / "per_user_kpis.parquet").is_file()
    assert (result.out_dir / "compare_intent_vs_control.csv").is_file()


def test_mitigated_arm_shows_no_more_heavy_clickbait_than_intent(result) -> None:
    # the default mitigation (heuristic post-processing) only ever lowers heavy items' scores
    arms = result.summary()["arms"]
    intent, mitigated = arms["intent"], arms["intent_mitigated"]
    share = lambda a: a["impressions_heavy_per_user"] / max(a["impressions_per_user"], 1e-9)  # noqa: E731
    assert share(mitigated) <= share(intent) + 0.02


def test_cli_rejects_a_bad_config_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment:\n  log_days: 1\n")
    res = CliRunner().invoke(app, ["run", "--config", str(bad)])
    assert res.exit_code == 2
    assert "experiment.log_days" in res.output


def test_an_existing_store_is_kept_and_the_job_trains_on_its_own_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --out DIR` never deletes DIR/events.duckdb: it appends a run (a failed one is marked failed)."""
    import intentrank.experiments.main_job as job
    from intentrank.errors import ConfigError
    from tests.store.test_event_store import events

    store_path = tmp_path / "events.duckdb"
    with EventStore(store_path) as store, store.begin_run(config_hash="earlier") as run:
        run.append(events(500))
    real_simulate = job.simulate

    def fails_after_a_batch(policy, cfg, seed, catalogue, sink):
        real_simulate(policy, cfg.model_copy(update={"days": 1}), seed=seed, catalogue=catalogue, sink=sink)
        raise ConfigError("a bad setting found late")

    monkeypatch.setattr(job, "simulate", fails_after_a_batch)
    with pytest.raises(ConfigError):
        run_main_job(load_config(None, overrides=TINY), tmp_path)
    with EventStore(store_path, read_only=True) as store:
        assert store.runs()["status"].tolist() == ["complete", "failed"]
        assert store.count() == 500
    monkeypatch.setattr(job, "simulate", real_simulate)
    result = run_main_job(load_config(None, overrides=TINY), tmp_path)
    with EventStore(store_path, read_only=True) as store:
        runs = store.runs()
        assert runs["status"].tolist() == ["complete", "failed", "complete"]
        assert result.log["events"] == store.count(runs=[2]) == store.count() - 500
