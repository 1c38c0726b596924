"""Training data, fixed-seed held-out splits, training and evaluation of the clickbait scorer.

Splits (all from ``config.seed``): 20% of Webis-17 and 20% of Stop Clickbait are held out for
evaluation only (never trained on, never used for model selection). Of the remaining 80%, a
``val_fraction`` share is the validation split (ensemble weights, hyperparameter choice).

Scale: the regression target is Webis-17 ``truth_mean``. Stop Clickbait's binary labels join as extra
targets mapped to the Webis training part's mean ``truth_mean`` of each class, so the score stays on
the graded Webis scale while the model also learns the headline style of the second dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.scorer import ClickbaitScorer


@dataclass(frozen=True)
class Split:
    """Index arrays into a dataset: ``train`` (the 80%, ``fit`` + ``val``) and ``test`` (held out)."""

    fit: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def train(self) -> np.ndarray:
        return np.sort(np.concatenate([self.fit, self.val]))


def make_split(n: int, seed: int, test_fraction: float, val_fraction: float) -> Split:
    """Deterministic random split of ``n`` rows."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    n_val = round((n - n_test) * val_fraction)
    return Split(
        fit=np.sort(perm[n_test + n_val :]),
        val=np.sort(perm[n_test : n_test + n_val]),
        test=np.sort(perm[:n_test]),
    )


@dataclass
class Corpus:
    """Both datasets with their splits."""

    webis_titles: list[str]
    webis_mean: np.ndarray
    webis_label: np.ndarray
    stop_titles: list[str]
    stop_label: np.ndarray
    webis_split: Split
    stop_split: Split


def load_corpus(config: ClickbaitConfig) -> Corpus:
    """Load the shipped datasets and split them with ``config.seed``."""
    from intentrank.data.stop_clickbait import load_stop_clickbait
    from intentrank.data.webis import load_webis17

    w = load_webis17()
    s = load_stop_clickbait()
    return Corpus(
        webis_titles=w["post_text"].tolist(),
        webis_mean=w["truth_mean"].to_numpy(np.float64),
        webis_label=w["click_bait"].to_numpy(np.int8),
        stop_titles=s["title"].tolist(),
        stop_label=s["label"].to_numpy(np.int8),
        webis_split=make_split(len(w), config.seed, config.test_fraction, config.val_fraction),
        stop_split=make_split(len(s), config.seed + 1, config.test_fraction, config.val_fraction),
    )


@dataclass
class TrainingSet:
    """Titles, targets, weights and source (0 = Webis, 1 = Stop Clickbait) of rows used for training."""

    titles: list[str]
    y: np.ndarray
    w: np.ndarray
    source: np.ndarray


def class_means(corpus: Corpus) -> tuple[float, float]:
    """Mean Webis truth_mean of non-clickbait and clickbait posts, on the Webis training part only."""
    idx = corpus.webis_split.train
    m, lab = corpus.webis_mean[idx], corpus.webis_label[idx]
    return float(m[lab == 0].mean()), float(m[lab == 1].mean())


def training_set(corpus: Corpus, config: ClickbaitConfig, part: str = "train") -> TrainingSet:
    """Rows of ``part`` (train, fit or val) of both datasets, with Stop labels mapped to Webis class means."""
    wi = getattr(corpus.webis_split, part)
    si = getattr(corpus.stop_split, part)
    lo, hi = class_means(corpus)
    titles = [corpus.webis_titles[i] for i in wi] + [corpus.stop_titles[i] for i in si]
    y = np.concatenate([corpus.webis_mean[wi], np.where(corpus.stop_label[si] == 1, hi, lo)])
    w = np.concatenate([np.ones(len(wi)), np.full(len(si), config.stop_weight)])
    src = np.concatenate([np.zeros(len(wi), np.int8), np.ones(len(si), np.int8)])
    return TrainingSet(titles, y, w, src)


def train_scorer(
    config: ClickbaitConfig, backend: str | None = None, corpus: Corpus | None = None
) -> ClickbaitScorer:
    """Fit a scorer of ``backend`` (default ``config.backend``) on the training 80% of both datasets."""
    name = backend or config.backend
    if name == "finetuned" or (name == "ensemble" and "finetuned" in config.ensemble_members):
        from intentrank.clickbait.finetune import require_finetune_runtime

        require_finetune_runtime(name, config.finetune_on_cpu)
    corpus = corpus or load_corpus(config)
    scorer = ClickbaitScorer(name, config)
    data = training_set(corpus, config, "train")
    scorer.fit(data.titles, data.y, data.w, binary=data.source == 1)
    scorer.info = {
        "trained_on": "80% of webis-clickbait-17 + 80% of stop-clickbait",
        "seed": config.seed,
        "stop_weight": config.stop_weight,
        "class_means": list(class_means(corpus)),
    }
    return scorer


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC-AUC of scores ``s`` against binary labels ``y`` (ties get half credit)."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    r = rankdata(s)
    n1, n0 = y.sum(), (~y).sum()
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def evaluate(
    scorer: ClickbaitScorer, config: ClickbaitConfig, corpus: Corpus | None = None
) -> dict[str, float]:
    """Metrics on the held-out 20% of each dataset; Stop Clickbait titles are lower-cased before scoring.

    (The scorer's normalisation lower-cases anyway, so original-case and upper-case titles get identical
    scores; the unit tests check that, and evaluating them again here would only triple the time.)
    """
    corpus = corpus or load_corpus(config)
    wi, si = corpus.webis_split.test, corpus.stop_split.test
    ws = scorer.score([corpus.webis_titles[i] for i in wi])
    stop_titles = [corpus.stop_titles[i] for i in si]
    ss_lower = scorer.score([t.lower() for t in stop_titles])
    lab = corpus.stop_label[si] == 1
    thr = config.decision_threshold
    return {
        "webis_auc": auc(corpus.webis_label[wi], ws),
        "webis_mse": float(np.mean((ws - corpus.webis_mean[wi]) ** 2)),
        "webis_n": len(wi),
        "stop_accuracy_lower": float(np.mean((ss_lower >= thr) == lab)),
        "stop_auc_lower": auc(lab, ss_lower),
        "stop_n": len(si),
        "decision_threshold": thr,
    }
