#!/usr/bin/env python3
"""Choose how the local backend combines the model and the word lists, on the development split.

    cargo build --release
    python3 scripts/toxicity/combine.py [--bin target/release/account-scanner]

Runs `account-scanner eval-toxicity data/toxicity/dev.csv --scores-out ...` (with the encoder and
heads in models/toxicity/, as built into that binary) and tries every rule of the form
"flag when the model's toxicity >= t, or when the word lists' score >= tw" (tw = never: the
model alone). Rule for choosing, the same as the heads' thresholds: the highest F1 with a
false-positive rate <= 0.10 on dev; ties go to the model alone, then to the higher tw.
Writes models/toxicity/combination.json (the chosen t and tw, and the figures of every tw
tried). Stdlib only.
"""

import argparse
import csv
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "data" / "toxicity" / "dev.csv"
OUT = ROOT / "models" / "toxicity" / "combination.json"
MAX_FPR = 0.10


def figures(rows, t, tw):
    tp = fp = tn = fn = 0
    for label, model, wordlist in rows:
        flagged = model >= t or (tw is not None and wordlist >= tw)
        if label and flagged:
            tp += 1
        elif label:
            fn += 1
        elif flagged:
            fp += 1
        else:
            tn += 1
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "fpr": fp / (fp + tn) if fp + tn else 0.0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "account-scanner"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "scores.csv"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOXICITY_")}
        subprocess.run([args.bin, "eval-toxicity", str(DEV), "--scores-out", str(scores)],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        with open(scores, newline="", encoding="utf-8") as f:
            rows = [(r["label"] == "1", float(r["model"]), float(r["wordlist"]))
                    for r in csv.DictReader(f)]
    ts = sorted({round(m, 4) for _, m, _ in rows} | {i / 100 for i in range(1, 100)})
    tws = [None] + [round(0.5 + i * 0.05, 2) for i in range(11)]
    tried = []
    for tw in tws:
        best = None
        for t in ts:
            f = figures(rows, t, tw)
            if f["fpr"] <= MAX_FPR and (best is None or f["f1"] > best[1]["f1"]):
                best = (t, f)
        if best:
            tried.append({"wordlist_threshold": tw, "threshold": best[0],
                          **{k: round(v, 4) for k, v in best[1].items()}})
    # highest F1; ties: the model alone first, then the higher word-list threshold
    chosen = max(tried, key=lambda c: (round(c["f1"], 4), c["wordlist_threshold"] is None,
                                       c["wordlist_threshold"] or 0))
    print(f"{'wordlist tw':>11} {'t':>7} {'P':>6} {'R':>6} {'F1':>6} {'FPR':>6}")
    for c in tried:
        tw = "never" if c["wordlist_threshold"] is None else c["wordlist_threshold"]
        mark = "  <- chosen" if c is chosen else ""
        print(f"{tw!s:>11} {c['threshold']:>7.4f} {c['precision']:>6.3f} {c['recall']:>6.3f} "
              f"{c['f1']:>6.3f} {c['fpr']:>6.3f}{mark}")
    doc = {
        "threshold": chosen["threshold"],
        "wordlist_threshold": chosen["wordlist_threshold"],
        "rule": "flag when model toxicity >= threshold, or word-list score >= wordlist_threshold "
                "(null: never); chosen on dev: highest F1 with FPR <= 0.10",
        "dev": {k: chosen[k] for k in ("precision", "recall", "f1", "fpr")},
        "tried": tried,
        "provenance": {
            "dev_csv_sha256": hashlib.sha256(DEV.read_bytes()).hexdigest(),
            "heads_sha256": hashlib.sha256((OUT.parent / "head.json").read_bytes()).hexdigest(),
            "command": "python3 scripts/toxicity/combine.py",
            "date": datetime.date.today().isoformat(),
        },
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
