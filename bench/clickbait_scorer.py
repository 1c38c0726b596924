"""Benchmark of the clickbait scorer: quality per backend, throughput, time to first score, peak memory,
and new-title throughput of the distilled student against the ensemble in the same run.

    .venv/bin/python bench/clickbait_scorer.py [--with-semantic] [--json OUT.json]
    .venv/bin/python bench/clickbait_scorer.py --speed-only [--batch 256] [--titles 20000] [--student-dir D]

Quality is measured on the fixed-seed held-out 20% of Webis-17 (AUC vs click_bait, MSE vs truth_mean)
and of Stop Clickbait (accuracy at score >= 0.5, titles lower-cased), with the score cache off.
Rows: a TF-IDF ridge reference (scikit-learn, Webis train only), each backend, and the shipped default.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from intentrank.clickbait import DEFAULT_MODEL_DIR, ClickbaitConfig, ClickbaitScorer, load_default_scorer
from intentrank.clickbait.scorer import STUDENT_MODEL_DIR
from intentrank.clickbait.training import auc, evaluate, load_corpus, train_scorer

FIRST_SCORE = (
    "import time; t=time.perf_counter();"
    "from intentrank.clickbait import load_default_scorer;"
    "s=load_default_scorer(); s.use_cache=False; v=s.score(['Bench title %d you will not believe']);"
    "print(time.perf_counter()-t)"
)


def tfidf_ridge_reference(corpus, cfg: ClickbaitConfig) -> dict[str, float]:
    """The issue's reference: word+char TF-IDF with a ridge regressor, trained on Webis train only."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    tr, te = corpus.webis_split.train, corpus.webis_split.test
    X = [corpus.webis_titles[i] for i in tr]
    vw = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    vc = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    m = Ridge(alpha=1.0).fit(
        hstack([vw.fit_transform(X), vc.fit_transform(X)]).tocsr(), corpus.webis_mean[tr]
    )

    def pred(titles):
        return np.clip(m.predict(hstack([vw.transform(titles), vc.transform(titles)]).tocsr()), 0, 1)

    ws = pred([corpus.webis_titles[i] for i in te])
    si = corpus.stop_split.test
    ss = pred([corpus.stop_titles[i].lower() for i in si])
    lab = corpus.stop_label[si] == 1
    return {
        "webis_auc": auc(corpus.webis_label[te], ws),
        "webis_mse": float(np.mean((ws - corpus.webis_mean[te]) ** 2)),
        "stop_accuracy_lower": float(np.mean((ss >= 0.5) == lab)),
    }


def throughput(scorer: ClickbaitScorer, titles: list[str], repeat: int = 1) -> float:
    scorer.score(titles[:8])  # warm-up (loads the runtime)
    t = time.perf_counter()
    for _ in range(repeat):
        scorer.score(titles)
    return len(titles) * repeat / (time.perf_counter() - t)


def new_titles(corpus, n: int) -> list[str]:
    """``n`` titles no model has cached: shipped headlines with a varying suffix (realistic lengths)."""
    base = corpus.webis_titles + corpus.stop_titles
    rng = np.random.default_rng(0)
    return [f"{base[i]} ({k})" for k, i in enumerate(rng.integers(0, len(base), n))]


def batched_speed(scorer: ClickbaitScorer, titles: list[str], batch: int) -> tuple[float, np.ndarray]:
    """(titles/s, scores) scoring ``titles`` in consecutive batches of ``batch`` (cache off)."""
    scorer.use_cache = False
    scorer.score(titles[:8])  # warm-up (loads runtimes and tokenizers)
    out = np.empty(len(titles))
    t = time.perf_counter()
    for s in range(0, len(titles), batch):
        out[s : s + batch] = scorer.score(titles[s : s + batch])
    return len(titles) / (time.perf_counter() - t), out


