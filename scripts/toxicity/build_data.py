"""Build data/toxicity/{train,dev}.csv from the hand-written sources in data/toxicity/src/.

    python3 scripts/toxicity/build_data.py          # stdlib only, deterministic (SEED)

Sources (all written for this project):
  *_pairs.tsv   pair<TAB>category<TAB>template   contrast pairs; {G} is filled with
                GROUPS_PER_PAIR groups, the same groups for every line of a pair, so a
                harmful line and its harmless look-alike mention the same group. A pair
                goes wholly to train or to dev (dev shares no template with train).
  other *.tsv   category<TAB>text                 hand-written lines, split per category.
Evasion variants (leetspeak, spacing, dropped letters) are derived from some insult,
threat and slur lines and kept in the split of the line they come from.
Rows are deduplicated (case/space/punctuation-insensitive), and a dev row whose
character-trigram Jaccard with any train row is >= NEAR_DUP is moved to train.
"""

import csv
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

SEED = 13
DEV_SHARE = 0.25
GROUPS_PER_PAIR = 4
NEAR_DUP = 0.6
ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "data" / "toxicity" / "src"
OUT = ROOT / "data" / "toxicity"

HARMFUL = ["insult", "threat", "implied_threat", "dehumanising", "implicit_derogation",
           "polite_hate", "negated_praise", "slur", "harassment", "evasion"]
HARMLESS = ["group_positive", "group_neutral", "negated_hate", "counter_speech", "moderation_talk",
            "reclaimed", "other_sense", "friendly_profanity", "untargeted_profanity", "criticism",
            "benign_violence", "chatter"]

GROUPS = [  # plural nouns that read naturally in "{G} are ...", "one of the {G}"
    # religions
    "Muslims", "Jews", "Christians", "Hindus", "Sikhs", "Catholics", "atheists", "Mormons", "Buddhists",
    # nationalities / ethnicities
    "Mexicans", "Poles", "Nigerians", "Indians", "Chinese people", "Irish people", "Romanians",
    "Pakistanis", "Americans", "Brazilians", "Filipinos", "Somalis", "Ukrainians", "Turks",
    "Black people", "white people", "Asians", "Latinos", "Roma", "Arabs", "immigrants", "refugees",
    # gender, sexuality
    "women", "men", "trans people", "trans women", "nonbinary people", "gay men", "lesbians",
    "bisexual people",
    # disability, age
    "autistic people", "deaf people", "wheelchair users", "blind people", "people with Down syndrome",
    "people with schizophrenia", "boomers", "teenagers", "old people",
    # professions, fan groups
    "nurses", "teachers", "lawyers", "truck drivers", "Arsenal fans", "furries", "anime fans",
]

LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"}


def evade(text: str, rng: random.Random) -> str:
    """One obfuscation of a harmful line, as users do to get past word filters."""
    words = text.split()
    # the longest word is usually the insult/slur/threat verb
    k = max(range(len(words)), key=lambda i: len(words[i].strip(".,!?")))
    w = words[k]
    style = rng.choice(["leet", "space", "drop", "star", "double"])
    if style == "leet":
        w = "".join(LEET.get(c, c) if rng.random() < 0.6 else c for c in w)
    elif style == "space":
        w = " ".join(w)
    elif style == "drop":
        vowels = [i for i, c in enumerate(w) if c in "aeiou"][1:]
        if vowels:
            i = rng.choice(vowels)
            w = w[:i] + w[i + 1:]
    elif style == "star":
        vowels = [i for i, c in enumerate(w) if c in "aeiou"]
        if vowels:
            i = rng.choice(vowels)
            w = w[:i] + "*" + w[i + 1:]
    else:
        w = w[:-1] + w[-1] * 3 if w[-1].isalpha() else w + w[-2] * 2
    words[k] = w
    return " ".join(words)


