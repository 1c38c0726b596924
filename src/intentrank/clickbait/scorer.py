"""``ClickbaitScorer``: graded clickbait scores in [0, 1] on the scale of Webis-17 ``truth_mean``.

The scorer owns input handling (validation, style normalisation, truncation, empty titles) and the
category thresholds; the regression itself is a backend selected by name (lexical, semantic, ensemble).

References:
    M. Potthast, T. Gollub, K. Komlossy, S. Schuster, M. Wiegmann, E. P. Garces Fernandez, M. Hagen,
    B. Stein. "Crowdsourcing a Large Corpus of Clickbait on Twitter". COLING 2018 (Webis-Clickbait-17,
    ``truth_mean``).
    A. Chakraborty, B. Paranjape, S. Kakarla, N. Ganguly. "Stop Clickbait: Detecting and Preventing
    Clickbaits in Online News Media". ASONAM 2016 (the Stop Clickbait headlines).
    N. Reimers, I. Gurevych. "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks".
    EMNLP 2019 (the all-MiniLM-L6-v2 sentence encoder of the semantic and fine-tuned members).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from intentrank.clickbait.backends.base import Backend, backend_class
from intentrank.clickbait.categories import CATEGORIES, categorize
from intentrank.clickbait.config import MODEL_FILE, ClickbaitConfig
from intentrank.clickbait.files import check_array, load_npz, read_json_model
from intentrank.clickbait.text import normalise_titles
from intentrank.errors import DataError, IntentRankError

#: The ensemble model shipped inside the package (trained by ``intentrank clickbait train``).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model"
#: The student distilled from it (``scripts/clickbait/student.py``): lexical + token conv,
#: batch-independent.
STUDENT_MODEL_DIR = Path(__file__).resolve().parent / "model_student"
#: Shipped models by their ``clickbait.model`` name.
SHIPPED_MODEL_DIRS = {"ensemble": DEFAULT_MODEL_DIR, "student": STUDENT_MODEL_DIR}
CACHE_FILE = "score_cache.npz"
FORMAT_VERSION = 1


class ClickbaitScorer:
    """Scores titles for clickbait: ``fit`` / ``score`` / ``category`` / ``save`` / ``load``.

    ``score`` validates (non-strings raise IntentRankError), normalises style (case, quotes, dashes,
    whitespace), cuts titles to ``max_chars``, gives ``empty_score`` to empty titles and clips the
    backend's regression output to [0, 1]. Scores are graded on Webis-17's ``truth_mean`` scale (mean
    of annotators' 0–1 judgements), so they rank degrees of clickbait rather than only flag it;
    ``category`` maps them to non / light / heavy by the config's thresholds. A loaded model may
    carry a cache of its own scores of known titles (:meth:`build_cache`), which only saves time.

    Args:
        backend: A backend name (``"lexical"``, ``"semantic"``, ``"finetuned"``, ``"ensemble"``) built
            from ``config``, or a backend instance.
        config: Input limits, category thresholds and backend settings (default: the defaults).

    Example:
        >>> import numpy as np
        >>> titles = ["You will not believe what happened next", "Parliament passes the budget",
        ...           "These 10 tricks doctors hate", "Central bank holds interest rates"]
        >>> scorer = ClickbaitScorer("lexical").fit(titles, np.array([0.9, 0.1, 0.9, 0.1]))
        >>> s = scorer.score(["You will not believe these tricks", "Parliament holds budget vote", ""])
        >>> bool(s[0] > s[1]), float(s[2])  # the empty title gets empty_score
        (True, 0.0)
        >>> scorer.category_names(np.array([0.1, 0.5, 0.9]))
        ['non', 'light', 'heavy']

        The shipped model: ``load_default_scorer().score(titles)``.
    """

    def __init__(self, backend: str | Backend = "lexical", config: ClickbaitConfig | None = None) -> None:
        self.config = config or ClickbaitConfig()
        if isinstance(backend, str):
            cls = backend_class(backend)
            backend = cls.from_config(self.config) if hasattr(cls, "from_config") else cls()
        self.backend: Backend = backend
        self.fitted = False
        self.info: dict[str, Any] = {}
        #: optional table of this model's own scores for known titles (keys: title_keys of normalised titles)
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        self.use_cache = True

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def _prepare(self, titles: Sequence[object]) -> tuple[list[str], np.ndarray]:
        norm = normalise_titles(titles, self.config.max_chars)
        keep = np.fromiter((len(t) > 0 for t in norm), dtype=bool, count=len(norm))
        return norm, keep

    def fit(
        self,
        titles: Sequence[str],
        targets: np.ndarray,
        sample_weight: np.ndarray | None = None,
        binary: np.ndarray | None = None,
    ) -> ClickbaitScorer:
        """Fit the backend on titles and graded targets in [0, 1] (empty titles are dropped).

        ``binary`` (optional, bool per title) marks titles whose target codes a class rather than a grade
        (Stop Clickbait); backends that use it (the ensemble's warp) get it, others ignore it.

        Args:
            titles: Titles (N,).
            targets: Graded clickbait targets in [0, 1] (N,).
            sample_weight: Non-negative row weights (N,); default 1.
            binary: Optional bool per title (N,), see above.

        Returns:
            ``self``, fitted.

        Raises:
            IntentRankError: Targets or weights of the wrong length, out of range or not finite.
        """
        norm, keep = self._prepare(titles)
        y = np.asarray(targets, dtype=np.float64)
        if y.shape != (len(norm),):
            raise IntentRankError(f"targets must have one value per title ({len(norm)}), got shape {y.shape}")
        if not np.isfinite(y).all() or y.min() < 0 or y.max() > 1:
            raise IntentRankError("targets must be finite numbers in [0, 1]")
        w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != y.shape or (w < 0).any():
            raise IntentRankError("sample_weight must be non-negative, one value per title")
        kept = [t for t, k in zip(norm, keep, strict=True) if k]
        if binary is not None and getattr(self.backend, "accepts_binary", False):
            b = np.asarray(binary, dtype=bool)
            if b.shape != y.shape:
                raise IntentRankError("binary must have one value per title")
            self.backend.fit(kept, y[keep], w[keep], binary=b[keep])  # type: ignore[call-arg]
        else:
            self.backend.fit(kept, y[keep], w[keep])
        self.fitted = True
        return self

    def score(self, titles: Sequence[str]) -> np.ndarray:
        """Clickbait scores, one per title.

        Args:
            titles: Titles (N,) (strings; anything else raises).

        Returns:
            float64 array (N,) in [0, 1]; empty titles get ``config.empty_score``.

        Raises:
            IntentRankError: The scorer is not fitted, or a title is not a string.
        """
        if not self.fitted:
            raise IntentRankError("the clickbait scorer is not fitted; call fit() or load a model")
        norm, keep = self._prepare(titles)
        out = np.full(len(norm), self.config.empty_score, dtype=np.float64)
        if keep.any():
            kept = norm if keep.all() else [t for t, k in zip(norm, keep, strict=True) if k]
            uniq, inverse = np.unique(np.array(kept, dtype=object), return_inverse=True)
            uniq_list = uniq.tolist()
            vals = np.full(len(uniq_list), np.nan)
            if self.cache is not None and self.use_cache:
                keys, cached = self.cache
                q = title_keys(uniq_list)
                pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
                hit = keys[pos] == q
                vals[hit] = cached[pos[hit]]
            todo = np.flatnonzero(np.isnan(vals))
            if todo.size:
                vals[todo] = self.backend.predict([uniq_list[i] for i in todo])
            out[keep] = np.clip(vals[inverse], 0.0, 1.0)
        return out

    def build_cache(self, titles: Sequence[str]) -> None:
        """Store this model's scores of ``titles`` so that scoring them again is a table look-up.

        Used for the shipped headlines: the cached values are the model's own outputs, so results are the
        same with or without the cache (``use_cache = False`` bypasses it, e.g. for evaluation).
        """
        norm = sorted({t for t in normalise_titles(titles, self.config.max_chars) if t})
        vals = self.backend.predict(norm)
        self.set_cache(title_keys(norm), vals)

    def set_cache(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Install a score cache: :func:`title_keys` of normalised titles (K,) and their scores (K,)."""
        order = np.argsort(keys)
        self.cache = (np.asarray(keys)[order], np.asarray(values, dtype=np.float64)[order])

    def category(self, titles: Sequence[str]) -> list[str]:
        """Category name (non / light / heavy, by the config thresholds) of each title."""
        return self.category_names(self.score(titles))

    def category_names(self, scores: np.ndarray) -> list[str]:
        """Category names of scores under this scorer's thresholds."""
        return [CATEGORIES[c] for c in self.categorize(scores)]

    def categorize(self, scores: np.ndarray) -> np.ndarray:
        """int8 category codes of scores under this scorer's thresholds."""
        return categorize(scores, self.config.light_threshold, self.config.heavy_threshold)

    def save(self, directory: str | Path) -> Path:
        """Write the model (``model.json`` + the backend's files) into ``directory``."""
        if not self.fitted:
            raise IntentRankError("cannot save an unfitted clickbait scorer")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        params = self.backend.save(d)
        meta = {
            "format_version": FORMAT_VERSION,
            "backend": self.backend.name,
            "params": params,
            "max_chars": self.config.max_chars,
            "empty_score": self.config.empty_score,
            "info": self.info,
        }
        if self.cache is not None:
            np.savez_compressed(d / CACHE_FILE, keys=self.cache[0], values=self.cache[1].astype(np.float32))
        (d / MODEL_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path, config: ClickbaitConfig | None = None) -> ClickbaitScorer:
        """Read a model written by :meth:`save`.

        ``config`` supplies the thresholds; the input limits (max_chars, empty_score) come from the model.
        """
        d = Path(directory)
        meta_path = d / MODEL_FILE
        if not meta_path.is_file():
            raise IntentRankError(f"no clickbait model at {d} (missing {MODEL_FILE})")
        meta = read_json_model(meta_path, _ModelFile, "malformed clickbait model")
        if meta.format_version != FORMAT_VERSION:
            raise IntentRankError(f"{meta_path}: unsupported format_version {meta.format_version!r}")
        cfg = (config or ClickbaitConfig()).model_copy(
            update={"max_chars": meta.max_chars, "empty_score": meta.empty_score}
        )
        try:
            backend = backend_class(meta.backend).load(d, meta.params)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            if isinstance(err, IntentRankError):
                raise
            what = f"missing key {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
            raise DataError(f"{meta_path}: malformed {meta.backend} params ({what})") from None
        self = cls(backend, cfg)
        self.fitted = True
        cache = d / CACHE_FILE
        if cache.exists():
            z = load_npz(cache, ("keys", "values"))
            keys = check_array(cache, "keys", z["keys"])
            values = check_array(cache, "values", z["values"], len(keys))
            if keys.dtype != np.uint64:
                raise DataError(f"{cache}: array 'keys' has dtype {keys.dtype}, expected uint64")
            self.set_cache(keys, values)
        self.info = meta.info
        return self


class _ModelFile(BaseModel):
    """Shape of ``model.json`` (validated on load, so a mistyped file is named, not a traceback)."""

    format_version: int
    backend: str
    params: dict[str, Any]
    max_chars: int = Field(ge=1)
    empty_score: float = Field(ge=0.0, le=1.0)
    info: dict[str, Any] = Field(default_factory=dict)


def title_keys(normalised: Sequence[str]) -> np.ndarray:
    """64-bit keys (BLAKE2b) of normalised titles, for the score cache."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little")
            for t in normalised
        ),
        dtype=np.uint64,
        count=len(normalised),
    )


def default_model_dir(config: ClickbaitConfig | None = None) -> Path:
    """Directory of the model ``load_default_scorer`` loads: ``config.model_dir`` if set, else the shipped
    model named by ``config.model`` (``ensemble`` or ``student``)."""
    cfg = config or ClickbaitConfig()
    return Path(cfg.model_dir) if cfg.model_dir is not None else SHIPPED_MODEL_DIRS[cfg.model]


def load_default_scorer(config: ClickbaitConfig | None = None) -> ClickbaitScorer:
    """The trained model shipped inside the package, chosen by ``config.model`` (or ``config.model_dir``
    if set). No training, no download."""
    return ClickbaitScorer.load(default_model_dir(config), config)
