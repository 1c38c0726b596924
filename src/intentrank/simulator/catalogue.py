"""The item catalogue: real headlines with public features and hidden ground truth.

Public (written to the store, seen by rankers): ``ITEM_COLUMNS`` — id, title, topic, source,
publish time, length in words and the scorer's clickbait score ``c``.
Hidden (simulator only): ``true_clickbait`` from the datasets' human labels (Webis-17 ``truth_mean``
plus a little noise; Stop-Clickbait's 0/1 label mapped to a graded value drawn from a Beta per class),
so the scorer's errors matter as they would in production, and ``quality``, negatively correlated
with true clickbait but with its own noise (some clickbait keeps readers).
Scores are cached in a Parquet file keyed by the scorer's model hash and the titles' hash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from intentrank.clickbait.categories import categorize
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.scorer import title_keys
from intentrank.errors import DataError, IntentRankError
from intentrank.simulator.config import CatalogueConfig
from intentrank.simulator.topics import TOPIC_KEYWORDS, TOPICS, assign_topics
from intentrank.store.schema import ITEM_COLUMNS

ScoreFn = Callable[[Sequence[str]], np.ndarray]

#: Pseudo-outlets per source class (the datasets do not say which outlet wrote each headline).
OUTLETS: dict[str, tuple[str, ...]] = {
    "viral": (
        "viral-1",
        "viral-2",
        "viral-3",
        "viral-4",
        "viral-5",
        "viral-6",
    ),  # Stop-Clickbait, clickbait class
    "news": ("news-1", "news-2", "news-3", "news-4"),  # Stop-Clickbait, news class (WikiNews, NYT, ...)
    "social": tuple(f"social-{i}" for i in range(1, 11)),  # Webis-17: news publishers' tweets
}
DAY_S = 86_400.0


@dataclass
class Catalogue:
    """Items as a public DataFrame plus NumPy arrays per column; hidden truth kept apart."""

    items: pd.DataFrame  # ITEM_COLUMNS, item_id == row index 0..n-1
    true_clickbait: np.ndarray  # hidden, float64 in [0, 1]
    quality: np.ndarray  # hidden, float64 in [0, 1]
    topic_names: tuple[str, ...] = TOPICS
    #: hidden: when each item retires (seconds since the run's epoch); None = never (static catalogue)
    retire_ts: np.ndarray | None = None
    #: hidden: True where a pool title was published again because the pool ran out
    is_variant: np.ndarray | None = None
    clickbait_score: np.ndarray = field(init=False)
    topic_id: np.ndarray = field(init=False)
    category: np.ndarray = field(init=False)  # int8 non/light/heavy of the scorer's score

    def __post_init__(self) -> None:
        n = len(self.items)
        if list(self.items.columns) != list(ITEM_COLUMNS):
            raise DataError(
                f"catalogue items must have columns {list(ITEM_COLUMNS)}, got {list(self.items.columns)}"
            )
        if n == 0:
            raise DataError("the catalogue is empty")
        if not np.array_equal(self.items["item_id"].to_numpy(), np.arange(n)):
            raise DataError("catalogue item_id must be 0..n-1 in row order")
        for name, arr in (("true_clickbait", self.true_clickbait), ("quality", self.quality)):
            if arr.shape != (n,) or not np.all((arr >= 0) & (arr <= 1)):
                raise DataError(f"catalogue {name} must be {n} values in [0, 1]")
        if self.retire_ts is not None and self.retire_ts.shape != (n,):
            raise DataError(f"catalogue retire_ts must have {n} values")
        self.items.index = pd.RangeIndex(n, name=None)
        self.publish_ts64 = self.items["publish_ts"].to_numpy(np.float64)
        self.clickbait_score = self.items["clickbait_score"].to_numpy(np.float64)
        codes = {name: i for i, name in enumerate(self.topic_names)}
        self.topic_id = self.items["topic"].map(codes).to_numpy(np.int16)
        if np.any(self.topic_id < 0):
            raise DataError("catalogue has a topic outside topic_names")
        self.category = categorize(self.clickbait_score)
        # float32 copies for the simulator's hot path
        self.true_clickbait32 = self.true_clickbait.astype(np.float32)
        self.quality32 = self.quality.astype(np.float32)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def n_topics(self) -> int:
        return len(self.topic_names)

    @property
    def living(self) -> bool:
        """True for a living catalogue (items retire)."""
        return self.retire_ts is not None

    def live_at(self, t: float) -> np.ndarray:
        """Ids of the items live at time ``t``: published at or before it and not yet retired (all items
        of a static catalogue)."""
        if self.retire_ts is None:
            return np.arange(len(self), dtype=np.int64)
        return np.flatnonzero((self.publish_ts64 <= t) & (self.retire_ts > t)).astype(np.int64)

    @property
    def item_id(self) -> np.ndarray:
        return self.items["item_id"].to_numpy(np.int64)

    @property
    def source(self) -> np.ndarray:
        return self.items["source"].to_numpy()

    @property
    def publish_ts(self) -> np.ndarray:
        return self.items["publish_ts"].to_numpy(np.float64)

    @property
    def length(self) -> np.ndarray:
        return self.items["length"].to_numpy(np.int32)


# -- sources -------------------------------------------------------------------------------------
def load_headlines() -> pd.DataFrame:
    """All shipped headlines: ``title``, ``dataset``, ``label`` (0/1), ``truth_mean`` (NaN: Stop-Clickbait).

    Empty titles and exact duplicates (first kept) are dropped so item ids stay meaningful.
    """
    from intentrank.data.stop_clickbait import load_stop_clickbait
    from intentrank.data.webis import load_webis17

    sc = load_stop_clickbait()
    wb = load_webis17()
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "title": sc["title"],
                    "dataset": "stop-clickbait",
                    "label": sc["label"].astype(np.int8),
                    "truth_mean": np.nan,
                }
            ),
            pd.DataFrame(
                {
                    "title": wb["post_text"].str.strip(),
                    "dataset": "webis-17",
                    "label": wb["click_bait"].astype(np.int8),
                    "truth_mean": wb["truth_mean"],
                }
            ),
        ],
        ignore_index=True,
    )
    df = df[df["title"].str.len() > 0]
    df = df.drop_duplicates("title", keep="first").reset_index(drop=True)
    return df


def _titles_hash(titles: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in titles:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def default_scorer_key(config: ClickbaitConfig | None = None) -> str:
    """Hash of the files of the clickbait model ``config`` selects (``clickbait.model`` /
    ``clickbait.model_dir``; the cache key of the scores it produced)."""
    from intentrank.clickbait.scorer import default_model_dir

    directory = default_model_dir(config)
    h = hashlib.sha256()
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(directory).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_root(config: CatalogueConfig) -> Path:
    """The catalogue cache directory."""
    if config.cache_dir:
        return Path(config.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "intentrank" / "catalogue"


def _cached_column(
    name: str, key: str | None, n: int, compute: Callable[[], np.ndarray], config: CatalogueConfig
) -> np.ndarray:
    """Column ``name`` (n values) read from the cache file for ``key``, or computed and cached."""
    path = None if key is None else cache_root(config) / f"{name}-{key}.parquet"
    if path is not None and path.is_file():
        try:
            col = pq.read_table(path).column(name).to_numpy()
            if col.shape == (n,):
                return col
        except (OSError, pa.ArrowInvalid, KeyError):
            pass  # a corrupt cache entry is rebuilt
    col = compute()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            pq.write_table(pa.table({name: col}), tmp)
            tmp.replace(path)  # atomic: readers never see a half-written cache file
        except OSError:
            pass  # caching is an optimisation; a read-only cache dir is fine
    return col


def score_titles_cached(
    titles: Sequence[str], score_fn: ScoreFn, key: str | None, config: CatalogueConfig
) -> np.ndarray:
    """Scores of ``titles`` by ``score_fn``, read from / written to the cache when ``key`` is given."""

    def compute() -> np.ndarray:
        scores = np.asarray(score_fn(titles), dtype=np.float64)
        if scores.shape != (len(titles),) or not np.all(np.isfinite(scores)):
            raise IntentRankError(
                f"the clickbait scorer returned shape {scores.shape} or non-finite values "
                f"for {len(titles)} titles"
            )
        if np.any((scores < 0) | (scores > 1)):
            raise IntentRankError("the clickbait scorer returned scores outside [0, 1]")
        return scores

    full_key = None if key is None else f"{key}-{_titles_hash(titles)}"
    return _cached_column("clickbait_score", full_key, len(titles), compute, config).astype(np.float64)


def topics_cached(titles: Sequence[str], config: CatalogueConfig) -> np.ndarray:
    """Topic ids of ``titles`` (cached by the titles' and the lexicon's hash)."""
    lexicon = hashlib.sha256(repr(TOPIC_KEYWORDS).encode()).hexdigest()[:12]
    key = f"{lexicon}-{_titles_hash(titles)}"
    return _cached_column("topic_id", key, len(titles), lambda: assign_topics(titles), config).astype(
        np.int16
    )


# -- building ------------------------------------------------------------------------------------
def hidden_truth(
    dataset: np.ndarray,
    label: np.ndarray,
    truth_mean: np.ndarray,
    config: CatalogueConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(true_clickbait, quality) from human labels; see the module docstring and docs/simulator.md."""
    n = len(dataset)
    b = np.empty(n, dtype=np.float64)
    webis = dataset == "webis-17"
    b[webis] = np.clip(truth_mean[webis] + rng.normal(0.0, config.webis_noise_sd, webis.sum()), 0.0, 1.0)
    pos = ~webis & (label == 1)
    neg = ~webis & (label != 1)
    b[pos] = rng.beta(*config.stop_clickbait_positive_beta, size=pos.sum())
    b[neg] = rng.beta(*config.stop_clickbait_negative_beta, size=neg.sum())
    logit = (
        config.quality_intercept
        - config.quality_clickbait_slope * b
        + rng.normal(0.0, config.quality_noise_sd, n)
    )
    quality = 1.0 / (1.0 + np.exp(-logit))
    return b, quality