def student_vs_ensemble(
    corpus, cfg: ClickbaitConfig, n: int, batch: int, n_ensemble: int, student_dir: str | None = None
) -> dict:
    """New-title throughput of the student and the ensemble (same run), and batched vs unbatched scores."""
    student = (
        ClickbaitScorer.load(student_dir, cfg)
        if student_dir
        else load_default_scorer(cfg.model_copy(update={"model": "student"}))
    )
    ensemble = load_default_scorer(cfg.model_copy(update={"model": "ensemble"}))
    titles = new_titles(corpus, n)
    res: dict[str, object] = {"load_before": os.getloadavg(), "batch_size": batch, "titles": n,
                              "student_dir": student_dir or str(STUDENT_MODEL_DIR)}  # fmt: skip
    sps, batched = batched_speed(student, titles, batch)
    res["student_titles_per_s"] = sps
    res["student_titles_per_s_by_batch"] = {
        b: batched_speed(student, titles[: min(n, 200 * b)], b)[0] for b in (1, 32, 1024)
    }
    k = min(n, 2000)
    alone = np.array([student.score([t])[0] for t in titles[:k]])
    res["student_max_abs_batched_minus_unbatched"] = float(np.max(np.abs(batched[:k] - alone)))
    res["unbatched_checked"] = k
    eps, ens_batched = batched_speed(ensemble, titles[:n_ensemble], batch)
    res["ensemble_titles_per_s"] = eps
    m = min(n_ensemble, 100)
    ens_alone = np.array([ensemble.score([t])[0] for t in titles[:m]])
    res["ensemble_max_abs_batched_minus_unbatched"] = float(np.max(np.abs(ens_batched[:m] - ens_alone)))
    res["ensemble_titles"] = n_ensemble
    res["speedup_student_over_ensemble"] = sps / eps
    res["student_vs_ensemble_on_new_titles"] = {
        "pearson": float(np.corrcoef(batched[:n_ensemble], ens_batched)[0, 1]),
        "mean_abs_diff": float(np.mean(np.abs(batched[:n_ensemble] - ens_batched))),
    }
    res["threads"] = {
        "cpu_count": os.cpu_count(),
        "student": "NumPy, no matrix products; MiniLM tokenizer (Rust, own pool of cpu_count threads)",
        "ensemble": "onnxruntime intra-op default (cpu_count), one title per run",
        "RAYON_RS_NUM_CPUS": os.environ.get("RAYON_RS_NUM_CPUS"),
    }
    res["load_after"] = os.getloadavg()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed-only", action="store_true", help="only the student vs ensemble speed section")
    ap.add_argument("--batch", type=int, default=256, help="titles per score() call in the speed section")
    ap.add_argument("--titles", type=int, default=20000, help="new titles the student scores")
    ap.add_argument("--ensemble-titles", type=int, default=500, help="new titles the ensemble scores")
    ap.add_argument(
        "--with-semantic", action="store_true", help="also train+evaluate the frozen-MiniLM backend (slow)"
    )
    ap.add_argument("--student-dir", default=None, help="speed section: a student model directory to time")
    ap.add_argument("--json", help="write all figures to this file")
    args = ap.parse_args()
    out: dict[str, object] = {"load_before": os.getloadavg()}
    cfg = ClickbaitConfig()
    corpus = load_corpus(cfg)
    speed_section = student_vs_ensemble(
        corpus, cfg, args.titles, args.batch, args.ensemble_titles, args.student_dir
    )
    sec = speed_section
    print(
        f"student {sec['student_titles_per_s']:,.0f} titles/s vs ensemble "
        f"{sec['ensemble_titles_per_s']:,.0f} (x{sec['speedup_student_over_ensemble']:.1f})"
        f" at batch {args.batch}; max |batched - unbatched|: student "
        f"{speed_section['student_max_abs_batched_minus_unbatched']:.3g}, ensemble "
        f"{speed_section['ensemble_max_abs_batched_minus_unbatched']:.3g}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    out["student_vs_ensemble"] = speed_section
    if args.speed_only:
        text = json.dumps(out, indent=2, default=float)
        print(text)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text)
        return

    # time to first score from process start (fresh interpreter, title not in the cache), median of 3
    firsts, wall = [], []
    for k in range(3):
        t = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-c", FIRST_SCORE % k], capture_output=True, text=True, check=True
        )
        wall.append(time.perf_counter() - t)
        firsts.append(float(r.stdout.strip()))
    out["first_score_s_process_start_median"] = float(np.median(wall))
    out["first_score_s_after_interpreter_median"] = float(np.median(firsts))
    out["first_score_child_maxrss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    quality: dict[str, dict[str, float]] = {}
    quality["tfidf_ridge_reference"] = tfidf_ridge_reference(corpus, cfg)
    default = load_default_scorer(cfg)
    default.use_cache = False
    members = {m.name: m for m in default.backend.members}  # type: ignore[attr-defined]
    speed: dict[str, float] = {}
    sample = corpus.stop_titles
    for name, backend in members.items():
        sc = ClickbaitScorer(backend, cfg)
        sc.fitted = True
        t = time.perf_counter()
        quality[name] = evaluate(sc, cfg, corpus)
        quality[name]["eval_seconds"] = time.perf_counter() - t
        speed[name] = throughput(
            sc, sample if name == "lexical" else sample[:1000], 3 if name == "lexical" else 1
        )
    if args.with_semantic:
        t = time.perf_counter()
        sem = train_scorer(cfg.model_copy(update={"semantic_head": "mlp"}), "semantic", corpus)
        quality["semantic"] = evaluate(sem, cfg, corpus)
        quality["semantic"]["train_eval_seconds"] = time.perf_counter() - t
        speed["semantic"] = throughput(sem, sample[:1000])
    student = load_default_scorer(cfg.model_copy(update={"model": "student"}))
    t = time.perf_counter()
    quality["student"] = evaluate(student, cfg, corpus)
    quality["student"]["eval_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    quality["default (ensemble)"] = evaluate(default, cfg, corpus)
    quality["default (ensemble)"]["eval_seconds"] = time.perf_counter() - t
    speed["default (ensemble), no cache"] = throughput(default, sample[:1000])
    default.use_cache = True
    speed["default (ensemble), shipped titles via cache"] = throughput(default, sample)
    out.update(
        quality=quality,
        titles_per_second=speed,
        model_dir=str(DEFAULT_MODEL_DIR),
        student_dir=str(STUDENT_MODEL_DIR),
    )
    out["bench_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_after"] = os.getloadavg()
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print("\n| model | Webis AUC | Webis MSE | Stop acc (lower-cased) |\n|---|---|---|---|")
    for k, q in quality.items():
        print(f"| {k} | {q['webis_auc']:.4f} | {q['webis_mse']:.4f} | {q['stop_accuracy_lower']:.4f} |")


if __name__ == "__main__":
    main()
