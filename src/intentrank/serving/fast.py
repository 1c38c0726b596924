"""Fast scoring of one user's candidates: item-side inputs precomputed per (model, item table).

The ranker's input vector is ``x0 = [embeddings of the categorical features | mean title n-gram
embedding | main dense features | zero padding]``. Most of it depends on the item only (item id, topic,
source, title, length), and those columns are the same for every request: :class:`PreparedItems`
computes them once for the whole item table with the model's own embedding tables (one pass, e.g. when
a model is published or the catalogue changes), and a request only

1. gathers the candidates' rows (one ``index_select`` of a (K, d) block),
2. adds the request-constant columns (user id, slate index, position, hour embeddings; the user's
   history totals), computed once per request instead of once per candidate,
3. fills the few per-candidate request columns (the item's age, the user's clicks and reads of the
   candidate's topic; looked up per distinct topic, not per row),
4. runs the backbone and the task towers once over the K rows under ``torch.inference_mode``.

The first linear maps that read x0 (the DCN backbones' first cross layer and, in the parallel backbone,
the deep network's first layer: a third of the default model's arithmetic) are split by linearity
(:class:`SplitForward`): ``x0 W = x_item W`` (precomputed for every item with the item side, per model)
``+ x_user W`` (once per request) ``+ x_rows W_rows`` (the few per-candidate request columns), so a request
gathers the item rows' products instead of multiplying K × d by d × a. Exact up to float rounding.

No pandas, no hashing of K rows, no per-row Python. The result equals
:meth:`~intentrank.serving.ranker.RankerPolicy.predict` (the same x0, the same layers; checked by
``tests/serving/test_fast.py``). Models whose ``forward`` or ``inputs`` differ from
:class:`~intentrank.ranking.models.multitask.MultiTaskRanker`'s (e.g. head-masked variants) are not
prepared (:func:`supports` is False) and the caller uses the generic path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from intentrank.ranking.candidates import CONTEXT_COLUMNS, CandidateFeatures
from intentrank.ranking.config import HISTORY_COLUMNS
from intentrank.ranking.features import SECONDS_PER_DAY, hash_buckets
from intentrank.ranking.history import UserHistory
from intentrank.ranking.layers.cross import CrossLayerFull, CrossLayerLowRank, CrossLayerMixture
from intentrank.ranking.models.backbones import DCNParallel, DCNStacked
from intentrank.ranking.models.multitask import MultiTaskNet, MultiTaskRanker
from intentrank.ranking.outputs import natural_units

#: Request columns whose value is the same for every candidate of one request.
_CONSTANT = {"user_id", "slate_index", "position", "day", "ts", "hour"}
#: History columns that depend on the candidate's topic (the rest are per-user totals).
_PER_TOPIC = {c for c in HISTORY_COLUMNS if c.startswith("user_topic_")}
#: History columns of the candidate item itself (its track record over all users).
_PER_ITEM = {c for c in HISTORY_COLUMNS if c.startswith("item_")}
#: History columns of the (user, candidate's source) pair.
_PER_SOURCE = {"user_source_impressions", "user_source_ctr"}
_PER_CANDIDATE = _PER_TOPIC | _PER_ITEM | _PER_SOURCE
#: Rows per pass when precomputing the item side (bounds memory).
_CHUNK = 8_192


def supports(model: torch.nn.Module) -> bool:
    """Whether ``model`` computes ``towers(backbone(inputs(batch)))`` (+ the eval-mode shallow bias)."""
    t = type(model)
    return (
        isinstance(model, MultiTaskRanker)
        and t.forward is MultiTaskRanker.forward
        and t.inputs is MultiTaskNet.inputs
        and t.predict is MultiTaskRanker.predict
    )


@dataclass
class _Col:
    """One x0 column fed per request: its x0 index, the source column and the dense transform."""

    x0: int
    source: str
    log1p: bool
    scale: float


class PreparedItems:
    """x0's item-side columns for every item of one table under one model (see the module docstring).

    Args:
        model: the ranker (:func:`supports` must hold).
        rows: the table's :class:`CandidateFeatures` (item features already encoded) for ``model``'s spec.
        history: the users' history the per-request history columns come from (None: the spec reads none).
        split: precompute the item side of x0's first linear maps (:class:`SplitForward`) when the
            backbone allows it (costs n × a floats per model, e.g. 73 MB for 47k items by default).
    """

    def __init__(
        self, model: MultiTaskRanker, rows: CandidateFeatures, history: UserHistory | None, split: bool = True
    ) -> None:
        if not supports(model):
            raise TypeError(f"{type(model).__name__} is not a plain MultiTaskRanker: use the generic path")
        self.model, self.rows, self.history = model, rows, history
        spec = model.config.features
        self.spec = spec
        dim = spec.embedding_dim
        n_cat = len(spec.categorical)
        emb_w = model.embedding.out_dim if model.embedding is not None else 0
        text_w = model.text.out_dim if model.text is not None else 0
        main = model.main_dense_idx.tolist()
        x0_of_dense = {j: emb_w + text_w + k for k, j in enumerate(main)}
        # request-side categorical features: one bucket per request, their embedding added to x0
        self.req_cat: list[tuple[int, Any]] = []  # (feature index, config)
        #: the item id itself (not an item column of the table, but item-side all the same)
        self.id_cat = [j for j in rows.rest_cat if spec.categorical[j].source == "item_id"]
        for j in rows.rest_cat:
            f = spec.categorical[j]
            if j in self.id_cat:
                continue
            if f.source not in _CONSTANT:
                raise TypeError(f"categorical feature {f.name!r} varies per candidate: use the generic path")
            self.req_cat.append((j, f))
        self.const_cols: list[_Col] = []
        self.row_cols: list[_Col] = []
        for j in rows.rest_dense:
            f = spec.dense[j]
            if j not in x0_of_dense:
                continue  # not fed to the main network (e.g. the shallow tower's input): zeroed in eval
            col = _Col(x0_of_dense[j], f.source, f.transform == "log1p", float(f.scale))
            if f.source in _CONSTANT or (f.source in HISTORY_COLUMNS and f.source not in _PER_CANDIDATE):
                self.const_cols.append(col)
            elif f.source == "item_age_h" or f.source in _PER_CANDIDATE:
                self.row_cols.append(col)
            else:
                raise TypeError(f"dense feature {f.name!r} ({f.source}) is not supported by the fast path")
        self.n_cat, self.dim, self.emb_w = n_cat, dim, emb_w
        self._needs_history = any(c.source in HISTORY_COLUMNS for c in self.const_cols + self.row_cols)
        if self._needs_history and history is None:
            raise TypeError("the spec reads user history but no history was given")
        topics = rows._topic if rows._topic is not None else np.zeros(rows.n_items, object)
        codes, uniq = _factorize(topics)
        self.topic_code, self.topic_names = codes, uniq
        self.publish_ts = rows._publish_ts
        with torch.inference_mode():
            self.x_item = self._item_side()
            n_x = len(self.x_item)
            if model.shallow is not None:
                zero = torch.zeros(1, int(model.shallow_idx.numel()))
                self.bias = float(model.shallow(zero)[0])
            else:
                self.bias = 0.0
        self._cols = torch.tensor([c.x0 for c in self.row_cols], dtype=torch.long)
        self.split_requested = split
        self.split = SplitForward(model) if split and SplitForward.supports(model) else None
        if self.split is not None:
            with torch.inference_mode():
                w = self.split.weight
                self.z_item = torch.cat([self.x_item[s : s + _CHUNK] @ w for s in range(0, n_x, _CHUNK)])
                self._w_rows = w.index_select(0, self._cols).contiguous()
        # the request-side categorical features: their x0 positions and rows in the fused table
        self._req_pos = torch.tensor(
            [j * dim + k for j, _ in self.req_cat for k in range(dim)], dtype=torch.long
        )
        self.text_slice = slice(emb_w, emb_w + text_w) if text_w else None
        self._prior: dict[str, np.ndarray] | None = None
        self._prior_lock = threading.Lock()
        self._vectors: np.ndarray | None = None

    def prior(self) -> dict[str, np.ndarray]:
        """(n,) user-independent ``p_click``, ``time``, ``p_conv`` of every item (request columns zero:
        no user, no history), computed once: the first stage of two-stage scoring."""
        if self._prior is not None:
            return self._prior
        with self._prior_lock, torch.inference_mode():  # once, even when two requests ask together
            if self._prior is None:
                x = self.x_item
                parts = [
                    self._forward(x[s : s + _CHUNK])
                    if self.split is None
                    else self._outputs(self.split(x[s : s + _CHUNK], self.z_item[s : s + _CHUNK]))
                    for s in range(0, len(x), _CHUNK)
                ]
                self._prior = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._prior

    def item_vectors(self) -> np.ndarray:
        """(n, e) unit-norm item embeddings for similarity retrieval: the model's learned title encoding
        (its item-side input vector when the spec reads no title)."""
        if self._vectors is None:
            x = self.x_item[:, self.text_slice] if self.text_slice is not None else self.x_item
            v = x.numpy().astype(np.float32)
            norm = np.linalg.norm(v, axis=1, keepdims=True)
            self._vectors = v / np.maximum(norm, 1e-12)
        return self._vectors

    def _forward(self, x0: torch.Tensor) -> dict[str, np.ndarray]:
        m = self.model
        return self._outputs(m.towers(m.backbone(x0)))

    def _item_side(self) -> torch.Tensor:
        """(n, d) x0 with the request-side columns zero."""
        m, rows = self.model, self.rows
        n = rows.n_items
        parts = [
            m.inputs(rows.encoder.to_batch(*self._item_batch(np.arange(s, min(n, s + _CHUNK)))))
            for s in range(0, n, _CHUNK)
        ]
        out = torch.cat(parts).contiguous()
        for j, _ in self.req_cat:
            out[:, j * self.dim : (j + 1) * self.dim] = 0.0
        for c in self.const_cols + self.row_cols:
            out[:, c.x0] = 0.0
        return out

    def _item_batch(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        rows, spec = self.rows, self.spec
        cat = np.zeros((len(ids), len(spec.categorical)), np.int64)
        dense = np.zeros((len(ids), len(spec.dense)), np.float32)
        if rows.item_cat:
            cat[:, rows.item_cat] = rows._icat[ids]
        if rows.item_dense:
            dense[:, rows.item_dense] = rows._idense[ids]
        for j in self.id_cat:
            f = spec.categorical[j]
            cat[:, j] = hash_buckets(ids, f.buckets) if f.hashed else np.clip(ids, 0, f.buckets - 1)
        text = torch.from_numpy(rows.encode_text(ids)) if spec.text else None
        return torch.from_numpy(cat), torch.from_numpy(dense), text

    # -- per request ---------------------------------------------------------------------------------
    def _request_vector(self, user_id: int, slate_index: int, ts: float, day: int) -> torch.Tensor:
        """(d,) the request-constant columns (embeddings and the user's history totals)."""
        d = self.x_item.shape[1]
        vec = torch.zeros(d)
        ctx: dict[str, Any] = {
            "user_id": user_id,
            "slate_index": slate_index,
            "position": self.rows.position,
            "day": day,
            "ts": ts,
            "hour": int(np.mod(ts, SECONDS_PER_DAY) // 3600.0),
        }
        if self.req_cat:
            m = self.model
            ids = []
            for _, f in self.req_cat:
                v = ctx[f.source]
                if f.hashed:
                    ids.append(int(hash_buckets(np.array([v], np.int64), f.buckets)[0]))
                else:
                    ids.append(min(max(int(v), 0), f.buckets - 1))
            rows = m.embedding.offsets[[j for j, _ in self.req_cat]] + torch.tensor(ids)
            vec[self._req_pos] = m.embedding.table.weight.index_select(0, rows).reshape(-1)
        if self.const_cols:
            if self._needs_history:
                assert self.history is not None
                one = np.array([user_id])
                h = _history_arrays(self.history, one, np.array(["?"], object), np.array([ts]))
                ctx.update({c: float(h[c][0]) for c in HISTORY_COLUMNS if c not in _PER_CANDIDATE})
            for c in self.const_cols:
                vec[c.x0] = _transform(np.float64(ctx[c.source]), c)
        return vec

    def _row_values(self, user_id: int, items: np.ndarray, ts: float) -> np.ndarray:
        """(K, len(row_cols)) per-candidate request columns."""
        out = np.empty((len(items), len(self.row_cols)), np.float32)
        per_topic: dict[str, np.ndarray] = {}
        if any(c.source in _PER_CANDIDATE for c in self.row_cols):
            assert self.history is not None
            n = len(items)
            per_topic = _history_arrays(
                self.history, np.full(n, user_id, np.int64), self.topic_names[self.topic_code[items]],
                np.full(n, ts), items,
            )  # fmt: skip
        for k, c in enumerate(self.row_cols):
            if c.source == "item_age_h":
                assert self.publish_ts is not None
                v = np.clip(ts - self.publish_ts[items], 0.0, None) / 3600.0
            else:
                v = per_topic[c.source]
            out[:, k] = _transform(v, c)
        return out

    def predict(
        self, user_id: int, items: np.ndarray, slate_index: int, ts: float, day: int
    ) -> dict[str, np.ndarray]:
        """(K,) ``p_click``, ``time`` (seconds), ``p_conv`` of one user's candidates ``items``."""
        items = np.require(items, np.int64, ["C", "W"])  # torch.from_numpy needs a writable array
        with torch.inference_mode():
            vec = self._request_vector(int(user_id), int(slate_index), float(ts), int(day))
            idx = torch.from_numpy(items)
            x0 = self.x_item.index_select(0, idx).add_(vec)
            rv = torch.from_numpy(self._row_values(int(user_id), items, float(ts))) if self.row_cols else None
            if rv is not None:
                x0[:, self._cols] = rv
            if self.split is None:
                return self._forward(x0)
            # x0 W = x_item W (precomputed) + x_user W + x_rows W_rows (see SplitForward)
            z = self.z_item.index_select(0, idx).add_(vec @ self.split.weight)
            if rv is not None:
                z.addmm_(rv, self._w_rows)
            return self._outputs(self.split(x0, z))

    def _outputs(self, out: torch.Tensor) -> dict[str, np.ndarray]:
        """The towers' (T, K) outputs in natural units (float64 arrays)."""
        if self.bias:
            out = out + self.bias
        res = natural_units({t: out[i] for i, t in enumerate(self.model.tasks)})
        return {k: v.numpy().astype(np.float64) for k, v in res.items()}


class SplitForward:
    """``model.towers(model.backbone(x0))`` given ``z = x0 @ weight``: x0's first linear maps done apart.

    ``weight`` (d, a) stacks the maps that read x0 itself: the first cross layer's (mixture: every
    expert's V and the gate; low rank: V; full: W) and, in the parallel backbone, the deep network's first
    Linear. Being linear, ``x0 @ weight`` splits over x0's item, request and per-candidate columns, so
    :class:`PreparedItems` precomputes the item part; the rest of the network runs as the modules do
    (the same layers, in the same order: checked against the plain forward by
    ``tests/serving/test_fast_split.py``). Backbones other than DCN stacked/parallel are not split.
    """

    def __init__(self, model: MultiTaskNet) -> None:
        if not self.supports(model):
            raise TypeError(f"{type(model.backbone).__name__} is not split: use the plain forward")
        self.model = model
        bb = model.backbone
        self.cross0 = bb.cross.layers[0] if len(bb.cross.layers) else None
        mats: list[torch.Tensor] = []
        if isinstance(self.cross0, CrossLayerMixture):
            mats += [self.cross0.v.detach(), self.cross0.gate.weight.detach().t()]
        elif isinstance(self.cross0, CrossLayerLowRank):
            mats.append(self.cross0.v.weight.detach().t())
        elif isinstance(self.cross0, CrossLayerFull):
            mats.append(self.cross0.linear.weight.detach().t())
        self.n_cross = sum(int(m.shape[1]) for m in mats)
        self.parallel = isinstance(bb, DCNParallel)
        self.deep0 = bb.deep[0] if self.parallel and len(bb.deep) else None
        if self.deep0 is not None:
            mats.append(self.deep0.weight.detach().t())
        self.weight = torch.cat(mats, 1).contiguous()

    @staticmethod
    def supports(model: MultiTaskNet) -> bool:
        """Whether the backbone is a DCN (stacked or parallel) with a first layer that reads x0."""
        bb = model.backbone
        if type(bb) not in (DCNParallel, DCNStacked) or type(bb).forward not in (
            DCNParallel.forward,
            DCNStacked.forward,
        ):
            return False
        layers = bb.cross.layers
        if not len(layers) or type(layers[0]) not in (CrossLayerMixture, CrossLayerLowRank, CrossLayerFull):
            return False
        deep = bb.deep
        return not (isinstance(bb, DCNParallel) and len(deep) and not isinstance(deep[0], torch.nn.Linear))

    def __call__(self, x0: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(T, K) tower outputs from x0 (K, d) and ``z = x0 @ weight`` (K, a)."""
        m, c0 = self.model, self.cross0
        zc = z[:, : self.n_cross]
        if isinstance(c0, CrossLayerMixture):  # CrossLayerMixture.forward with x = x0 and x @ v, gate given
            B, E, r = x0.shape[0], c0.experts, c0.rank
            h = c0.act(zc[:, : E * r])
            h = torch.bmm(h.view(B, E, r).transpose(0, 1), c0.c)
            g = torch.softmax(zc[:, E * r :], dim=-1)
            h = c0.act(h).transpose(0, 1) * g.unsqueeze(-1)
            x = torch.addcmul(x0, x0, h.reshape(B, E * r) @ c0.u + c0.bias)
        elif isinstance(c0, CrossLayerLowRank):
            x = torch.addcmul(x0, x0, c0.u(zc))
        else:
            assert isinstance(c0, CrossLayerFull)
            x = torch.addcmul(x0, x0, zc + c0.linear.bias)
        for layer in m.backbone.cross.layers[1:]:
            x = layer(x0, x)
        if not self.parallel:
            return m.towers(m.backbone.deep(x))
        if self.deep0 is None:
            deep = x0
        else:
            deep = z[:, self.n_cross :] + self.deep0.bias
            for mod in list(m.backbone.deep)[1:]:
                deep = mod(deep)
        return m.towers(torch.cat([x, deep], dim=1))


def _history_arrays(
    history: Any, users: np.ndarray, topics: np.ndarray, ts: np.ndarray, items: np.ndarray | None = None
) -> Any:
    """History columns by name: ``feature_arrays`` when the history has it (no DataFrame), else
    ``features`` (an item id of -1: an item never seen)."""
    fn = getattr(history, "feature_arrays", None)
    if fn is not None:
        return fn(users, topics, ts, items)
    items = np.full(len(users), -1, np.int64) if items is None else items
    f = history.features(users, topics, ts, items)
    return {c: f[c].to_numpy(np.float64) for c in f.columns}


def _transform(v: Any, c: _Col) -> Any:
    """The dense encoder's transform (``FeatureEncoder.encode_numpy``): optional log1p of v ≥ 0, × scale."""
    if c.log1p:
        v = np.log1p(np.clip(v, 0.0, None))
    return v * c.scale


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return codes.astype(np.int64), uniq.astype(object)


class PreparedCache:
    """The latest :class:`PreparedItems` per (model object, item table object); thread-safe.

    Two entries are kept (the served model and the one being published), so a swap prepared before
    it is published never makes a request pay for the preparation.
    """

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._entries: list[tuple[int, int, PreparedItems]] = []

    def get(
        self,
        model: MultiTaskRanker,
        rows: CandidateFeatures,
        items_key: int,
        history: UserHistory | None,
        split: bool = True,
    ) -> PreparedItems:
        key = (id(model), items_key)
        with self._lock:
            for mk, ik, p in self._entries:
                if (mk, ik) == key and p.model is model and p.split_requested == split:
                    return p
        prepared = PreparedItems(model, rows, history, split=split)
        with self._lock:
            self._entries = [e for e in self._entries if (e[0], e[1]) != key][-(self.keep - 1) :]
            self._entries.append((key[0], key[1], prepared))
        return prepared


assert set(CONTEXT_COLUMNS) <= _CONSTANT | {"item_id"}
