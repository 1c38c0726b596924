"""Training throughput (examples/s) of our DCN-V2 and MMoE vs torch-rechub 0.9.0 and DeepCTR-Torch 0.3.0.

All contenders train on the same synthetic CTR data (26 categorical + 13 dense features), with the same
embedding tables (sizes and dim), cross depth / rank / experts, MLP sizes, batch size, loss (BCE),
optimiser family (Adam, lr 1e-3) and torch thread count, in one process, interleaved round-robin so
machine load hits every contender alike. Each library gets its batches pre-built in its own native
input format; the timed region is forward + backward + optimiser step only.

Ours: one fused embedding table with offsets, sparse embedding gradients updated by SparseAdam (lazy
Adam: only the rows in the batch move; Adam for everything else), vectorised cross experts / MMoE
experts / towers. The references update their embedding tables densely (their models do not expose
sparse embeddings), so both "large" tables (where that matters most) and "small" tables are reported.

Architectures are matched; remaining differences are listed by ``--help`` and in docs/ranking.md:
rechub's MLPs always use BatchNorm (ours is run with ``batch_norm=True`` against rechub) and its MMoE
gates are Linear+BatchNorm+softmax (ours: Linear+softmax); DeepCTR's DCN adds an (empty) linear part.

Usage: ``.venv/bin/python bench/ranker_speed.py [--threads 1] [--batch 1024] [--steps 30] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from intentrank.ranking.config import CategoricalFeature, DenseFeature, FeatureSpecConfig, ModelConfig
from intentrank.ranking.models import MultiTaskNet

warnings.filterwarnings("ignore")

N_SPARSE, N_DENSE, EMB = 26, 13, 16
CROSS_LAYERS, RANK, CROSS_EXPERTS = 3, 32, 4
MLP = [256, 128]
MMOE_EXPERTS, EXPERT_HIDDEN, TOWER = 4, [256, 128], [64]
LR = 1e-3

Step = Callable[[int], None]


def vocab_sizes(kind: str) -> list[int]:
    """'large': 8 tables of 200k rows and 18 of 20k (≈2M rows, Criteo-like); 'small': 26 × 1,000."""
    if kind == "large":
        return [200_000] * 8 + [20_000] * 18
    return [1_000] * N_SPARSE


def make_data(vocab: list[int], n_batches: int, batch: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        # Zipf-like ids: a few hot rows, a long tail (as in click logs)
        cat = np.stack([np.minimum(rng.zipf(1.2, batch) - 1, v - 1) for v in vocab], 1).astype(np.int64)
        dense = rng.random((batch, N_DENSE)).astype(np.float32)
        y = (rng.random((batch, 2)) < 0.2).astype(np.float32)
        out.append({"cat": cat, "dense": dense, "y": y})
    return out


def optimise(opts: list[torch.optim.Optimizer], loss: torch.Tensor) -> None:
    """One training step's update: clear grads, backward, step every optimiser."""
    for o in opts:
        o.zero_grad(set_to_none=True)
    loss.backward()
    for o in opts:
        o.step()