def build_catalogue(
    scorer: Any | ScoreFn | None = None,
    config: CatalogueConfig | None = None,
    seed: int = 0,
    scorer_key: str | None = None,
    headlines: pd.DataFrame | None = None,
    clickbait: ClickbaitConfig | None = None,
) -> Catalogue:
    """Catalogue of the shipped headlines (or ``headlines``: title, dataset, label, truth_mean).

    ``scorer``: an object with ``.score(titles)`` or a plain function titles -> scores; ``None`` loads the
    model the ``clickbait`` config selects (``clickbait.model`` / ``model_dir``, through
    ``load_default_scorer``) and caches its scores by the model's hash. A custom scorer is cached only
    when ``scorer_key`` names it.
    """
    cfg = config or CatalogueConfig()
    df = load_headlines() if headlines is None else headlines.reset_index(drop=True)
    for col in ("title", "dataset", "label", "truth_mean"):
        if col not in df.columns:
            raise DataError(f"headlines: missing column {col!r}")
    titles = df["title"].astype(str).tolist()
    if scorer is None:

        def score_fn(t: Sequence[str]) -> np.ndarray:  # the model is loaded only on a cache miss
            from intentrank.clickbait import load_default_scorer

            return load_default_scorer(clickbait).score(t)

        scorer_key = scorer_key or f"default-{default_scorer_key(clickbait)}"
    else:
        score_fn = scorer.score if hasattr(scorer, "score") else scorer
    scores = score_titles_cached(titles, score_fn, scorer_key, cfg)

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA7A]))
    dataset = df["dataset"].to_numpy()
    label = df["label"].to_numpy()
    b, quality = hidden_truth(dataset, label, df["truth_mean"].to_numpy(np.float64), cfg, rng)
    topics = topics_cached(titles, cfg)

    h = title_keys(titles)  # stable 64-bit hash per title (process-independent)
    cls = np.where(dataset == "webis-17", "social", np.where(label == 1, "viral", "news"))
    source = np.empty(len(df), dtype=object)
    for name, outlets in OUTLETS.items():
        m = cls == name
        source[m] = np.asarray(outlets, dtype=object)[(h[m] % np.uint64(len(outlets))).astype(np.int64)]
    publish = -rng.uniform(0.0, cfg.publish_window_days * DAY_S, len(df))
    items = pd.DataFrame(
        {
            "item_id": np.arange(len(df), dtype=np.int64),
            "title": titles,
            "topic": np.asarray(TOPICS, dtype=object)[topics],
            "source": source,
            "publish_ts": publish,
            "length": np.fromiter((len(t.split()) for t in titles), dtype=np.int32, count=len(titles)),
            "clickbait_score": scores,
        }
    )
    return Catalogue(items=items, true_clickbait=b, quality=quality)


