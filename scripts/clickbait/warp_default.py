"""Add the monotone warp to the shipped default ensemble (members and stack weights unchanged).

Inputs (from prep.py and ft.py): the validation split's member predictions from models fit on the fit part
only (lexical `lex_fit`, fine-tuned int8 `fit_int8`), i.e. the same out-of-fold predictions the shipped
stack weights were fit on. The warp's pin is chosen on Stop Clickbait's validation rows and its values are
fit to Webis-17 validation `truth_mean` (EnsembleBackend.fit_warp). Nothing from the held-out 20% is used.
Then rebuild the score cache: `.venv/bin/python docs/clickbait-training/rebuild_cache.py`.
"""
import json
import numpy as np
from intentrank.clickbait.scorer import ClickbaitScorer, DEFAULT_MODEL_DIR
from intentrank.clickbait.training import auc
z = np.load("runs/issue2_dev/corpus.npz"); ft = np.load("runs/issue2_dev/device3/ft_preds.npz")
y, label, src, part, w = z["y"], z["label"], z["src"], z["part"], z["w"]
sc = ClickbaitScorer.load(DEFAULT_MODEL_DIR)
ens = sc.backend
c = ens.coef
raw = c[0] + c[1] * z["lex_fit"] + c[2] * ft["fit_int8"].astype(np.float64)
v = part == 1
ens.use_warp, ens.threshold = True, 0.5
ens.warp = ens.fit_warp(raw[v], y[v], w[v], src[v] == 1)
def metrics(p):
    p = np.clip(p, 0, 1); wv = v & (src == 0); sv = v & (src == 1)
    return dict(auc=round(auc(label[wv], p[wv]), 4), mse=round(float(np.mean((p[wv] - y[wv]) ** 2)), 5),
                stop_acc=round(float(np.mean((p[sv] >= 0.5) == (label[sv] == 1))), 4))
print("validation, no warp:", metrics(raw))
print("validation, warp:   ", metrics(ens.warp(raw)))
print("warp:", json.dumps(ens.warp.to_dict()))
sc.info["warp"] = "monotone warp fit on the validation split (docs/clickbait-training/warp_default.py)"
sc.cache = None  # stale: rebuild_cache.py recomputes it with the warp
sc.save(DEFAULT_MODEL_DIR)