def print_markdown(rows: list[dict], header: list[str]) -> None:
    """Rows as a Markdown table with the given columns."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in header) + " |")


# -- ours -----------------------------------------------------------------------------------------
def ours(model: str, vocab: list[int], data: list[dict], batch_norm: bool) -> Step:
    spec = FeatureSpecConfig(
        categorical=[CategoricalFeature(name=f"C{i}", buckets=v, hashed=False) for i, v in enumerate(vocab)],
        dense=[DenseFeature(name=f"I{i}") for i in range(N_DENSE)],
        embedding_dim=EMB,
    )
    if model == "mmoe":
        cfg = ModelConfig(
            backbone="mmoe",
            mmoe={"experts": MMOE_EXPERTS, "expert_hidden": EXPERT_HIDDEN},
            tower_hidden=TOWER,
            batch_norm=batch_norm,
        )
        tasks = ["t0", "t1"]
    else:
        kind = "mixture" if model == "dcn_mix" else "full"
        cfg = ModelConfig(
            backbone="dcn_parallel",
            mlp_hidden=MLP,
            tower_hidden=[],
            batch_norm=batch_norm,
            cross={"kind": kind, "layers": CROSS_LAYERS, "rank": RANK, "experts": CROSS_EXPERTS},
        )
        tasks = ["t0"]
    net = MultiTaskNet(spec, cfg, tasks, sparse_embeddings=True)
    emb = [p for n, p in net.named_parameters() if n.startswith("embedding.")]
    rest = [p for n, p in net.named_parameters() if not n.startswith("embedding.")]
    opts = [torch.optim.SparseAdam(emb, lr=LR), torch.optim.Adam(rest, lr=LR)]
    batches = [
        {
            "cat": torch.from_numpy(d["cat"]),
            "dense": torch.from_numpy(d["dense"]),
            "y": torch.from_numpy(d["y"]),
        }
        for d in data
    ]
    net.train()

    def step(i: int) -> None:
        b = batches[i]
        out = net(b)
        loss = sum(F.binary_cross_entropy_with_logits(out[t], b["y"][:, j]) for j, t in enumerate(tasks))
        optimise(opts, loss)

    return step


def ref_optimizers(net: torch.nn.Module, sparse: bool) -> list[torch.optim.Optimizer]:
    """Adam for a reference model; with ``sparse``, its nn.Embedding tables are switched to sparse
    gradients (not an option their APIs expose) and updated by SparseAdam, like ours."""
    if not sparse:
        return [torch.optim.Adam(net.parameters(), lr=LR)]
    emb_params = []
    for m in net.modules():
        if isinstance(m, torch.nn.Embedding):
            m.sparse = True
            emb_params.append(m.weight)
    ids = {id(p) for p in emb_params}
    rest = [p for p in net.parameters() if id(p) not in ids]
    return [torch.optim.SparseAdam(emb_params, lr=LR), torch.optim.Adam(rest, lr=LR)]


# -- torch-rechub -----------------------------------------------------------------------------------
def rechub(model: str, vocab: list[int], data: list[dict], sparse: bool = False) -> Step:
    from torch_rechub.basic.features import DenseFeature as RDense
    from torch_rechub.basic.features import SparseFeature as RSparse
    from torch_rechub.models.multi_task import MMOE
    from torch_rechub.models.ranking import DCNv2

    feats = [RSparse(f"C{i}", vocab_size=v, embed_dim=EMB) for i, v in enumerate(vocab)]
    feats += [RDense(f"I{i}") for i in range(N_DENSE)]
    if model == "mmoe":
        net = MMOE(
            feats,
            ["classification", "classification"],
            n_expert=MMOE_EXPERTS,
            expert_params={"dims": EXPERT_HIDDEN},
            tower_params_list=[{"dims": TOWER}] * 2,
        )
    else:
        net = DCNv2(
            feats,
            n_cross_layers=CROSS_LAYERS,
            mlp_params={"dims": MLP},
            model_structure="parallel",
            use_low_rank_mixture=model == "dcn_mix",
            low_rank=RANK,
            num_experts=CROSS_EXPERTS,
        )
    opts = ref_optimizers(net, sparse)
    batches = []
    for d in data:
        x = {f"C{i}": torch.from_numpy(np.ascontiguousarray(d["cat"][:, i])) for i in range(N_SPARSE)}
        x |= {f"I{i}": torch.from_numpy(np.ascontiguousarray(d["dense"][:, i])) for i in range(N_DENSE)}
        batches.append((x, torch.from_numpy(d["y"])))
    net.train()

    def step(i: int) -> None:
        x, y = batches[i]
        p = net(x)  # probabilities (rechub applies the sigmoid inside)
        loss = F.binary_cross_entropy(p, y[:, : p.shape[1]] if p.dim() == 2 else y[:, 0])
        optimise(opts, loss)

    return step


# -- DeepCTR-Torch -----------------------------------------------------------------------------------
def deepctr(model: str, vocab: list[int], data: list[dict], sparse: bool = False) -> Step:
    from deepctr_torch.inputs import DenseFeat, SparseFeat
    from deepctr_torch.models import DCN, MMOE, DCNMix

    cols = [SparseFeat(f"C{i}", vocabulary_size=v, embedding_dim=EMB) for i, v in enumerate(vocab)]
    cols += [DenseFeat(f"I{i}", 1) for i in range(N_DENSE)]
    if model == "mmoe":
        net = MMOE(
            cols,
            num_experts=MMOE_EXPERTS,
            expert_dnn_hidden_units=tuple(EXPERT_HIDDEN),
            gate_dnn_hidden_units=(),
            tower_dnn_hidden_units=tuple(TOWER),
            l2_reg_embedding=0,
            l2_reg_linear=0,
            task_types=("binary", "binary"),
            task_names=("t0", "t1"),
        )
    elif model == "dcn_mix":
        net = DCNMix(
            [],
            cols,
            cross_num=CROSS_LAYERS,
            dnn_hidden_units=tuple(MLP),
            low_rank=RANK,
            num_experts=CROSS_EXPERTS,
            l2_reg_linear=0,
            l2_reg_embedding=0,
            l2_reg_cross=0,
        )
    else:
        net = DCN(
            [],
            cols,
            cross_num=CROSS_LAYERS,
            cross_parameterization="matrix",
            dnn_hidden_units=tuple(MLP),
            l2_reg_linear=0,
            l2_reg_embedding=0,
            l2_reg_cross=0,
        )
    opts = ref_optimizers(net, sparse)
    batches = [
        (torch.from_numpy(np.hstack([d["cat"].astype(np.float32), d["dense"]])), torch.from_numpy(d["y"]))
        for d in data
    ]
    net.train()

    def step(i: int) -> None:
        x, y = batches[i]
        p = net(x)
        loss = F.binary_cross_entropy(p, y[:, : p.shape[1]])
        optimise(opts, loss)

    return step


def measure(steps: dict[str, Step], n_steps: int, warmup: int, batch: int, rounds: int) -> dict[str, float]:
    """Examples/s per contender: ``rounds`` interleaved rounds of ``n_steps`` timed steps each."""
    for s in steps.values():
        for i in range(warmup):
            s(i)
    times = {k: 0.0 for k in steps}
    for r in range(rounds):
        for k, s in steps.items():
            t0 = time.perf_counter()
            for i in range(n_steps):
                s((warmup + r * n_steps + i) % (warmup + rounds * n_steps))
            times[k] += time.perf_counter() - t0
    return {k: rounds * n_steps * batch / t for k, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--vocab", choices=["large", "small", "both"], default="both")
    ap.add_argument("--models", default="dcn_full,dcn_mix,mmoe")
    ap.add_argument(
        "--ref-sparse",
        action="store_true",
        help="also run the references with sparse embeddings + SparseAdam",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"threads={args.threads} batch={args.batch} load={os.getloadavg()[0]:.2f} torch={torch.__version__}"
    )
    results = []
    vocabs = ["large", "small"] if args.vocab == "both" else [args.vocab]
    for vk in vocabs:
        vocab = vocab_sizes(vk)
        data = make_data(vocab, args.warmup + args.rounds * args.steps, args.batch)
        for model in args.models.split(","):
            steps = {
                "ours": ours(model, vocab, data, batch_norm=False),
                "ours+bn": ours(model, vocab, data, batch_norm=True),
                "rechub(bn)": rechub(model, vocab, data),
                "deepctr": deepctr(model, vocab, data),
            }
            if args.ref_sparse:
                steps["rechub+sparse"] = rechub(model, vocab, data, sparse=True)
                steps["deepctr+sparse"] = deepctr(model, vocab, data, sparse=True)
            eps = measure(steps, args.steps, args.warmup, args.batch, args.rounds)
            row = {
                "vocab": vk,
                "model": model,
                **{k: round(v) for k, v in eps.items()},
                "ours/deepctr": round(eps["ours"] / eps["deepctr"], 2),
                "ours+bn/rechub": round(eps["ours+bn"] / eps["rechub(bn)"], 2),
                "ours/faster_ref": round(eps["ours"] / max(eps["rechub(bn)"], eps["deepctr"]), 2),
                "ours+bn/faster_ref": round(eps["ours+bn"] / max(eps["rechub(bn)"], eps["deepctr"]), 2),
            }
            if args.ref_sparse:
                ref = max(eps["rechub+sparse"], eps["deepctr+sparse"])
                row |= {
                    "rechub+sparse": round(eps["rechub+sparse"]),
                    "deepctr+sparse": round(eps["deepctr+sparse"]),
                    "ours/faster_sparse_ref": round(eps["ours"] / ref, 2),
                }
            results.append(row)
            print(json.dumps(row), flush=True)
            del steps
    print(f"load after: {os.getloadavg()[0]:.2f}")
    hdr = [
        "vocab",
        "model",
        "ours",
        "ours+bn",
        "rechub(bn)",
        "deepctr",
        "ours/deepctr",
        "ours+bn/rechub",
        "ours/faster_ref",
        "ours+bn/faster_ref",
    ]
    if args.ref_sparse:
        hdr += ["rechub+sparse", "deepctr+sparse", "ours/faster_sparse_ref"]
    print_markdown(results, hdr)


if __name__ == "__main__":
    main()
