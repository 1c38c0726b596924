"""`intentrank clickbait score | train | eval`: the clickbait title scorer from the command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from intentrank.cli.common import user_errors
from intentrank.errors import IntentRankError

clickbait_app = typer.Typer(
    help="Score titles for clickbait, train and evaluate the scorer.", no_args_is_help=True
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="intentrank config file (YAML/JSON).")]
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Model directory; default: clickbait.model_dir or the shipped one."),
]


def read_titles(source: str) -> list[str]:
    """Titles from a file (or ``-`` = stdin), one per line, UTF-8 strictly.

    An empty line is an empty title (it gets the model's ``empty_score``); an empty file gives no titles.
    Invalid UTF-8 raises IntentRankError naming the file and line.
    """
    name = "<stdin>" if source == "-" else source
    if source == "-":
        raw = sys.stdin.buffer.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise IntentRankError(f"input file not found: {path}")
        raw = path.read_bytes()
    if not raw:
        return []
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for i, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise IntentRankError(f"{name}:{i}: invalid UTF-8 ({err.reason} at byte {err.start})") from None
    return out


def _load(model: Path | None, config: Path | None):  # -> ClickbaitScorer
    from intentrank.clickbait.scorer import ClickbaitScorer, load_default_scorer
    from intentrank.config import load_config

    cfg = load_config(config).clickbait
    return ClickbaitScorer.load(model, cfg) if model is not None else load_default_scorer(cfg), cfg


@clickbait_app.command("score")
@user_errors
def score(
    file: Annotated[str, typer.Argument(help="File with one title per line, or - for stdin.")] = "-",
    model: ModelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Score titles: one JSON object per input line, {"title", "score", "category"}, to stdout."""
    titles = read_titles(file)
    if not titles:
        return
    scorer, _ = _load(model, config)
    scores = scorer.score(titles)
    cats = scorer.category_names(scores)
    out = sys.stdout
    for t, s, c in zip(titles, scores, cats, strict=True):
        out.write(
            json.dumps({"title": t, "score": round(float(s), 6), "category": c}, ensure_ascii=False) + "\n"
        )


@clickbait_app.command("train")
@user_errors
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the trained model to.")] = Path(
        "runs/clickbait-model"
    ),
    backend: Annotated[
        str | None, typer.Option("--backend", "-b", help="lexical, semantic, finetuned or ensemble.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Train a scorer on the training 80% of both shipped datasets and write it to --out (JSON summary)."""
    from intentrank.clickbait.training import train_scorer
    from intentrank.config import load_config

    cfg = load_config(config).clickbait
    t0 = time.perf_counter()
    scorer = train_scorer(cfg, backend)
    scorer.save(out)
    typer.echo(json.dumps({"model_dir": str(out), "backend": scorer.backend_name,
                           "seconds": round(time.perf_counter() - t0, 1)}))  # fmt: skip


@clickbait_app.command("eval")
@user_errors
def evaluate(model: ModelOpt = None, config: ConfigOpt = None) -> None:
    """Metrics of a model on the held-out 20% of Webis-17 and of Stop Clickbait (JSON)."""
    from intentrank.clickbait.training import evaluate as run_eval

    scorer, cfg = _load(model, config)
    scorer.use_cache = False
    t0 = time.perf_counter()
    metrics = run_eval(scorer, cfg)
    metrics["backend"] = scorer.backend_name
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    typer.echo(json.dumps(metrics, indent=2))
