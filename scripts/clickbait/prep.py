import json, numpy as np
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.training import load_corpus, training_set, class_means
from intentrank.clickbait.text import normalise_titles
from intentrank.clickbait.backends.lexical import LexicalBackend
cfg = ClickbaitConfig()
c = load_corpus(cfg)
lo, hi = class_means(c)
nw, ns = len(c.webis_titles), len(c.stop_titles)
titles = normalise_titles(c.webis_titles + c.stop_titles)
y = np.concatenate([c.webis_mean, np.where(c.stop_label == 1, hi, lo)])
label = np.concatenate([c.webis_label, c.stop_label]).astype(np.int8)
src = np.concatenate([np.zeros(nw, np.int8), np.ones(ns, np.int8)])
part = np.zeros(nw + ns, np.int8)  # 0 fit 1 val 2 test
for off, sp in ((0, c.webis_split), (nw, c.stop_split)):
    part[off + sp.val] = 1
    part[off + sp.test] = 2
w = np.where(src == 1, cfg.stop_weight, 1.0)
preds = {}
for name, rows in (("fit", part == 0), ("train", part <= 1)):
    b = LexicalBackend(alpha=cfg.lexical_alpha)
    idx = np.flatnonzero(rows & np.array([len(t) > 0 for t in titles]))
    b.fit([titles[i] for i in idx], y[idx], w[idx])
    preds[name] = b.predict(titles)
np.savez("runs/issue2_dev/corpus.npz", y=y, label=label, src=src, part=part, w=w, lex_fit=preds["fit"], lex_train=preds["train"])
json.dump(titles, open("runs/issue2_dev/titles.json", "w"))
print(nw, ns, lo, hi)
