"""Assemble the shipped default model: lexical (fit here on the training 80%) + the fine-tuned int8 ONNX
(fit on the GPU device on the same rows), stacked with the weights fit on the validation split."""
import json, numpy as np, shutil
from pathlib import Path
from intentrank.clickbait.backends.lexical import LexicalBackend
from intentrank.clickbait.backends.finetuned import FinetunedBackend
from intentrank.clickbait.backends.ensemble import EnsembleBackend
from intentrank.clickbait.scorer import ClickbaitScorer, DEFAULT_MODEL_DIR, title_keys
from intentrank.clickbait.config import ClickbaitConfig
z = np.load("runs/issue2_dev/corpus.npz"); titles = json.load(open("runs/issue2_dev/titles.json"))
y, part, w = z["y"], z["part"], z["w"]
ft = np.load("runs/issue2_dev/device3/ft_preds.npz")
res = json.load(open("runs/issue2_dev/device3/ft_res.json"))
coef = np.array(res["ens_w"])
onnx = Path("runs/issue2_dev/device3/finetuned.onnx")
onnx.write_bytes(Path("runs/issue2_dev/device3/model_int8.part0").read_bytes() + Path("runs/issue2_dev/device3/model_int8.part1").read_bytes())
idx = np.flatnonzero((part <= 1) & np.array([len(t) > 0 for t in titles]))
lex = LexicalBackend(alpha=1.0).fit([titles[i] for i in idx], y[idx], w[idx])
lp = lex.predict(titles)
print("lexical matches dev run:", np.abs(lp - z["lex_train"]).max())
f = FinetunedBackend(epochs=4, lr=5e-5); f.model_file = onnx
ens = EnsembleBackend([lex, f], coef, 0.2, 0)
sc = ClickbaitScorer(ens, ClickbaitConfig()); sc.fitted = True
sc.info = {"trained_on": "80% of webis-clickbait-17 + 80% of stop-clickbait (seed 0)", "stop_weight": 0.5,
           "finetuned": "all-MiniLM-L6-v2, 4 epochs, lr 5e-5, batch 32, bf16 on one H100, int8 dynamic quantisation",
           "stack_weights_fit_on": "validation split (20% of the training 80%) with members fit on the rest"}
keep = np.array([len(t) > 0 for t in titles])
vals = coef[0] + coef[1] * lp + coef[2] * ft["train_int8"].astype(np.float64)
tk = np.array(titles, dtype=object)[keep].tolist()
keys = title_keys(tk); u, i = np.unique(keys, return_index=True)
sc.set_cache(u, vals[keep][i])
if DEFAULT_MODEL_DIR.exists(): shutil.rmtree(DEFAULT_MODEL_DIR)
sc.save(DEFAULT_MODEL_DIR)
# check the finetuned member locally on a few titles vs the device's numbers
chk = np.arange(0, len(titles), 997)
chk = chk[keep[chk]]
loc = f.predict([titles[i] for i in chk])
print("finetuned local vs device max abs diff:", np.abs(loc - ft["train_int8"][chk]).max(), len(chk))
