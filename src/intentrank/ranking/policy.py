"""The trained ranker as a simulator/feed policy: score candidates with the multi-task model and the formula.

For each (user, candidate) pair the policy builds a feature row (request context + the item's public
catalogue columns), runs the model in eval mode (so a shallow tower's inputs are zeroed) and ranks by
``formula.score(p_click, time, p_conv)``; ``post_processors`` then adjust the (B, K) scores given the
candidates' clickbait scores (heuristic post-processing plugs in here). Candidates are scored as if
shown at ``position`` (default 0), the usual way to remove position bias at serving time.
Registered with the simulator as policy ``"ranker"`` (``get_policy("ranker", model_dir=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from intentrank.ranking.checkpoint import load_checkpoint
from intentrank.ranking.config import FeatureSpecConfig
from intentrank.ranking.features import FeatureEncoder, derive_event_columns
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.simulator.policies import Policy, SlateRequest, register_policy

if TYPE_CHECKING:
    from intentrank.simulator.catalogue import Catalogue

PostProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]


class RankerPolicy(Policy):
    """Ranks candidates by the multi-task model's outputs combined with a :class:`RankingFormula`."""

    stochastic = False

    def __init__(
        self,
        model: MultiTaskRanker,
        features: FeatureEncoder | FeatureSpecConfig | None = None,
        formula: RankingFormula | None = None,
        post_processors: Sequence[PostProcessor] = (),
        name: str | None = None,
        position: int = 0,
        batch_rows: int = 65_536,
    ) -> None:
        self.model = model.eval()
        spec = features.spec if isinstance(features, FeatureEncoder) else features
        self.encoder = FeatureEncoder(spec or model.config.features)
        self.formula = formula or RankingFormula.from_config(model.config.formula)
        self.post_processors = tuple(post_processors)
        f = self.formula
        self.name = name or f"ranker(a={f.a:g},b={f.b:g},g={f.g:g})"
        self.position = position
        self.batch_rows = batch_rows
        self._cache_key: int | None = None
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_checkpoint(cls, model_dir: str | Path, **kwargs: Any) -> RankerPolicy:
        """A policy around a saved model (see :func:`load_checkpoint`)."""
        return cls(load_checkpoint(model_dir), **kwargs)

    def feature_frame(self, request: SlateRequest, catalogue: Catalogue) -> pd.DataFrame:
        """One row per (user, candidate): request context + the item's public columns."""
        B, K = request.candidates.shape
        item = request.candidates.reshape(-1).astype(np.int64)
        rows: dict[str, Any] = {
            "user_id": np.repeat(np.asarray(request.user_ids, np.int64), K),
            "item_id": item,
            "slate_index": np.repeat(np.asarray(request.slate_index, np.int64), K),
            "position": np.full(B * K, self.position, np.int64),
            "ts": np.repeat(np.asarray(request.ts, np.float64), K),
            "day": np.full(B * K, request.day, np.int64),
        }
        items = catalogue.items
        for col in items.columns:
            if col not in rows and col != "title":
                rows[col] = items[col].to_numpy()[item]
        return derive_event_columns(pd.DataFrame(rows))

    def _item_table(self, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-item encodings of the features read from item-only columns, computed once per catalogue.

        Returns (cat column indices, cat codes (n_items, ·), dense column indices, dense values (n_items, ·)).
        """
        key = id(catalogue.items)
        if self._cache_key == key and self._cache is not None:
            return self._cache
        spec = self.encoder.spec
        item_cols = set(catalogue.items.columns) - {"item_id"}
        ci = [j for j, f in enumerate(spec.categorical) if f.source in item_cols]
        di = [j for j, f in enumerate(spec.dense) if f.source in item_cols]
        items = catalogue.items
        cat = np.empty((len(items), len(ci)), np.int64)
        dense = np.empty((len(items), len(di)), np.float32)
        if ci or di:
            cat, dense = _sub_encoder(spec, ci, di).encode_numpy(items)
        self._cache_key, self._cache = key, (np.array(ci, np.int64), cat, np.array(di, np.int64), dense)
        return self._cache

    def encode_request(self, request: SlateRequest, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
        """Packed (cat, dense) for every (user, candidate): item features gathered from the per-item cache,
        the rest (user, context, item age) encoded per request."""
        spec = self.encoder.spec
        ci, icat, di, idense = self._item_table(catalogue)
        B, K = request.candidates.shape
        item = request.candidates.reshape(-1).astype(np.int64)
        rest_c = [j for j in range(len(spec.categorical)) if j not in set(ci.tolist())]
        rest_d = [j for j in range(len(spec.dense)) if j not in set(di.tolist())]
        cat = np.empty((B * K, len(spec.categorical)), np.int64)
        dense = np.empty((B * K, len(spec.dense)), np.float32)
        if len(ci):
            cat[:, ci] = icat[item]
        if len(di):
            dense[:, di] = idense[item]
        if rest_c or rest_d:
            cols: dict[str, Any] = {
                "user_id": np.repeat(np.asarray(request.user_ids, np.int64), K),
                "item_id": item,
                "slate_index": np.repeat(np.asarray(request.slate_index, np.int64), K),
                "position": np.full(B * K, self.position, np.int64),
                "ts": np.repeat(np.asarray(request.ts, np.float64), K),
                "day": np.full(B * K, request.day, np.int64),
            }
            needed = {spec.categorical[j].source for j in rest_c} | {spec.dense[j].source for j in rest_d}
            if "item_age_h" in needed:
                cols["publish_ts"] = catalogue.items["publish_ts"].to_numpy(np.float64)[item]
            for col in needed - set(cols) - {"hour", "item_age_h"}:
                if col in catalogue.items.columns:
                    cols[col] = catalogue.items[col].to_numpy()[item]
            frame = derive_event_columns(pd.DataFrame(cols))
            rc, rd = _sub_encoder(spec, rest_c, rest_d).encode_numpy(frame)
            if rest_c:
                cat[:, rest_c] = rc
            if rest_d:
                dense[:, rest_d] = rd
        return cat, dense

    @torch.no_grad()
    def predict(self, request: SlateRequest, catalogue: Catalogue) -> dict[str, np.ndarray]:
        """(B, K) arrays p_click, time, p_conv."""
        B, K = request.candidates.shape
        cat, dense = self.encode_request(request, catalogue)
        cat_t, dense_t = torch.from_numpy(cat), torch.from_numpy(dense)
        parts: dict[str, list[torch.Tensor]] = {"p_click": [], "time": [], "p_conv": []}
        self.model.eval()
        n = self.batch_rows
        for s in range(0, B * K, n):
            out = self.model.predict(self.encoder.to_batch(cat_t[s : s + n], dense_t[s : s + n]))
            for k in parts:
                parts[k].append(out[k])
        return {k: torch.cat(v).numpy().astype(np.float64).reshape(B, K) for k, v in parts.items()}

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        p = self.predict(request, catalogue)
        s = self.formula.score(p["p_click"], p["time"], p["p_conv"])
        if self.post_processors:
            cb = catalogue.clickbait_score[request.candidates]
            for fn in self.post_processors:
                s = np.asarray(fn(s, cb), dtype=np.float64)
        return s


def _factory(
    model_dir: str, a: float = 1.0, b: float = 0.8, g: float = 0.0, name: str | None = None
) -> RankerPolicy:
    return RankerPolicy.from_checkpoint(model_dir, formula=RankingFormula(a, b, g), name=name)


register_policy("ranker", _factory)


def _sub_encoder(spec: FeatureSpecConfig, cat_idx: list[int], dense_idx: list[int]) -> FeatureEncoder:
    """An encoder for the listed categorical and dense features of ``spec`` (same order, same settings)."""
    return FeatureEncoder(
        FeatureSpecConfig.model_construct(
            categorical=[spec.categorical[j] for j in cat_idx],
            dense=[spec.dense[j] for j in dense_idx],
            embedding_dim=spec.embedding_dim,
        )
    )
