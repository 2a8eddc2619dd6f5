"""The full measurement of trustworthy LLM explanations (course_lib.trust.measure) on the shop: each method's top
item explained for N showcase users, the template and the LLM rewrite, the perturbation benchmark (five planted error
kinds, rates on the held-out half), simulatability per method, and naming on every interest of those users.

    PYTHONPATH=. python benchmarks/bench_trust.py --users 12 --template-users 60 --naming-users 50 --json benchmarks/trust_results.json

Notebook 08 reads the committed results file for the full numbers (and says so); rerun this to refresh it. Generated
texts are cached (course_lib.llm's output cache), so a second run only re-scores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_lib import constants as C  # noqa: E402
from course_lib import llm as L  # noqa: E402
from course_lib import trust  # noqa: E402
from course_lib.baselines import EASE, Content, ItemKNN  # noqa: E402
from course_lib.catalogue import Catalogue  # noqa: E402
from course_lib.data import load_shop, make_split  # noqa: E402
from course_lib.data.shop import grounding_terms, label_words  # noqa: E402
from course_lib.encode import TextEncoder  # noqa: E402
from course_lib.data.shop import shop_fingerprint  # noqa: E402
from course_lib.files import write_json  # noqa: E402
from course_lib.profiles import description_profiles  # noqa: E402
from course_lib.serving import MultiInterest, SlotPolicy  # noqa: E402
from course_lib.tiers import name_interests  # noqa: E402
from course_lib.widgets import showcase_users  # noqa: E402


def setup(k: int = 10, half_life_days: float = 30.0, test_frac: float = 0.2):
    """Notebook 08's setup at its defaults: the shop, four fitted methods, tiered interests, the vocabulary."""
    ds = load_shop(None)
    items = ds.items
    encoder = TextEncoder("all-MiniLM-L6-v2")
    catalogue = Catalogue.from_items(items, encoder.encode(items[C.TEXT].tolist()))
    split = make_split(ds.interactions, "global", test_frac)
    desc = description_profiles(ds.users, encoder)
    models = {"content": Content(catalogue, half_life_days=half_life_days, fallback="popularity").fit(split.train),
              "item-kNN": ItemKNN(catalogue).fit(split.train), "EASE": EASE(catalogue).fit(split.train),
              "tier-aware": MultiInterest(catalogue, k=k, policy=SlotPolicy(), descriptions=desc).fit(split.train)}
    tiered = models["tier-aware"].tiered_
    name_interests(tiered, label_words(), encoder)
    vocab = trust.vocabulary(items, tiered, grounding_terms())
    return ds, encoder, catalogue, split, models, tiered, vocab


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=60, help="showcase users (each method explains their top item)")
    p.add_argument("--template-users", type=int, default=None,
                   help="showcase users whose explanations enter the benchmark as templates only (no generation)")
    p.add_argument("--naming-users", type=int, default=None,
                   help="showcase users whose every interest is named (default: --users)")
    p.add_argument("--model", default=L.DEFAULT_LLM, help="LLM: bundled name, hub id, folder or .gguf path")
    p.add_argument("--seed", type=int, default=C.SEED)
    p.add_argument("--json", default=None, help="write the summary here (JSON)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    ds, encoder, catalogue, split, models, tiered, vocab = setup()
    users = showcase_users(tiered, n=a.users, min_events=8)
    llm = L.LLM(a.model, max_new_tokens=80)
    res = trust.measure(llm, models, tiered, users, split.train, ds.items, vocab, encoder, catalogue.vectors,
                        label_words(), seed=a.seed,
                        naming_users=showcase_users(tiered, n=a.naming_users, min_events=8) if a.naming_users else None,
                        template_users=showcase_users(tiered, n=a.template_users, min_events=8) if a.template_users
                        else None)
    out = {"command": f"python benchmarks/bench_trust.py --users {a.users} --template-users {a.template_users or a.users} "
                      f"--naming-users {a.naming_users or a.users} "
                      f"--model {a.model} --seed {a.seed}",
           "users": len(users), "wall_seconds": round(time.perf_counter() - t0, 1),
           "data_fingerprint": shop_fingerprint(ds), **res["summary"]}
    print(res["benchmark"]["rates"].round(3).to_string())
    print(res["naming_accuracy"].round(3).to_string())
    print(res["simulatability"].round(3).to_string())
    print(json.dumps(out["seconds"]), out["wall_seconds"])
    if a.json:
        write_json(a.json, out)
    return out


if __name__ == "__main__":
    main()
