"""The MMoE paper's Census-Income benchmark on the shipped file, next to a logistic-regression baseline.

Task 1: income > 50K; task 2: never married. The label columns (``income_50k``, ``marital_stat``) and
the survey weight (``instance_weight``) are dropped from the inputs. The shipped file is split 50/50
with a fixed seed; 10% of the training half is held out for early stopping. Both models see the same
rows; AUCs are on the test half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tqdm.auto import tqdm

from intentrank.data.census import CENSUS_CONTINUOUS, census_task_labels, load_census_income
from intentrank.ranking.config import CategoricalFeature, DenseFeature, FeatureSpecConfig, ModelConfig
from intentrank.ranking.features import FeatureEncoder
from intentrank.ranking.losses import binary_tasks_loss
from intentrank.ranking.models import MultiTaskNet

TASKS = ("income", "never_married")
DROPPED = ("income_50k", "marital_stat", "instance_weight")


@dataclass
class CensusResult:
    """Test AUCs per task for the multi-task model and the logistic-regression baseline."""

    model_auc: dict[str, float]
    logreg_auc: dict[str, float]
    n_train: int
    n_test: int
    epochs_run: int

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "mmoe_auc": self.model_auc,
            "logreg_auc": self.logreg_auc,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "epochs_run": self.epochs_run,
        }


def split_half(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed 50/50 split of row indices (train, test)."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def census_feature_spec(train: pd.DataFrame, embedding_dim: int = 8) -> FeatureSpecConfig:
    """Categorical: every non-continuous input column (hashed) plus quantile buckets of the continuous ones;
    dense: log1p of the continuous columns, standardised on the training rows."""
    inputs = [c for c in train.columns if c not in DROPPED and not c.endswith("_bin")]
    cont = [c for c in CENSUS_CONTINUOUS if c in inputs]
    cats = [CategoricalFeature(name=c, buckets=1021) for c in inputs if c not in cont]
    cats += [CategoricalFeature(name=f"{c}_bin", buckets=32, hashed=False) for c in cont]
    dense = []
    for c in cont:
        sd = float(np.log1p(train[c].clip(lower=0)).std()) or 1.0
        dense.append(DenseFeature(name=c, transform="log1p", scale=1.0 / sd))
    return FeatureSpecConfig(categorical=cats, dense=dense, embedding_dim=embedding_dim)


def add_bins(df: pd.DataFrame, train: pd.DataFrame, bins: int = 32) -> pd.DataFrame:
    """Quantile-bucket each continuous column with edges from the training rows (column ``<c>_bin``)."""
    out = df.copy()
    for c in CENSUS_CONTINUOUS:
        if c in DROPPED:
            continue
        edges = np.unique(np.quantile(train[c].to_numpy(), np.linspace(0, 1, bins + 1)[1:-1]))
        out[f"{c}_bin"] = np.searchsorted(edges, df[c].to_numpy(), side="right").astype(np.int64)
    return out


def logreg_baseline(
    train: pd.DataFrame, test: pd.DataFrame, ytr: pd.DataFrame, yte: pd.DataFrame, seed: int = 0
) -> dict[str, float]:
    """One logistic regression per task on one-hot categoricals + standardised log1p continuous columns."""
    inputs = [c for c in train.columns if c not in DROPPED]
    cont = [c for c in CENSUS_CONTINUOUS if c in inputs]
    cat = [c for c in inputs if c not in cont]
    ohe = OneHotEncoder(handle_unknown="ignore")
    sc = StandardScaler()
    from scipy import sparse

    def design(df: pd.DataFrame, fit: bool) -> sparse.csr_matrix:
        c = df[cat].astype(str)
        x = np.log1p(df[cont].clip(lower=0).to_numpy())
        return sparse.hstack(
            [
                ohe.fit_transform(c) if fit else ohe.transform(c),
                sc.fit_transform(x) if fit else sc.transform(x),
            ]
        ).tocsr()

    xtr, xte = design(train, True), design(test, False)
    out = {}
    for t in TASKS:
        lr = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
        lr.fit(xtr, ytr[t].to_numpy())
        out[t] = float(roc_auc_score(yte[t].to_numpy(), lr.predict_proba(xte)[:, 1]))
    return out


def _predict(net: MultiTaskNet, batch: dict[str, torch.Tensor], bs: int = 8192) -> np.ndarray:
    net.eval()
    n = batch["cat"].shape[0]
    outs = []
    with torch.no_grad():
        for s in range(0, n, bs):
            o = net({"cat": batch["cat"][s : s + bs], "dense": batch["dense"][s : s + bs]})
            outs.append(torch.stack([torch.sigmoid(o[t]) for t in net.tasks], 1))
    return torch.cat(outs).numpy()


def run_census_benchmark(
    n_rows: int | None = None,
    epochs: int = 25,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    model: ModelConfig | None = None,
    patience: int = 5,
    progress: bool = True,
    embedding_dim: int = 16,
    weight_decay: float = 0.0,
) -> CensusResult:
    """Train MMoE (default) on the fixed training half, report test AUCs next to logistic regression."""
    torch.manual_seed(seed)
    df = load_census_income()
    if n_rows is not None:
        df = df.sample(n=min(n_rows, len(df)), random_state=seed).reset_index(drop=True)
    tr_idx, te_idx = split_half(len(df), seed)
    rng = np.random.default_rng(seed + 1)
    va_mask = rng.random(len(tr_idx)) < 0.1
    fit_idx, va_idx = tr_idx[~va_mask], tr_idx[va_mask]
    labels = census_task_labels(df)
    train = df.iloc[fit_idx]
    df = add_bins(df, train)
    spec = census_feature_spec(df.iloc[fit_idx], embedding_dim)
    enc = FeatureEncoder(spec)
    cat, dense = enc.encode_numpy(df)
    cat_t, dense_t = torch.from_numpy(cat), torch.from_numpy(dense)
    y = torch.from_numpy(labels[list(TASKS)].to_numpy(dtype=np.float32).copy())
    model = model or ModelConfig(
        backbone="mmoe", mmoe={"experts": 8, "expert_hidden": [256, 128]}, tower_hidden=[64], dropout=0.3
    )
    net = MultiTaskNet(spec, model, TASKS)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    fit_t = torch.from_numpy(fit_idx)
    g = torch.Generator().manual_seed(seed)
    va = {"cat": cat_t[va_idx], "dense": dense_t[va_idx]}
    best, best_state, bad, ep = -math.inf, None, 0, 0
    for ep in range(1, epochs + 1):
        net.train()
        perm = fit_t[torch.randperm(len(fit_t), generator=g)]
        for s in tqdm(
            range(0, len(perm), batch_size), desc=f"census epoch {ep}", leave=False, disable=not progress
        ):
            idx = perm[s : s + batch_size]
            out = net({"cat": cat_t[idx], "dense": dense_t[idx]})
            loss = binary_tasks_loss(out, {t: y[idx, i] for i, t in enumerate(TASKS)})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        p = _predict(net, va)
        score = float(
            np.mean([roc_auc_score(labels[t].to_numpy()[va_idx], p[:, i]) for i, t in enumerate(TASKS)])
        )
        if score > best:
            best, bad = score, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad > patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    p = _predict(net, {"cat": cat_t[te_idx], "dense": dense_t[te_idx]})
    model_auc = {t: float(roc_auc_score(labels[t].to_numpy()[te_idx], p[:, i])) for i, t in enumerate(TASKS)}
    lr_auc = logreg_baseline(df.iloc[tr_idx], df.iloc[te_idx], labels.iloc[tr_idx], labels.iloc[te_idx], seed)
    return CensusResult(model_auc, lr_auc, len(tr_idx), len(te_idx), ep)
