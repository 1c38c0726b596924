"""The multi-task ranker: fused id embeddings + dense features → backbone → one tower per task.

:class:`MultiTaskNet` is the generic model (any task names; used for the Census-Income benchmark).
:class:`MultiTaskRanker` is the feed ranker with the contract's heads: ``click`` (logit of P(click)),
``dwell`` (log1p seconds given a click), ``conversion`` (logit of P(conversion | click)) and, with
ESMM, ``ctcvr`` (logit of P(click & conversion)); plus the optional shallow bias tower.

Batch dict: categorical long tensors (B,) and dense float tensors (B,) by feature name, text features'
n-gram ids (B, max_tokens) by name (0 = padding); for speed a batch may instead carry them packed as
``"cat"`` (B, F), ``"dense"`` (B, D) and ``"text"`` (B, L) in the spec's order (what
:class:`intentrank.ranking.features.FeatureEncoder` produces; the named entries are views).

References:
    R. Wang et al., "DCN V2: Improved Deep & Cross Network ...", WWW 2021 (the DCN backbones).
    J. Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
    Mixture-of-Experts", KDD 2018 (the MMoE backbone).
    X. Ma et al., "Entire Space Multi-Task Model: An Effective Approach for Estimating Post-Click
    Conversion Rate", SIGIR 2018 (the ``ctcvr`` head).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from intentrank.ranking.config import FeatureSpecConfig, ModelConfig, RankerConfig, ShallowTowerConfig
from intentrank.ranking.layers.embedding import FusedEmbedding, TextEmbedding
from intentrank.ranking.layers.towers import ShallowTower, TaskTowers
from intentrank.ranking.models.backbones import build_backbone
from intentrank.ranking.models.esmm import ctcvr_logit
from intentrank.ranking.outputs import natural_units

#: The ranker's task heads, in tower order.
RANKER_TASKS: tuple[str, ...] = ("click", "dwell", "conversion")


class MultiTaskNet(nn.Module):
    """Generic multi-task network returning one logit (or regression output) per task name.

    ``x0 = [embeddings of the categorical features, mean n-gram embedding of each text feature, main
    dense features, zero padding]`` (B, d) →
    backbone (DCN-V2 stacked / parallel or MMoE, ``model.backbone``) → one tower per task, plus the
    optional shallow bias tower's logit added to every task in training.

    Args:
        features: Categorical and dense inputs (names, buckets, embedding width).
        model: Backbone, tower and regularisation settings.
        tasks: Task names, in tower order (the keys of the output dict).
        sparse_embeddings: Sparse gradients for the embedding table.
        shallow_tower: Bias tower over some dense features (None = off).

    Example:
        >>> import torch
        >>> from intentrank.ranking.config import (
        ...     CategoricalFeature, DenseFeature, FeatureSpecConfig, ModelConfig)
        >>> spec = FeatureSpecConfig(
        ...     categorical=[CategoricalFeature(name="user", buckets=10)],
        ...     dense=[DenseFeature(name="age")], embedding_dim=4)
        >>> net = MultiTaskNet(spec, ModelConfig(backbone="mmoe"), tasks=["income", "married"])
        >>> out = net({"user": torch.tensor([1, 2]), "age": torch.tensor([0.5, 1.0])})
        >>> {task: tuple(logit.shape) for task, logit in out.items()}
        {'income': (2,), 'married': (2,)}
    """

    def __init__(
        self,
        features: FeatureSpecConfig,
        model: ModelConfig,
        tasks: Sequence[str],
        sparse_embeddings: bool = False,
        shallow_tower: ShallowTowerConfig | None = None,
    ) -> None:
        super().__init__()
        self.feature_spec = features
        self.tasks = tuple(tasks)
        self.cat_names = [f.name for f in features.categorical]
        self.dense_names = [f.name for f in features.dense]
        main = [i for i, f in enumerate(features.dense) if f.to_main]
        self.register_buffer("main_dense_idx", torch.tensor(main, dtype=torch.long), persistent=False)
        self.all_dense_main = len(main) == len(self.dense_names)
        self.embedding = (
            FusedEmbedding(
                [f.buckets for f in features.categorical], features.embedding_dim, sparse_embeddings
            )
            if self.cat_names
            else None
        )
        self.text_names = [f.name for f in features.text]
        self.text = (
            TextEmbedding([f.buckets for f in features.text], [f.max_tokens for f in features.text],
                          features.embedding_dim, sparse_embeddings)
            if features.text
            else None
        )  # fmt: skip
        raw_dim = (self.embedding.out_dim if self.embedding is not None else 0) + len(main)
        raw_dim += self.text.out_dim if self.text is not None else 0
        in_dim = -(-raw_dim // model.pad_input_to) * model.pad_input_to
        self.pad = in_dim - raw_dim  # constant-zero columns appended to x0 (GEMM alignment)
        self.backbone = build_backbone(in_dim, model, len(self.tasks))
        self.towers = TaskTowers(
            len(self.tasks), self.backbone.out_dim, model.tower_hidden, model.dropout, model.batch_norm
        )
        self.shallow: ShallowTower | None = None
        if shallow_tower is not None:
            idx = [self.dense_names.index(n) for n in shallow_tower.features]
            self.register_buffer("shallow_idx", torch.tensor(idx, dtype=torch.long), persistent=False)
            self.shallow = ShallowTower(len(idx), shallow_tower.hidden, shallow_tower.dropout)

    # -- inputs -------------------------------------------------------------------------------
    def _cat(self, batch: dict[str, Tensor]) -> Tensor:
        if "cat" in batch:
            return batch["cat"]
        return torch.stack([batch[n] for n in self.cat_names], dim=1)

    def _dense(self, batch: dict[str, Tensor]) -> Tensor:
        if "dense" in batch:
            return batch["dense"]
        if not self.dense_names:
            ref = batch[self.cat_names[0]]
            return torch.zeros(ref.shape[0], 0, device=ref.device)
        return torch.stack([batch[n].float() for n in self.dense_names], dim=1)

    def _text(self, batch: dict[str, Tensor]) -> Tensor:
        if "text" in batch:
            return batch["text"]
        missing = [n for n in self.text_names if n not in batch]
        if missing:
            raise KeyError(f"the batch lacks the text feature(s) {missing} (packed 'text' or by name)")
        return torch.cat([batch[n] for n in self.text_names], dim=1)

    def inputs(self, batch: dict[str, Tensor]) -> Tensor:
        """x0 (B, d): concatenated embeddings, the main network's dense features and ``pad`` zeros.

        The zero columns only align the width for fast GEMMs: in a cross layer a zero x0 column stays
        zero (``x0 ⊙ (Wx + b) + x``), and in every linear layer it multiplies weights that get no
        gradient, so the model computes the same function as without them.
        """
        dense = self._dense(batch)
        if not self.all_dense_main:
            dense = dense.index_select(1, self.main_dense_idx)
        parts = [] if self.embedding is None else [self.embedding(self._cat(batch))]
        if self.text is not None:
            parts.append(self.text(self._text(batch)))
        if dense.shape[1]:
            parts.append(dense)
        if self.pad:
            parts.append(parts[0].new_zeros(parts[0].shape[0], self.pad))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def encode(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, H): the shared representation the task heads read (for adversarial heads)."""
        return self.backbone.encode(self.inputs(batch))

    @property
    def encode_dim(self) -> int:
        """Width H of :meth:`encode` (e.g. for an adversarial head's input layer)."""
        return self.backbone.encode_dim

    def shallow_logit(self, batch: dict[str, Tensor]) -> Tensor | None:
        """The bias tower's logit (B,); its inputs are zeroed in eval mode (serving)."""
        if self.shallow is None:
            return None
        x = self._dense(batch).index_select(1, self.shallow_idx)
        if not self.training:
            x = torch.zeros_like(x)
        return self.shallow(x)

    # -- outputs ------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One output per task.

        Args:
            batch: Categorical long tensors (B,), dense float tensors (B,) and text n-gram ids
                (B, max_tokens) by feature name, or packed ``"cat"`` (B, F), ``"dense"`` (B, D), ``"text"``
                (B, L).

        Returns:
            Task name → (B,) logit (or regression output).
        """
        h = self.backbone(self.inputs(batch))
        out = self.towers(h)  # (T, B)
        bias = self.shallow_logit(batch)
        if bias is not None:
            out = out + bias
        return {t: out[i] for i, t in enumerate(self.tasks)}


class MultiTaskRanker(MultiTaskNet):
    """The feed ranker: heads click / dwell / conversion (+ ctcvr with ESMM), built from a RankerConfig.

    ``click`` is the logit of P(click), ``dwell`` log1p(seconds) given a click, ``conversion`` the logit
    of P(conversion | click); with ``model.esmm`` also ``ctcvr`` = logit(σ(click)·σ(conversion)), which
    the loss fits over all impressions (ESMM), so P(conversion | click) is learned on the entire space.

    Args:
        config: Features, model, shallow tower and training settings (``train.sparse_embeddings``).

    Example:
        >>> import torch
        >>> from intentrank.ranking.config import (
        ...     CategoricalFeature, DenseFeature, FeatureSpecConfig, ModelConfig, RankerConfig)
        >>> spec = FeatureSpecConfig(
        ...     categorical=[CategoricalFeature(name="item", buckets=50)],
        ...     dense=[DenseFeature(name="age_h")], embedding_dim=4)
        >>> ranker = MultiTaskRanker(RankerConfig(features=spec, model=ModelConfig(esmm=True)))
        >>> batch = {"item": torch.tensor([3, 7, 7]), "age_h": torch.tensor([1.0, 0.0, 5.0])}
        >>> sorted(ranker(batch))
        ['click', 'conversion', 'ctcvr', 'dwell']
        >>> {k: tuple(v.shape) for k, v in ranker.predict(batch).items()}
        {'p_click': (3,), 'time': (3,), 'p_conv': (3,)}

    References:
        X. Ma et al., "Entire Space Multi-Task Model", SIGIR 2018.
    """

    def __init__(self, config: RankerConfig) -> None:
        super().__init__(
            config.features,
            config.model,
            RANKER_TASKS,
            sparse_embeddings=config.train.sparse_embeddings,
            shallow_tower=config.shallow_tower,
        )
        self.config = config
        self.esmm = config.model.esmm

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Training outputs (logits / log1p seconds).

        Args:
            batch: As :meth:`MultiTaskNet.forward`.

        Returns:
            ``click``, ``dwell``, ``conversion`` (each (B,)) and, with ESMM, ``ctcvr`` (B,).
        """
        out = super().forward(batch)
        if self.esmm:
            out["ctcvr"] = ctcvr_logit(out["click"], out["conversion"])
        return out

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Serving outputs in natural units, in eval mode and without gradients (training mode restored).

        Args:
            batch: As :meth:`MultiTaskNet.forward`.

        Returns:
            ``p_click`` (B,) in [0, 1], ``time`` (B,) seconds given a click (≥ 0), ``p_conv`` (B,)
            P(conversion | click).
        """
        was = self.training
        self.eval()
        try:
            out = self(batch)
        finally:
            self.train(was)
        return natural_units(out)
