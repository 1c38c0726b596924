"""`intentrank run`: the main job on the embedded defaults.

For now it scores every shipped headline with the default clickbait model and prints a JSON summary
(counts per category per dataset, mean score, throughput); later issues extend it into the end-to-end
experiment.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from intentrank.cli.common import user_errors


@user_errors
def run(config: Path | None = None) -> None:
    """Run the main job with the config file (default: the embedded defaults) and print a JSON summary."""
    import numpy as np

    from intentrank.clickbait import CATEGORIES, load_default_scorer
    from intentrank.config import load_config
    from intentrank.data.stop_clickbait import load_stop_clickbait
    from intentrank.data.webis import load_webis17

    cfg = load_config(config)
    t0 = time.perf_counter()
    scorer = load_default_scorer(cfg.clickbait)
    datasets = {
        "webis-clickbait-17": load_webis17()["post_text"].tolist(),
        "stop-clickbait": load_stop_clickbait()["title"].tolist(),
    }
    summary: dict[str, object] = {"model": scorer.backend_name, "datasets": {}}
    n_total, t_score = 0, 0.0
    for name, titles in datasets.items():
        t1 = time.perf_counter()
        scores = scorer.score(titles)
        t_score += time.perf_counter() - t1
        codes = scorer.categorize(scores)
        counts = np.bincount(codes, minlength=len(CATEGORIES))
        summary["datasets"][name] = {  # type: ignore[index]
            "titles": len(titles),
            "mean_score": round(float(scores.mean()), 4),
            "categories": {c: int(k) for c, k in zip(CATEGORIES, counts, strict=True)},
        }
        n_total += len(titles)
    summary["titles_per_second"] = round(n_total / max(t_score, 1e-9), 1)
    summary["score_cache"] = scorer.cache is not None
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    typer.echo(json.dumps(summary, indent=2))
