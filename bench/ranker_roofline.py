"""How close our ranker's training step is to this CPU's matrix-multiply ceiling (the "roofline").

Why: with small embedding tables, DCN-V2 full rank and MMoE are compute-bound: every library runs the
same dense GEMMs (same FLOPs). If our step already runs near the core's GEMM throughput, no
implementation of the *same* model can be 1.5× faster on this machine, and the benchmark says so
with figures instead of an opinion.

1. FLOPs of one training step (forward + backward) of each model, counted by
   ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, bmm, addmm; elementwise work is not counted,
   so the bound below is optimistic for everyone).
2. The core's GEMM throughput, measured with ``torch.mm`` on the shapes these models use
   (batch × 429 by 429 × {429, 256, 32}, 256 × 128, and the transposed products of the backward pass);
   the best of them is the ceiling.
3. Ceiling in examples/s = GEMM FLOP/s ÷ FLOPs per example, next to the examples/s our step and the
   references' reach (timed as in ``ranker_speed.py``: interleaved, same batches).
4. The share of our step's CPU time spent inside GEMM kernels (``torch.profiler``: self time of
   ``aten::mm/addmm/bmm/baddbmm`` over all ops). ``1 / share`` bounds the speed-up of any
   implementation that runs the same GEMMs at the same speed, even with every other op free.

Usage: ``.venv/bin/python bench/ranker_roofline.py [--threads 1] [--batch 1024]``
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from ranker_speed import deepctr, make_data, measure, ours, print_markdown, rechub, vocab_sizes

GEMM_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def step_flops(step, i: int = 0) -> int:
    """Matmul FLOPs of one training step (forward + backward + optimiser)."""
    with FlopCounterMode(display=False) as counter:
        step(i)
    return int(counter.get_total_flops())


def gemm_share(step, first: int, n: int = 5) -> float:
    """Fraction of ``n`` steps' CPU time spent in GEMM kernels."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(first, first + n):
            step(i)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS) / total


def gemm_flops_per_s(batch: int, reps: int = 30) -> dict[str, float]:
    """FLOP/s of ``torch.mm`` on the model's typical shapes (float32, current thread count)."""
    d = 26 * 16 + 13
    shapes = {
        f"{batch}x{d} @ {d}x{d}": (batch, d, d),
        f"{batch}x{d} @ {d}x256": (batch, d, 256),
        f"{batch}x256 @ 256x128": (batch, 256, 128),
        f"{d}x{batch} @ {batch}x{d} (weight grad)": (d, batch, d),
        f"{batch}x{d} @ {d}x32 (low rank)": (batch, d, 32),
    }
    out = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            torch.mm(a, b)
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        out[name] = 2 * m * k * n * reps / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="dcn_full,mmoe")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"threads={args.threads} batch={args.batch} load={os.getloadavg()[0]:.2f} torch={torch.__version__}"
    )
    gemm = gemm_flops_per_s(args.batch)
    for k, v in gemm.items():
        print(f"GEMM {k}: {v / 1e9:.1f} GFLOP/s")
    peak = max(gemm.values())
    vocab = vocab_sizes("small")
    data = make_data(vocab, max(8, 3 + args.rounds * args.steps), args.batch)  # >= the 3 + 5 profiled steps
    rows = []
    for model in args.models.split(","):
        steps = {
            "ours": ours(model, vocab, data, batch_norm=False),
            "rechub(bn)": rechub(model, vocab, data),
            "deepctr": deepctr(model, vocab, data),
        }
        flops = {k: step_flops(s) / args.batch for k, s in steps.items()}
        eps = measure(steps, args.steps, 3, args.batch, args.rounds)
        share = gemm_share(steps["ours"], 3)
        ceiling = peak / flops["ours"]
        best_ref = max(eps["rechub(bn)"], eps["deepctr"])
        row = {
            "model": model,
            "MFLOP/example (ours, rechub, deepctr)": [round(flops[k] / 1e6, 2) for k in steps],
            "ceiling ex/s": round(ceiling),
            "ours ex/s": round(eps["ours"]),
            "ours % of ceiling": round(100 * eps["ours"] / ceiling, 1),
            "faster ref ex/s": round(best_ref),
            "1.5x faster ref, % of ceiling": round(100 * 1.5 * best_ref / ceiling, 1),
            "ours: GEMM share of step": round(share, 3),
            "bound on ours / faster ref (non-GEMM free)": round(eps["ours"] / share / best_ref, 2),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}; GEMM ceiling {peak / 1e9:.1f} GFLOP/s")
    print_markdown(rows, list(rows[0]))


if __name__ == "__main__":
    main()