def synthetic_catalogue(n_items: int, seed: int = 0, config: CatalogueConfig | None = None) -> Catalogue:
    """A catalogue of ``n_items`` synthetic items (no titles to score): for benchmarks and tests.

    True clickbait ~ Beta(1.2, 2.5); the scorer's ``c`` is the truth plus N(0, 0.1) noise, clipped.
    """
    if n_items < 1:
        raise IntentRankError(f"n_items must be at least 1, got {n_items}")
    cfg = config or CatalogueConfig()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A7]))
    b = rng.beta(1.2, 2.5, n_items)
    logit = (
        cfg.quality_intercept
        - cfg.quality_clickbait_slope * b
        + rng.normal(0.0, cfg.quality_noise_sd, n_items)
    )
    quality = 1.0 / (1.0 + np.exp(-logit))
    topics = rng.integers(0, len(TOPICS), n_items)
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items, dtype=np.int64),
            "title": [f"synthetic item {i}" for i in range(n_items)],
            "topic": np.asarray(TOPICS, dtype=object)[topics],
            "source": np.asarray(OUTLETS["news"] + OUTLETS["viral"], dtype=object)[
                rng.integers(0, 10, n_items)
            ],
            "publish_ts": -rng.uniform(0.0, cfg.publish_window_days * DAY_S, n_items),
            "length": rng.integers(4, 16, n_items).astype(np.int32),
            "clickbait_score": np.clip(b + rng.normal(0, 0.1, n_items), 0.0, 1.0),
        }
    )
    return Catalogue(items=items, true_clickbait=b, quality=quality)


def extend_catalogue(catalogue: Catalogue, n_items: int, seed: int = 0) -> Catalogue:
    """The catalogue padded with synthetic items up to ``n_items`` (benchmarks at a fixed size)."""
    extra = n_items - len(catalogue)
    if extra <= 0:
        return catalogue
    syn = synthetic_catalogue(extra, seed)
    items = syn.items.copy()
    items["item_id"] += len(catalogue)
    return Catalogue(
        items=pd.concat([catalogue.items, items], ignore_index=True),
        true_clickbait=np.concatenate([catalogue.true_clickbait, syn.true_clickbait]),
        quality=np.concatenate([catalogue.quality, syn.quality]),
    )
