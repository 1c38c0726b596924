"""int8 dynamic quantization of the ranker for serving: speed and score difference vs fp32 (one thread).

``torch.ao.quantization.quantize_dynamic`` (fbgemm) turns the model's ``nn.Linear`` layers (the deep MLP,
the cross layers' gates) into int8-weight layers that quantize their input per call; the mixture cross
layers' and towers' weights are plain parameters and stay fp32. Measures, over 1,000 random input rows
(untrained default architecture, the same arithmetic as trained weights): the forward pass's thread CPU
time (median, p99) of fp32 and int8, and per-layer fp32 vs int8 ``Linear`` times at the model's shapes;
the largest p_click difference and the Spearman correlation of the two p_click orders.

Usage: ``PYTHONPATH=src .venv/bin/python bench/serving_quantized.py``; prints JSON.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np
import torch
from scipy.stats import spearmanr

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker


def _ms(fn, n: int = 100) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for _ in range(10):
        fn()
    t = []
    for _ in range(n):
        c = time.thread_time()
        fn()
        t.append((time.thread_time() - c) * 1e3)
    return {"p50_ms": round(float(np.median(t)), 3), "p99_ms": round(float(np.percentile(t, 99)), 3)}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MultiTaskRanker(RankerConfig()).eval()
    d = model.backbone.cross.layers[0].dim
    x = torch.randn(1000, d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 marks the quantized tensor API deprecated
        q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        layers = {}
        for k, n in [(d, 256), (256, 128), (d, 128)]:
            lin = torch.nn.Linear(k, n)
            ql = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear})
            a = torch.randn(1000, k)
            with torch.inference_mode():
                layers[f"{k}x{n}"] = {"fp32": _ms(lambda lin=lin, a=a: lin(a)),
                                      "int8": _ms(lambda ql=ql, a=a: ql(a))}  # fmt: skip
    with torch.inference_mode():
        p32 = torch.sigmoid(model.towers(model.backbone(x))[0]).numpy()
        p8 = torch.sigmoid(q.towers(q.backbone(x))[0]).numpy()
        out = {
            "engine": torch.backends.quantized.engine,
            "forward_fp32": _ms(lambda: model.towers(model.backbone(x))),
            "forward_int8_dynamic": _ms(lambda: q.towers(q.backbone(x))),
            "linear_layers_1000_rows": layers,
            "max_abs_p_click_diff": float(np.abs(p32 - p8).max()),
            "spearman_p_click": float(spearmanr(p32, p8).statistic),
            "load_average": os.getloadavg(),
            "torch": torch.__version__,
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
