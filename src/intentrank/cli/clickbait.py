"""`intentrank clickbait score | train | eval`: the clickbait title scorer from the command line."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from intentrank.cli.common import binary_stdout, check_output_dir, open_input, user_errors, write_out
from intentrank.errors import IntentRankError

clickbait_app = typer.Typer(
    help="Score titles for clickbait, train and evaluate the scorer.", no_args_is_help=True
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="intentrank config file (YAML/JSON).")]
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Model directory; default: clickbait.model_dir or the shipped one."),
]


#: the largest line kept whole; longer lines are cut (titles are scored on their first ``max_chars``)
MAX_LINE_BYTES = 1 << 20


class TitleReader:
    """Titles from a binary stream, one per line, in chunks: memory bounded by the chunk, not the input.

    Lines split on ``\\n`` only; trailing ``\\r`` (CRLF files) is dropped; an empty line is an empty
    title (scored ``empty_score``). Chunks grow from 1 line to ``max_lines`` (or ``max_bytes``), so the
    first results appear at once and a closed pipe is noticed early. Invalid UTF-8 raises IntentRankError
    naming the line, or with ``replace`` becomes U+FFFD (counted in ``replaced``). Lines longer than
    ``MAX_LINE_BYTES`` keep their first ``MAX_LINE_BYTES`` (counted in ``cut``).
    """

    def __init__(
        self, stream: BinaryIO, name: str, replace: bool = False, max_lines: int = 2048,
        max_bytes: int = 8 << 20,
    ) -> None:  # fmt: skip
        self.stream, self.name, self.replace = stream, name, replace
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self.lines = self.bytes = 0
        self.replaced: list[int] = []  # line numbers with invalid UTF-8 (replace mode)
        self.cut: list[int] = []  # line numbers longer than MAX_LINE_BYTES

    def _line(self) -> bytes | None:
        raw = self.stream.readline(MAX_LINE_BYTES)
        if not raw:
            return None
        self.lines += 1
        self.bytes += len(raw)
        if raw.endswith(b"\n"):
            return raw[:-1]
        rest = self.stream.readline(MAX_LINE_BYTES) if len(raw) == MAX_LINE_BYTES else b""
        if rest:  # skip the rest of an over-long line without holding it
            self.cut.append(self.lines)
            while rest:
                self.bytes += len(rest)
                if rest.endswith(b"\n"):
                    break
                rest = self.stream.readline(MAX_LINE_BYTES)
            return _whole_chars(raw)
        return raw

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            if not self.replace:
                raise IntentRankError(
                    f"{self.name}:{self.lines}: invalid UTF-8 ({err.reason} at byte {err.start}); the lines"
                    " before it were scored; --replace-invalid scores such lines with U+FFFD for bad bytes"
                ) from None
            self.replaced.append(self.lines)
            return raw.decode("utf-8", "replace").rstrip("\r")

    def __iter__(self) -> Iterator[list[str]]:
        chunk: list[str] = []
        size, nbytes = 1, 0
        while (raw := self._line()) is not None:
            try:
                chunk.append(self._decode(raw))
            except IntentRankError:
                if chunk:  # the lines before the bad one are scored and written first
                    yield chunk
                raise
            nbytes += len(raw)
            if len(chunk) >= size or nbytes >= self.max_bytes:
                yield chunk
                chunk, nbytes, size = [], 0, min(2 * size, self.max_lines)
        if chunk:
            yield chunk

    def notes(self) -> list[str]:
        """Warnings for stderr about replaced bytes and cut lines (empty when there were none)."""

        def lines(ns: list[int]) -> str:
            return ", ".join(map(str, ns[:5])) + (", ..." if len(ns) > 5 else "")

        out = []
        if self.replaced:
            out.append(f"{self.name}: invalid UTF-8 replaced by U+FFFD in {len(self.replaced)} line(s): "
                       f"{lines(self.replaced)}")  # fmt: skip
        if self.cut:
            out.append(f"{self.name}: {len(self.cut)} line(s) longer than {MAX_LINE_BYTES} bytes cut to "
                       f"that length: {lines(self.cut)}")  # fmt: skip
        return out


def _whole_chars(raw: bytes) -> bytes:
    """``raw`` without a UTF-8 character left incomplete at its end by a cut."""
    for k in range(1, min(4, len(raw)) + 1):
        b = raw[-k]
        if b < 0x80:  # ASCII: the end is whole
            return raw
        if b >= 0xC0:  # lead byte of a k-byte tail: whole if the sequence needs no more than k bytes
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return raw if k >= need else raw[:-k]
    return raw


def _name(source: str) -> str:
    return "<stdin>" if source == "-" else source


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
    replace_invalid: Annotated[
        bool, typer.Option("--replace-invalid", help="Score lines with invalid UTF-8 (bad bytes -> U+FFFD).")
    ] = False,
) -> None:
    """Score titles: one JSON object per input line, {"title", "score", "category"}, to stdout.

    Streams: reads and scores in chunks and writes each chunk's lines at once (memory does not grow with
    the input); a progress bar on stderr when it is a terminal and the run takes more than 2 s.
    """
    from tqdm import tqdm

    out = binary_stdout()
    with open_input(file) as stream:
        reader = TitleReader(stream, _name(file), replace_invalid)
        total = _size(stream)
        scorer = None
        with tqdm(total=total, unit="B", unit_scale=True, desc="scoring", disable=None, delay=2.0,
                  file=sys.stderr) as bar:  # fmt: skip
            for titles in reader:
                if scorer is None:  # loaded only when there is something to score
                    scorer, _ = _load(model, config)
                scores = scorer.score(titles)
                cats = scorer.category_names(scores)
                write_out(out, "".join(
                    json.dumps({"title": t, "score": round(float(s), 6), "category": c}, ensure_ascii=False)
                    + "\n" for t, s, c in zip(titles, scores, cats, strict=True)
                ))  # fmt: skip
                bar.update(reader.bytes - bar.n)
                bar.set_postfix(titles=reader.lines, refresh=False)
    for note in reader.notes():
        print(f"warning: {note}", file=sys.stderr)


def _size(stream: BinaryIO) -> int | None:
    """Byte size of a regular file (for the progress bar's ETA); None for pipes, FIFOs and terminals."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


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

    check_output_dir(out, "--out")
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