def norm(t: str) -> str:
    """Case/space/punctuation-insensitive form; a text with no letter or digit (emoji, "...")
    keeps its own characters so it is not dropped."""
    return re.sub(r"[^a-z0-9]+", " ", t.lower()).strip() or t.strip()


def trigrams(t: str) -> set:
    t = " " + norm(t) + " "
    return {t[i:i + 3] for i in range(len(t) - 2)}


def main() -> None:
    rng = random.Random(SEED)
    rows = {"train": [], "dev": []}
    pairs = defaultdict(list)
    hand = defaultdict(list)
    for f in sorted(SRC.glob("*.tsv")):
        for ln, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if f.name.endswith("_pairs.tsv"):
                pid, cat, text = parts
                pairs[pid].append((cat, text))
            else:
                cat, text = parts
                hand[cat].append(text)
            if cat not in HARMFUL + HARMLESS:
                sys.exit(f"{f.name}:{ln}: unknown category {cat!r}")

    # groups are dealt from a shuffled, repeated deck so each appears about equally often
    deck = []
    pids = sorted(pairs)
    rng.shuffle(pids)
    n_dev = round(len(pids) * DEV_SHARE)
    for j, pid in enumerate(pids):
        split = "dev" if j < n_dev else "train"
        chosen = []
        while len(chosen) < GROUPS_PER_PAIR:
            if not deck:
                deck = GROUPS[:]
                rng.shuffle(deck)
            g = deck.pop()
            if g not in chosen:
                chosen.append(g)
        for g in chosen:
            for cat, tpl in pairs[pid]:
                rows[split].append((tpl.replace("{G}", g), cat, f"pair:{pid}"))

    for cat in sorted(hand):
        texts = hand[cat][:]
        rng.shuffle(texts)
        n_dev = round(len(texts) * DEV_SHARE)
        for i, t in enumerate(texts):
            split = "dev" if i < n_dev else "train"
            rows[split].append((t, cat, "hand"))
            if cat in ("insult", "threat", "slur") and rng.random() < 0.45:
                rows[split].append((evade(t, rng), "evasion", f"derived:{cat}"))

    # dedupe (train first, so a duplicate in dev is the one dropped)
    seen = set()
    for split in ("train", "dev"):
        kept = []
        for r in rows[split]:
            key = norm(r[0])
            if key and key not in seen:
                seen.add(key)
                kept.append(r)
        rows[split] = kept

    # near-duplicates across splits: move to train
    tri_train = [trigrams(r[0]) for r in rows["train"]]
    moved, keep_dev = 0, []
    for r in rows["dev"]:
        t = trigrams(r[0])
        if any(len(t & u) / len(t | u) >= NEAR_DUP for u in tri_train):
            rows["train"].append(r)
            tri_train.append(t)
            moved += 1
        else:
            keep_dev.append(r)
    rows["dev"] = keep_dev

    for split in ("train", "dev"):
        rng.shuffle(rows[split])
        with open(OUT / f"{split}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["text", "label", "category"])
            for text, cat, _ in rows[split]:
                w.writerow([text, 1 if cat in HARMFUL else 0, cat])

    c = {s: Counter(r[1] for r in rows[s]) for s in rows}
    src = {s: Counter(r[2].split(":")[0] for r in rows[s]) for s in rows}
    print(f"{'category':22} {'label':>5} {'train':>6} {'dev':>5}")
    for cat in HARMFUL + HARMLESS:
        print(f"{cat:22} {int(cat in HARMFUL):>5} {c['train'][cat]:>6} {c['dev'][cat]:>5}")
    for s in ("train", "dev"):
        h = sum(c[s][k] for k in HARMFUL)
        print(f"{s}: {len(rows[s])} rows, {h} harmful, {len(rows[s]) - h} harmless; sources {dict(src[s])}")
    print(f"moved {moved} near-duplicate dev rows to train (trigram Jaccard >= {NEAR_DUP})")


if __name__ == "__main__":
    main()
