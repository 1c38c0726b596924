import json, os, sys, time
import numpy as np
import torch
from torch import nn
sys.path.insert(0, "src")
import intentrank.clickbait.encoder as E
from intentrank.clickbait.heads import RidgeHead, MLPHead
D = "runs/issue2_dev"
OUT = os.environ.get("OUT", "/tmp/out")
E._paths = lambda: (E.Path(f"{D}/model.onnx"), E.Path(f"{D}/tokenizer.json"))
titles = json.load(open(f"{D}/titles.json"))
z = np.load(f"{D}/corpus.npz")
y, label, src, part, w = z["y"], z["label"], z["src"], z["part"], z["w"]
n = len(titles)
t0 = time.time()
enc = E.MiniLMEncoder(threads=16)
# keep token states too
toks = np.zeros((n, 64, 384), np.float16); masks = np.zeros((n, 64), np.float32)
feats = np.zeros((n, 1152), np.float32)
order = np.argsort([len(t) for t in titles], kind="stable")
for s in range(0, n, 512):
    idx = order[s:s+512]
    e = enc.tokenizer.encode_batch([titles[i] for i in idx])
    ids = np.array([x.ids for x in e], np.int64); m = np.array([x.attention_mask for x in e], np.int64)
    (h,) = enc.session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": m, "token_type_ids": np.zeros_like(ids)})
    feats[idx] = enc._pool(h, m.astype(np.float32))
    L = h.shape[1]; toks[idx, :L] = h; masks[idx, :L] = m
print("encoded", n, "in", time.time() - t0, flush=True)
np.save(f"/tmp/feats.npy", feats)

def auc(yb, s):
    from scipy.stats import rankdata
    yb = yb.astype(bool); r = rankdata(s); n1, n0 = yb.sum(), (~yb).sum()
    return float((r[yb].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))

def metrics(p, rows_part):
    p = np.clip(p, 0, 1)
    wv = (src == 0) & (part == rows_part); sv = (src == 1) & (part == rows_part)
    return dict(auc=round(auc(label[wv], p[wv]), 4), mse=round(float(np.mean((p[wv] - y[wv]) ** 2)), 5),
                stop_acc=round(float(np.mean((p[sv] >= 0.5) == (label[sv] == 1))), 4))

def stack(pl, ps):  # LS on val rows: y ~ 1 + lex + sem
    v = part == 1
    A = np.stack([np.ones(v.sum()), pl[v], ps[v]], 1); ww = w[v]
    coef = np.linalg.lstsq(A * np.sqrt(ww)[:, None], y[v] * np.sqrt(ww), rcond=None)[0]
    return coef

class AttnHead(nn.Module):
    def __init__(s, hidden=256, heads=4, drop=0.2):
        super().__init__(); s.att = nn.Linear(384, heads); s.drop = nn.Dropout(drop)
        s.mlp = nn.Sequential(nn.Linear(384 * heads + 1152, hidden), nn.GELU(approximate="tanh"), nn.Dropout(drop), nn.Linear(hidden, 1))
    def forward(s, h, m, f):
        a = s.att(h).masked_fill(m[:, :, None] == 0, -1e4).softmax(1)  # B L K
        pooled = torch.einsum("blk,bld->bkd", a, h).flatten(1)
        return s.mlp(s.drop(torch.cat([pooled, f], 1))).squeeze(-1)

def fit_attn(rows, epochs=15, hidden=256, heads=4, drop=0.2, lr=1e-3, seed=0):
    torch.manual_seed(seed); dev = "cuda"
    mu = feats[rows].mean(0); sd = feats[rows].std(0) + 1e-6
    H = torch.tensor(toks, device=dev).float(); M = torch.tensor(masks, device=dev); F = torch.tensor((feats - mu) / sd, device=dev)
    Y = torch.tensor(y, device=dev).float(); W = torch.tensor(w / w[rows].mean(), device=dev).float()
    net = AttnHead(hidden, heads, drop).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    ridx = torch.tensor(np.flatnonzero(rows), device=dev); bs = 128
    steps = epochs * ((len(ridx) + bs - 1) // bs); sch = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        net.train(); perm = ridx[torch.randperm(len(ridx), generator=g).to(dev)]
        for s in range(0, len(perm), bs):
            i = perm[s:s+bs]; loss = (W[i] * (net(H[i], M[i], F[i]) - Y[i]) ** 2).mean()
            opt.zero_grad(); loss.backward(); opt.step(); sch.step()
    net.eval(); out = []
    with torch.no_grad():
        for s in range(0, n, 2048): out.append(net(H[s:s+2048], M[s:s+2048], F[s:s+2048]).cpu().numpy())
    return np.concatenate(out).astype(np.float64), net

res = {}; preds = {}
fit_rows = part == 0; train_rows = part <= 1
lex_fit, lex_train = z["lex_fit"], z["lex_train"]
res["lexical"] = dict(val=metrics(lex_fit, 1), test=metrics(lex_train, 2))
def run(name, fn):
    t = time.time(); pf = fn(fit_rows); pt = fn(train_rows)
    c = stack(lex_fit, pf)
    res[name] = dict(val=metrics(pf, 1), test=metrics(pt, 2), ens_w=[round(float(x), 3) for x in c],
                     ens_val=metrics(c[0] + c[1] * lex_fit + c[2] * pf, 1), ens_test=metrics(c[0] + c[1] * lex_train + c[2] * pt, 2), secs=round(time.time() - t, 1))
    preds[name + "_fit"] = pf.astype(np.float32); preds[name + "_train"] = pt.astype(np.float32)
    print(name, json.dumps(res[name]), flush=True)
sl_mean = slice(0, 384)
for a in [1, 10, 100, 1000]:
    run(f"ridge_mean_a{a}", lambda r, a=a: RidgeHead(a).fit(feats[r][:, sl_mean], y[r], w[r]).predict(feats[:, sl_mean]))
for a in [10, 100, 1000, 3000]:
    run(f"ridge_all_a{a}", lambda r, a=a: RidgeHead(a).fit(feats[r], y[r], w[r]).predict(feats))
for hid, ep, dr in [(256, 10, 0.2), (256, 30, 0.2), (512, 20, 0.4), (1024, 30, 0.5)]:
    run(f"mlp_h{hid}_e{ep}_d{dr}", lambda r, hid=hid, ep=ep, dr=dr: MLPHead(hid, ep, dropout=dr).fit(feats[r], y[r], w[r], device="cuda").predict(feats))
for ep, hid, hd in [(10, 256, 4), (20, 256, 4), (20, 512, 8)]:
    run(f"attn_e{ep}_h{hid}_k{hd}", lambda r, ep=ep, hid=hid, hd=hd: fit_attn(r, ep, hid, hd)[0])
json.dump(res, open(f"{OUT}/res.json", "w"), indent=1)
np.savez_compressed(f"{OUT}/preds.npz", **preds)
