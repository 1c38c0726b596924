"""The distilled ``student`` model: fast, batch-independent scoring of new titles.

Why: the ensemble's fine-tuned MiniLM member scores ~100 new titles/s on this CPU (one title per ONNX run,
because int8 activation scales would otherwise make a title's score depend on its batch neighbours). The
student keeps the ensemble's form — a stack of members, its weights and monotone warp fit on a validation
split (:class:`~intentrank.clickbait.backends.ensemble.EnsembleBackend`) — with the MiniLM member replaced
by a token convolution (:class:`~intentrank.clickbait.backends.tokenconv.TokenConvBackend`; members are
``config.student_members``, the earlier token bag is still available). All members compute
each title on its own, so a title scores the same alone or in any batch.

Distillation: each training title's target is ``a * teacher(title) + (1 - a) * human_target(title)``
(``a`` = ``config.student_teacher_weight``), where ``teacher`` is the shipped ensemble (its scores of the
shipped headlines come from its score cache) and ``human_target`` is Webis-17 ``truth_mean`` or the Stop
Clickbait class mapped to the Webis class mean (:func:`~intentrank.clickbait.training.training_set`).
Only the training 80% of each dataset is used; the held-out 20% stays unseen by student and teacher.
The warp's Stop boundary is fit on the human Stop labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from intentrank.clickbait.backends.base import Backend
from intentrank.clickbait.backends.ensemble import EnsembleBackend
from intentrank.clickbait.backends.lexical import LexicalBackend
from intentrank.clickbait.backends.tokenbag import TokenBagBackend
from intentrank.clickbait.backends.tokenconv import TokenConvBackend
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.scorer import ClickbaitScorer
from intentrank.clickbait.training import Corpus, class_means, load_corpus, training_set
from intentrank.clickbait.warp import MonotoneWarp


class StudentBackend(EnsembleBackend):
    """The ensemble stack over ``config.student_members`` whose warp pins the Stop boundary on human labels.

    ``fit`` takes distilled targets ``y`` plus ``labels`` (bool, the human class of binary rows), since a
    blended Stop target no longer says which side of the threshold the human put the title.
    """

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> StudentBackend:
        make = {
            "lexical": lambda: LexicalBackend(alpha=config.lexical_alpha),
            "tokenbag": lambda: TokenBagBackend.from_config(config),
            "tokenconv": lambda: TokenConvBackend.from_config(config),
        }
        members: list[Backend] = [make[name]() for name in config.student_members]
        return cls(
            members, val_fraction=config.val_fraction, seed=config.seed, use_warp=config.ensemble_warp,
            threshold=config.decision_threshold,
        )  # fmt: skip

    def fit(  # type: ignore[override]
        self,
        titles: list[str],
        y: np.ndarray,
        w: np.ndarray,
        binary: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> StudentBackend:
        self._labels = None if labels is None else np.asarray(labels, dtype=bool)
        return super().fit(titles, y, w, binary)  # type: ignore[return-value]

    def fit_warp(
        self, raw: np.ndarray, y: np.ndarray, w: np.ndarray, binary: np.ndarray
    ) -> MonotoneWarp | None:
        if self._labels is None:
            return super().fit_warp(raw, y, w, binary)
        # y of binary rows -> the human class, so the pin separates what people labelled
        n = len(self._labels)
        perm = np.random.default_rng(self.seed).permutation(n)
        val = np.sort(perm[: max(1, round(n * self.val_fraction))])
        y = np.where(binary, np.where(self._labels[val], 1.0, 0.0), y)
        return super().fit_warp(raw, y, w, binary)


def distilled_targets(
    corpus: Corpus, config: ClickbaitConfig, teacher: ClickbaitScorer, part: str = "train"
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(titles, blended targets, weights, is-Stop mask, human class) of the ``part`` rows of both datasets."""
    data = training_set(corpus, config, part)
    t = teacher.score(data.titles)
    a = config.student_teacher_weight
    y = np.clip(a * t + (1.0 - a) * data.y, 0.0, 1.0)
    lo, hi = class_means(corpus)
    labels = data.y >= (lo + hi) / 2
    src = data.source == 1
    wi = getattr(corpus.webis_split, part)
    labels[~src] = corpus.webis_label[wi] == 1
    return data.titles, y, data.w, src, labels


def train_student(
    config: ClickbaitConfig | None = None,
    corpus: Corpus | None = None,
    teacher: ClickbaitScorer | None = None,
    titles_limit: int | None = None,
) -> ClickbaitScorer:
    """Fit the student on the training 80% (``titles_limit``: first N rows only, for quick tests).

    Args:
        config: Settings (``student_teacher_weight``, ``student_members``, ``tokenconv_*``,
            ``lexical_alpha``, seeds).
        corpus: The shipped datasets with their splits (default: loaded).
        teacher: The model to distil (default: the shipped ensemble, scores via its cache).

    Returns:
        A fitted :class:`ClickbaitScorer` with a :class:`StudentBackend`.
    """
    from intentrank.clickbait.scorer import load_default_scorer

    cfg = config or ClickbaitConfig()
    corpus = corpus or load_corpus(cfg)
    teacher = teacher or load_default_scorer(cfg.model_copy(update={"model": "ensemble", "model_dir": None}))
    titles, y, w, src, labels = distilled_targets(corpus, cfg, teacher)
    if titles_limit is not None:
        rng = np.random.default_rng(cfg.seed)
        keep = np.sort(rng.permutation(len(titles))[:titles_limit])
        titles, y, w, src, labels = [titles[i] for i in keep], y[keep], w[keep], src[keep], labels[keep]
    backend = StudentBackend.from_config(cfg)
    scorer = ClickbaitScorer(backend, cfg)
    _fit(scorer, titles, y, w, src, labels)
    scorer.info = {
        "trained_on": "80% of webis-clickbait-17 + 80% of stop-clickbait (held-out 20% never seen)",
        "student_of": "the shipped ensemble (scores of the training titles, via its cache)",
        "teacher_weight": cfg.student_teacher_weight,
        "seed": cfg.seed,
        "stop_weight": cfg.stop_weight,
        "class_means": list(class_means(corpus)),
    }
    return scorer


def _fit(
    scorer: ClickbaitScorer,
    titles: Sequence[str],
    y: np.ndarray,
    w: np.ndarray,
    src: np.ndarray,
    labels: np.ndarray,
) -> None:
    """``scorer.fit`` with the human labels passed through to the student's warp."""
    norm, keep = scorer._prepare(titles)
    kept = [t for t, k in zip(norm, keep, strict=True) if k]
    scorer.backend.fit(kept, y[keep], w[keep], binary=src[keep], labels=labels[keep])  # type: ignore[call-arg]
    scorer.fitted = True
