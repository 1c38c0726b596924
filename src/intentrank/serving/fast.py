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

import itertools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from intentrank.ranking.candidates import CONTEXT_COLUMNS, CandidateFeatures
from intentrank.ranking.config import HISTORY_COLUMNS
from intentrank.ranking.features import SECONDS_PER_DAY, hash_bucket_int, hash_buckets
from intentrank.ranking.history import UserHistory
from intentrank.ranking.layers.cross import CrossLayerFull, CrossLayerLowRank, CrossLayerMixture
from intentrank.ranking.layers.mlp import BatchedMLP
from intentrank.ranking.layers.towers import TaskTowers
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
        # the dense transforms as vectors, so a request transforms its columns in one go
        self._const_x0 = np.array([c.x0 for c in self.const_cols], np.int64)
        self._const_tf = _Transforms(self.const_cols)
        self._row_tf = _Transforms(self.row_cols)
        self._age_col = next((k for k, c in enumerate(self.row_cols) if c.source == "item_age_h"), None)
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
        self._req_pos = np.array([j * dim + k for j, _ in self.req_cat for k in range(dim)], np.int64)
        self._req_offsets = (
            model.embedding.offsets[[j for j, _ in self.req_cat]].numpy().copy() if self.req_cat else None
        )
        #: the embedding table as a NumPy view (no copy): the request-side rows are gathered from it
        self._table = model.embedding.table.weight.detach().numpy() if self.req_cat else None
        self._prior_scores: dict[Any, np.ndarray] = {}
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

    def prior_score(self, formula: Any) -> np.ndarray:
        """(n,) ``formula``'s score of every item's user-independent outputs (:meth:`prior`), computed
        once per formula: the first stage's ranking, so a request only gathers its candidates'."""
        got = self._prior_scores.get(formula)
        if got is None:
            p = self.prior()
            got = np.asarray(formula.score(p["p_click"], p["time"], p["p_conv"]), np.float64)
            self._prior_scores = {**self._prior_scores, formula: got}  # a new dict: readers never see it grow
        return got

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
    def _history(self, user_id: int, items: np.ndarray, ts: float) -> dict[str, np.ndarray] | None:
        """The history columns of the user's K candidate rows (one lookup per request, so the user's
        totals and the per-candidate columns come from the same state), None when the spec reads none.
        Without candidates: one row of an unknown topic and item (the user's totals are all it gives)."""
        if not self._needs_history:
            return None
        assert self.history is not None
        n = len(items)
        if n == 0:
            return _history_arrays(self.history, np.array([user_id]), np.array(["?"], object), np.array([ts]))
        if hasattr(self.history, "user_arrays"):  # the serving history: by topic code, no factorising
            return self.history.user_arrays(user_id, self.topic_code[items], self.topic_names, ts, items)
        topics = self.topic_names[self.topic_code[items]]
        return _history_arrays(self.history, np.full(n, user_id, np.int64), topics, np.full(n, ts), items)

    def _request_vector(
        self, user_id: int, slate_index: int, ts: float, day: int, hist: dict[str, np.ndarray] | None
    ) -> torch.Tensor:
        """(d,) the request-constant columns (embeddings and the user's history totals, from row 0 of
        ``hist``: the same for every row)."""
        vec = np.zeros(self.x_item.shape[1], np.float32)  # NumPy: its fancy indexing costs µs, torch's tens
        ctx: dict[str, Any] = {
            "user_id": user_id,
            "slate_index": slate_index,
            "position": self.rows.position,
            "day": day,
            "ts": ts,
            "hour": int(np.mod(ts, SECONDS_PER_DAY) // 3600.0),
        }
        if self.req_cat:
            ids = []
            for _, f in self.req_cat:
                v = ctx[f.source]
                ids.append(hash_bucket_int(v, f.buckets) if f.hashed else min(max(int(v), 0), f.buckets - 1))
            assert self._req_offsets is not None and self._table is not None
            vec[self._req_pos] = self._table[self._req_offsets + np.array(ids)].reshape(-1)
        if self.const_cols:
            vals = np.array(
                [float(hist[c.source][0]) if hist is not None and c.source in hist else float(ctx[c.source])
                 for c in self.const_cols]
            )  # fmt: skip
            vec[self._const_x0] = self._const_tf(vals[None, :])[0]
        return torch.from_numpy(vec)

    def _row_values(self, items: np.ndarray, ts: float, hist: dict[str, np.ndarray] | None) -> np.ndarray:
        """(K, len(row_cols)) per-candidate request columns."""
        raw = np.empty((len(items), len(self.row_cols)))
        for k, c in enumerate(self.row_cols):
            if k == self._age_col:
                assert self.publish_ts is not None
                raw[:, k] = np.clip(ts - self.publish_ts[items], 0.0, None) / 3600.0
            else:
                assert hist is not None
                raw[:, k] = hist[c.source]
        return self._row_tf(raw).astype(np.float32)

    def predict(
        self, user_id: int, items: np.ndarray, slate_index: int, ts: float, day: int
    ) -> dict[str, np.ndarray]:
        """(K,) ``p_click``, ``time`` (seconds), ``p_conv`` of one user's candidates ``items``."""
        items = np.require(items, np.int64, ["C", "W"])  # torch.from_numpy needs a writable array
        user_id, ts = int(user_id), float(ts)
        with torch.inference_mode():
            hist = self._history(user_id, items, ts)
            vec = self._request_vector(user_id, int(slate_index), ts, int(day), hist)
            idx = torch.from_numpy(items)
            x0 = self.x_item.index_select(0, idx).add_(vec)
            rv = torch.from_numpy(self._row_values(items, ts, hist)) if self.row_cols else None
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

    The rest is run with its weights laid out once for a request of ~100 rows, where each operator's
    fixed cost is as large as its arithmetic (measured: 3.1 → 2.5 ms CPU for 100 rows of the default
    model): a mixture layer's V and gate as one matmul, Linear layers as ``addmm`` with pre-transposed
    weights, the towers' first layer as two ``addmm`` over the cross and deep parts (no concatenation)
    and their later layers block-diagonal. The same arithmetic up to float rounding. The weights are
    copied when the object is made, like ``weight`` (a model is not changed in place while served).
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
        with torch.no_grad():
            self._mix = [
                _MixtureWeights(c) if isinstance(c, CrossLayerMixture) else None for c in bb.cross.layers
            ]
            deep = list(bb.deep)[1:] if self.deep0 is not None else ([] if self.parallel else list(bb.deep))
            self._deep = [_step(mod) for mod in deep]
            self._deep0_bias = self.deep0.bias.detach().clone() if self.deep0 is not None else None
            # the parallel backbone's output is [cross (d) | deep]: the towers' first layer split at d
            self._towers = _TowerWeights.of(model.towers, self.weight.shape[0] if self.parallel else None)

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
        mix0 = self._mix[0]
        if mix0 is not None:  # CrossLayerMixture.forward with x = x0 and x @ [v | gate] given
            x = mix0.cross(x0, x0, zc)
        elif isinstance(c0, CrossLayerLowRank):
            x = torch.addcmul(x0, x0, c0.u(zc))
        else:
            assert isinstance(c0, CrossLayerFull)
            x = torch.addcmul(x0, x0, zc + c0.linear.bias)
        for layer, mix in zip(list(m.backbone.cross.layers)[1:], self._mix[1:], strict=True):
            x = mix.cross(x0, x, x @ mix.vg) if mix is not None else layer(x0, x)
        if not self.parallel:
            deep = x
            for step in self._deep:
                deep = step(deep)
            return self._towers([deep]) if self._towers is not None else m.towers(deep)
        if self._deep0_bias is None:
            deep = x0
        else:
            deep = z[:, self.n_cross :] + self._deep0_bias
            for step in self._deep:
                deep = step(deep)
        if self._towers is not None:
            return self._towers([x, deep])
        return m.towers(torch.cat([x, deep], dim=1))


class _MixtureWeights:
    """One :class:`CrossLayerMixture`'s weights laid out for :meth:`cross` (copies)."""

    def __init__(self, layer: CrossLayerMixture) -> None:
        E, r = layer.experts, layer.rank
        self.E, self.r = E, r
        self.vg = torch.cat([layer.v.detach(), layer.gate.weight.detach().t()], 1).contiguous()
        self.c = layer.c.detach().clone()
        self.u = layer.u.detach().clone()
        self.bias = layer.bias.detach().clone()
        self.act = torch.tanh if isinstance(layer.act, torch.nn.Tanh) else layer.act

    def cross(self, x0: torch.Tensor, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``CrossLayerMixture.forward(x0, x)`` given ``a = x @ [v | gate]`` (B, E·r + E)."""
        B, E, r = x.shape[0], self.E, self.r
        h = self.act(a[:, : E * r]).view(B, E, r)
        h = self.act(torch.bmm(h.transpose(0, 1), self.c).transpose(0, 1))  # (B, E, r): every C_e g(V_eᵀ x)
        g = torch.softmax(a[:, E * r :], dim=-1)
        h = h.mul_(g.unsqueeze(-1)).reshape(B, E * r)  # gate applied in the low-rank space
        return torch.addcmul(x, x0, torch.addmm(self.bias, h, self.u))


def _step(mod: torch.nn.Module) -> Any:
    """One deep-network module as a function: Linear as ``addmm`` with its weight transposed once, ReLU
    in place, anything else the module itself (eval mode: dropout is the identity)."""
    if isinstance(mod, torch.nn.Linear):
        w, b = mod.weight.detach().t().contiguous(), mod.bias
        if b is None:
            return lambda x: x @ w
        b = b.detach().clone()
        return lambda x: torch.addmm(b, x, w)
    if isinstance(mod, torch.nn.ReLU):
        return torch.relu_
    return mod


class _TowerWeights:
    """The task towers (:class:`~intentrank.ranking.layers.towers.TaskTowers`) on a 2-D shared input as
    matmuls: the first layer's weight (in, n·out) split by rows over the input's parts (so the cross and
    deep outputs need no concatenation), the later layers block-diagonal (n·in, n·out)."""

    def __init__(self, towers: Any, first_rows: int | None) -> None:
        net = towers.net
        n = net.n
        w0 = net.weights[0].detach()
        full = w0.permute(1, 0, 2).reshape(w0.shape[1], n * w0.shape[2])
        cuts = [0, first_rows, full.shape[0]] if first_rows else [0, full.shape[0]]
        self.first = [full[a:b].contiguous() for a, b in itertools.pairwise(cuts)]
        self.b0 = net.biases[0].detach().reshape(-1).clone()
        self.later = [
            (torch.block_diag(*w.detach().unbind(0)).contiguous(), b.detach().reshape(-1).clone())
            for w, b in zip(list(net.weights)[1:], list(net.biases)[1:], strict=True)
        ]
        self.n, self.last_activation = n, net.last_activation

    @classmethod
    def of(cls, towers: Any, first_rows: int | None) -> _TowerWeights | None:
        """None when the towers are not plain (batch norm, dropout in training, another class)."""
        net = getattr(towers, "net", None)
        if (
            type(net) is not BatchedMLP
            or net.norms is not None
            or type(towers).forward is not TaskTowers.forward
        ):
            return None
        if not isinstance(net.dropout, torch.nn.Identity) and towers.training:
            return None
        return cls(towers, first_rows)

    def __call__(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """(n, B) outputs from the input's parts (B, ·) (the columns of the towers' input, in order)."""
        h = torch.addmm(self.b0, parts[0], self.first[0])
        for x, w in zip(parts[1:], self.first[1:], strict=True):
            h.addmm_(x, w)
        for w, b in self.later:
            h = torch.addmm(b, torch.relu_(h), w)
        if self.last_activation:
            h = torch.relu_(h)
        return h.t()


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


class _Transforms:
    """The dense encoder's transforms of several columns at once: ``_transform`` column by column."""

    def __init__(self, cols: list[_Col]) -> None:
        self.log1p = np.array([c.log1p for c in cols], bool)
        self.any_log1p = bool(self.log1p.any())
        self.scale = np.array([c.scale for c in cols], np.float64)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """(N, c) float64 raw values → transformed (a new array)."""
        out = v.copy()
        if self.any_log1p:
            out[:, self.log1p] = np.log1p(np.clip(v[:, self.log1p], 0.0, None))
        out *= self.scale
        return out


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
