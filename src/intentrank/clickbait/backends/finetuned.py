"""Fine-tuned backend: all-MiniLM-L6-v2 fine-tuned end to end as a regressor (mean pooling + linear),
exported to ONNX with int8 weights and scored with onnxruntime (no torch at scoring time).

Fitting needs torch + transformers and, for the export, the ``onnx`` package; on CPU it takes hours,
on one GPU about a minute per epoch (see docs/clickbait.md). The shipped default model was fitted this way.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from intentrank.clickbait.backends.base import Backend
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.encoder import _paths
from intentrank.errors import DataError, IntentRankError


class FinetunedBackend(Backend):
    """An ONNX regression model over MiniLM tokens that outputs the clickbait score directly.

    ``batch_size`` is 1 by default: with int8 dynamic quantisation the activation scale is computed per
    batch, so in larger batches a title's score would depend (by up to ~0.02) on the other titles in its
    batch. One title per run keeps scores deterministic per title, at about 20% less throughput.
    """

    name = "finetuned"
    FILE = "finetuned.onnx"

    def __init__(self, epochs: int = 4, lr: float = 5e-5, max_tokens: int = 64, batch_size: int = 1) -> None:
        self.epochs, self.lr, self.max_tokens, self.batch_size = epochs, lr, max_tokens, batch_size
        self.model_file: Path | None = None
        self._session: Any = None
        self._tokenizer: Any = None

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> FinetunedBackend:
        return cls(epochs=config.finetune_epochs, lr=config.finetune_lr)

    def _load_runtime(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if self.model_file is None or not self.model_file.is_file():
            raise IntentRankError(f"fine-tuned clickbait model file not found: {self.model_file}")
        tok = Tokenizer.from_file(str(_paths()[1]))
        tok.enable_truncation(max_length=self.max_tokens)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(self.model_file), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
            why = "the file is empty" if self.model_file.stat().st_size == 0 else type(err).__name__
            raise DataError(
                f"{self.model_file}: not a readable ONNX model, corrupt or truncated ({why})"
            ) from None
        names = [o.name for o in self._session.get_outputs()]
        if "score" not in names:
            raise DataError(f"{self.model_file}: ONNX model has no 'score' output (outputs: {names})")
        self._tokenizer = tok

    def predict(self, titles: list[str]) -> np.ndarray:
        if self._session is None:
            self._load_runtime()
        out = np.zeros(len(titles), dtype=np.float64)
        order = np.argsort([len(t) for t in titles], kind="stable")
        for s in range(0, len(titles), self.batch_size):
            idx = order[s : s + self.batch_size]
            enc = self._tokenizer.encode_batch([titles[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            (score,) = self._session.run(
                ["score"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            out[idx] = score
        return out

    def fit(self, titles: list[str], y: np.ndarray, w: np.ndarray) -> FinetunedBackend:
        from intentrank.clickbait.finetune import finetune_to_onnx

        self.model_file = finetune_to_onnx(titles, y, w, self.epochs, self.lr, self.max_tokens)
        self._session = None
        return self

    def save(self, directory: Path) -> dict[str, Any]:
        assert self.model_file is not None
        target = directory / self.FILE
        if self.model_file.resolve() != target.resolve():
            shutil.copyfile(self.model_file, target)
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "max_tokens": self.max_tokens,
            "batch_size": self.batch_size,
        }

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> FinetunedBackend:
        ints = {k: int(params[k]) for k in ("epochs", "max_tokens", "batch_size")}
        self = cls(**ints, lr=float(params["lr"]))
        if self.max_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_tokens and batch_size must be >= 1")
        self.model_file = directory / cls.FILE
        if not self.model_file.is_file():
            raise IntentRankError(f"{directory}: missing {cls.FILE}")
        return self
