"""Exports alt-profanity-check's TF-IDF vectorizer and calibrated linear SVMs to the compact file
the local toxicity backend embeds. Run through scripts/export-profanity-model, which installs the
pinned package into a throwaway virtualenv first.

    python export_profanity_model.py OUT_MODEL OUT_REFERENCE EVAL_CSV

OUT_MODEL (gzip) holds, little-endian:
    b"APC1", u32 n_features, u32 n_estimators,
    per estimator: f64 intercept, f64 sigmoid a, f64 sigmoid b,
    n_features x f64 idf,
    per estimator: n_features x f64 coefficient,
    u32 byte length + the vocabulary in feature order, UTF-8, one word per line.
predict_prob(text) = mean over estimators of 1 / (1 + exp(a * f + b)), with
f = coef . l2normalize(count(token) * idf(token)) + intercept, tokens being the lowercased maximal
runs of word characters at least two characters long that are in the vocabulary.

OUT_REFERENCE: CSV text,probability of every text in EVAL_CSV plus a few edge cases, computed by
the Python package itself, so a Rust test can check the reimplementation against it.
"""

import csv
import gzip
import struct
import sys
from importlib import resources

import joblib
import numpy as np
from profanity_check import predict_prob

EXTRA = [
    "",
    "!!!",
    "a",
    "idiot idiot idiot idiot",
    "IDIOT",
    "Pokémon josé beyoncé",
    "snake_case_identifier and CamelCase",
    "naïve café résumé",
    "the the the and of",
    "x1 2b 42 99problems",
    "ΣΊΣΥΦΟΣ final sigma",
    "tabs\tand\nnewlines\r\nhere",
    "shit" * 5,
    "you're a fucking idiot, you know that? " * 20,
]


def main():
    out_model, out_reference, eval_csv = sys.argv[1:4]
    data = resources.files("profanity_check") / "data"
    vectorizer = joblib.load(data / "vectorizer.joblib")
    model = joblib.load(data / "model.joblib")

    params = vectorizer.get_params()
    # What the Rust side reimplements; anything else and the export is refused.
    assert params["analyzer"] == "word" and params["lowercase"] and params["ngram_range"] == (1, 1)
    assert params["token_pattern"] == r"(?u)\b\w\w+\b" and params["tokenizer"] is None
    assert params["preprocessor"] is None and params["strip_accents"] is None
    assert params["norm"] == "l2" and params["use_idf"] and not params["sublinear_tf"]
    assert not params["binary"]
    assert list(model.classes_) == [0, 1]
    assert model.method == "sigmoid"

    vocabulary = sorted(vectorizer.vocabulary_.items(), key=lambda kv: kv[1])
    assert [i for _, i in vocabulary] == list(range(len(vocabulary)))
    words = [w for w, _ in vocabulary]
    assert all("\n" not in w for w in words)
    idf = np.asarray(vectorizer.idf_, dtype="<f8")
    estimators = model.calibrated_classifiers_

    out = bytearray(b"APC1")
    out += struct.pack("<II", len(words), len(estimators))
    for c in estimators:
        (calibrator,) = c.calibrators
        out += struct.pack("<ddd", float(c.estimator.intercept_[0]), float(calibrator.a_), float(calibrator.b_))
    out += idf.tobytes()
    for c in estimators:
        coef = np.asarray(c.estimator.coef_[0], dtype="<f8")
        assert coef.shape == idf.shape
        out += coef.tobytes()
    vocab = "\n".join(words).encode("utf-8")
    out += struct.pack("<I", len(vocab)) + vocab
    with open(out_model, "wb") as f:
        # mtime 0: the same model always gives the same bytes.
        f.write(gzip.compress(bytes(out), compresslevel=9, mtime=0))

    with open(eval_csv, newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    texts += EXTRA
    probs = predict_prob(texts)
    with open(out_reference, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "probability"])
        for t, p in zip(texts, probs):
            w.writerow([t, repr(float(p))])
    print(f"{len(words)} words, {len(estimators)} estimators, {len(out)} bytes raw")


if __name__ == "__main__":
    main()
