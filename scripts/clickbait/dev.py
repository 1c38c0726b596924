"""Frozen-encoder heads on MiniLM features, each stacked with the lexical member (GPU; model selection).

The exploration before fine-tuning (docs/clickbait.md, "Model selection"; its figures are
docs/clickbait-training/frozen_heads_device.json): MiniLM token states of every title, then ridge heads on
mean-pooled / all pooled features, MLP heads and an attention-pooling head, each fit on the fit part and
on the whole training 80%, scored on validation (and test), and stacked with lexical by least squares on
the validation rows. Needs a CUDA GPU for the MLP and attention heads. Writes ``OUT/res.json``,
``OUT/preds.npz`` and ``OUT/feats.npy``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", **common.work_arg())  # type: ignore[arg-type]
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: WORK/dev)")
    ap.add_argument("--onnx", type=Path, default=None, help="MiniLM ONNX file (default: the pinned int8 one)")
    ap.add_argument("--tokenizer", type=Path, default=None, help="tokenizer.json (default: the pinned one)")
    ap.add_argument("--threads", type=int, default=16, help="onnxruntime threads for encoding")
    ap.add_argument("--device", default="cuda", help="torch device of the MLP / attention heads")
    args = ap.parse_args()
    out = args.out or args.work / "dev"
    out.mkdir(parents=True, exist_ok=True)
    run(common.Prepared.load(args.work), out, args)


def run(d: common.Prepared, out: Path, args: argparse.Namespace) -> None:
    """Encode, fit every head, write the results."""
    import numpy as np
    import torch
    from torch import nn

    import intentrank.clickbait.encoder as E
    from intentrank.clickbait.heads import MLPHead, RidgeHead

    if args.onnx or args.tokenizer:
        onnx, tok = E._paths()
        E._paths = lambda: (args.onnx or onnx, args.tokenizer or tok)
    titles, y, part, w = d.titles, d.y, d.part, d.w
    n = len(titles)
    t0 = time.time()
    enc = E.MiniLMEncoder(threads=args.threads)
    # keep the token states too (for the attention head)
    toks = np.zeros((n, 64, 384), np.float16)
    masks = np.zeros((n, 64), np.float32)
    feats = np.zeros((n, 1152), np.float32)
    order = np.argsort([len(t) for t in titles], kind="stable")
    for s in range(0, n, 512):
        idx = order[s : s + 512]
        e = enc.tokenizer.encode_batch([titles[i] for i in idx])
        ids = np.array([x.ids for x in e], np.int64)
        m = np.array([x.attention_mask for x in e], np.int64)
        feeds = {"input_ids": ids, "attention_mask": m, "token_type_ids": np.zeros_like(ids)}
        (h,) = enc.session.run(["last_hidden_state"], feeds)
        feats[idx] = enc._pool(h, m.astype(np.float32))
        L = h.shape[1]
        toks[idx, :L] = h
        masks[idx, :L] = m
    print("encoded", n, "in", time.time() - t0, flush=True)
    np.save(out / "feats.npy", feats)

    class AttnHead(nn.Module):
        """Attention pooling of the token states (``heads`` queries) + the pooled features -> MLP."""

        def __init__(self, hidden: int = 256, heads: int = 4, drop: float = 0.2) -> None:
            super().__init__()
            self.att = nn.Linear(384, heads)
            self.drop = nn.Dropout(drop)
            self.mlp = nn.Sequential(
                nn.Linear(384 * heads + 1152, hidden),
                nn.GELU(approximate="tanh"),
                nn.Dropout(drop),
                nn.Linear(hidden, 1),
            )

        def forward(self, h: torch.Tensor, m: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
            a = self.att(h).masked_fill(m[:, :, None] == 0, -1e4).softmax(1)  # B L K
            pooled = torch.einsum("blk,bld->bkd", a, h).flatten(1)
            return self.mlp(self.drop(torch.cat([pooled, f], 1))).squeeze(-1)

    def fit_attn(
        rows: np.ndarray, epochs: int = 15, hidden: int = 256, heads: int = 4, drop: float = 0.2,
        lr: float = 1e-3, seed: int = 0,
    ) -> np.ndarray:  # fmt: skip
        torch.manual_seed(seed)
        dev = args.device
        mu = feats[rows].mean(0)
        sd = feats[rows].std(0) + 1e-6
        H = torch.tensor(toks, device=dev).float()
        M = torch.tensor(masks, device=dev)
        F = torch.tensor((feats - mu) / sd, device=dev)
        Y = torch.tensor(y, device=dev).float()
        W = torch.tensor(w / w[rows].mean(), device=dev).float()
        net = AttnHead(hidden, heads, drop).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
        ridx = torch.tensor(np.flatnonzero(rows), device=dev)
        bs = 128
        steps = epochs * ((len(ridx) + bs - 1) // bs)
        sch = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            net.train()
            perm = ridx[torch.randperm(len(ridx), generator=g).to(dev)]
            for s in range(0, len(perm), bs):
                i = perm[s : s + bs]
                loss = (W[i] * (net(H[i], M[i], F[i]) - Y[i]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sch.step()
        net.eval()
        outs = []
        with torch.no_grad():
            for s in range(0, n, 2048):
                outs.append(net(H[s : s + 2048], M[s : s + 2048], F[s : s + 2048]).cpu().numpy())
        return np.concatenate(outs).astype(np.float64)

    res: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    fit_rows, train_rows = part == common.FIT, part <= common.VAL
    lex_fit, lex_train = d.lex_fit, d.lex_train
    res["lexical"] = {"val": d.metrics(lex_fit, common.VAL), "test": d.metrics(lex_train, common.TEST)}

    def head(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        t = time.time()
        pf, pt = fn(fit_rows), fn(train_rows)
        c = d.stack_weights(lex_fit, pf)
        res[name] = {
            "val": d.metrics(pf, common.VAL),
            "test": d.metrics(pt, common.TEST),
            "ens_w": [round(float(x), 3) for x in c],
            "ens_val": d.metrics(c[0] + c[1] * lex_fit + c[2] * pf, common.VAL),
            "ens_test": d.metrics(c[0] + c[1] * lex_train + c[2] * pt, common.TEST),
            "secs": round(time.time() - t, 1),
        }
        preds[name + "_fit"] = pf.astype(np.float32)
        preds[name + "_train"] = pt.astype(np.float32)
        print(name, json.dumps(res[name]), flush=True)

    mean = slice(0, 384)
    for a in [1, 10, 100, 1000]:
        head(
            f"ridge_mean_a{a}",
            lambda r, a=a: RidgeHead(a).fit(feats[r][:, mean], y[r], w[r]).predict(feats[:, mean]),
        )
    for a in [10, 100, 1000, 3000]:
        head(f"ridge_all_a{a}", lambda r, a=a: RidgeHead(a).fit(feats[r], y[r], w[r]).predict(feats))
    for hid, ep, dr in [(256, 10, 0.2), (256, 30, 0.2), (512, 20, 0.4), (1024, 30, 0.5)]:
        head(
            f"mlp_h{hid}_e{ep}_d{dr}",
            lambda r, hid=hid, ep=ep, dr=dr: (
                MLPHead(hid, ep, dropout=dr).fit(feats[r], y[r], w[r], device=args.device).predict(feats)
            ),
        )
    for ep, hid, hd in [(10, 256, 4), (20, 256, 4), (20, 512, 8)]:
        head(f"attn_e{ep}_h{hid}_k{hd}", lambda r, ep=ep, hid=hid, hd=hd: fit_attn(r, ep, hid, hd))
    (out / "res.json").write_text(json.dumps(res, indent=1))
    np.savez_compressed(out / "preds.npz", **preds)


if __name__ == "__main__":
    main()
