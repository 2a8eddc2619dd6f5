"""LLM benchmark: the small generative model in the loop, measured on the shop.

    .venv/bin/python benchmarks/bench_llm.py [--users 30] [--explain-users 20] [--threads 1 2] [--json out.json]
        [--skip load,naming,speed,grounding,profile]

Reports
- loading: GGUF de-quantisation (tokenizer + weights) vs the cached float copy (safetensors), in one run
- naming accuracy of discovered interests (tiers.discover_all on text vectors) against the majority subcategory
  of their items (tiers.majority_label), for
  (a) free generation, zero-shot chat prompt and few-shot completion prompt,
  (b) constrained choice over the 26 subcategory names, with the few-shot completion prompt and with a chat prompt
      that lists the names; by mean and by sum of token log-probabilities, and by the sum calibrated by the same
      labels' log-likelihood under a content-free prompt ("N/A" as the only product),
  (c) nearest-label embedding naming (tiers.name_interests, MiniLM).
  Matching rule for free names (a), two readings:
    lexical  -- every word of one of the label's phrases appears in the name (lower case, a final "s" dropped);
                the phrases are the subcategory name and its paraphrases from data.shop.label_words();
    semantic -- the label nearest to the name under the text encoder (same label words as (c)) is the true one.
- greedy generation speed: tokens/s at batch 1 and batch 8, per thread count
- grounding: share of free-text explanations and profile summaries that mention catalogue terms (title, category,
  subcategory or a paraphrase, colour, brand, interest) the user does not have, with examples
- the LLM profiler: recall@20 of next items when the user's query is the embedded LLM summary, vs the template
  summary and the history-mean profile (a quick look on the same users)
Timings on a shared machine are noisy; compare numbers from the same run. Items are shown to the model as
"title: first sentence of the description" (titles alone are brand + model word, with no product type in them).
"""
from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COURSE_PROGRESS", "0")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from course_lib import constants as C  # noqa: E402
from course_lib import llm as L  # noqa: E402
from course_lib import tiers  # noqa: E402
from course_lib.data import load_shop  # noqa: E402
from course_lib.data.shop import grounding_terms, label_words  # noqa: E402
from course_lib.encode import TextEncoder  # noqa: E402
from course_lib.catalogue import Catalogue  # noqa: E402
from course_lib.profiles import history_profiles, seen_items  # noqa: E402
from course_lib.recovery import majority_label  # noqa: E402
from course_lib.rank import top_k  # noqa: E402
from course_lib.vectors import unit_rows  # noqa: E402

from _common import emit  # noqa: E402

SECTIONS = ("load", "naming", "speed", "grounding", "profile")


def item_line(row) -> str:
    first = re.split(r"(?<=[.!?])\s", str(row[C.DESCRIPTION]), maxsplit=1)[0]
    return f"{row[C.TITLE]}: {first}"


def _norm_words(text: str) -> list[str]:
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in re.findall(r"[a-z0-9]+", text.lower())]


def lexical_match(name: str, label: str, lw: dict) -> bool:
    phrases = [label.replace("_", " ")] + [p.strip() for p in re.split(r"[:,]", lw[label]) if p.strip()]
    got = set(_norm_words(name))
    return any(set(_norm_words(p)) <= got for p in phrases)


def pick_users(ds, n: int, seed: int) -> list:
    counts = ds.interactions.groupby(C.USER).size()
    pool = counts[counts >= 8].index.to_numpy()
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist())


def interests_of(ds, tiered, users, item_labels, per_user: int = 3):
    """One row per non-peripheral interest (at most ``per_user`` per user, in tier order): the user, tier, share,
    true label, item rows (most recent last)."""
    rows = []
    for u in users:
        ui = tiered[u]
        labels = majority_label(ui, item_labels)
        kept = 0
        for it, lab in zip(ui.interests, labels):  # interests come in tier order: core first
            if it.tier == "peripheral" or kept == per_user:
                continue
            kept += 1
            items = list(dict.fromkeys(it.items[::-1].tolist()))[::-1]  # unique, latest occurrence order
            rows.append({"user": u, "tier": it.tier, "share": it.share, "label": lab, "items": items,
                         "name_embed": it.name, "interest": it})
    return rows



def _checked_stats(what: str, checked, seconds: float, n_examples: int) -> dict:
    """Rates and examples of generated texts after the grounding check (``llm.generate_checked`` results)."""
    caught = [c for c in checked if c.offending][:n_examples]
    accepted = [c.text for c in checked if c.from_llm][:n_examples]
    return {f"{what}: flagged ungrounded by the lexical check": float(np.mean([c.reason.startswith("ungrounded")
                                                                             for c in checked])),
            f"{what}: off-format": float(np.mean([c.reason.startswith(("off-format", "empty")) for c in checked])),
            f"{what}: shown from the LLM": float(np.mean([c.from_llm for c in checked])),
            f"{what}: seconds": seconds,
            f"{what}: caught examples": " || ".join(f"{c.llm_text!r} -> {[(m.text, m.field) for m in c.offending]}"
                                                    for c in caught),
            f"{what}: accepted examples": " || ".join(repr(t) for t in accepted)}

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=30, help="users whose interests are named")
    p.add_argument("--explain-users", type=int, default=20, help="users for explanations, summaries, profiler")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts for the speed test")
    p.add_argument("--speed-prompts", type=int, default=8)
    p.add_argument("--speed-tokens", type=int, default=24)
    p.add_argument("--max-items", type=int, default=8, help="items per interest shown to the model")
    p.add_argument("--per-user", type=int, default=3, help="interests named per user (core first)")
    p.add_argument("--chat-choice-n", type=int, default=30, help="interests for the (slow, weak) chat-style choice")
    p.add_argument("--seed", type=int, default=C.SEED)
    p.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    p.add_argument("--examples", type=int, default=6)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    torch.set_num_threads(args.threads[0])
    res = {"torch": torch.__version__, "threads (default)": args.threads[0]}

    # ---- loading: GGUF vs float cache --------------------------------------------------------------------
    if "load" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            old = os.environ.get("COURSE_CACHE_DIR")
            os.environ["COURSE_CACHE_DIR"] = tmp
            try:
                t0 = time.perf_counter()
                cold = L.LLM(cache=False)
                res["load_gguf_s (tokenizer + de-quantise + save float copy)"] = time.perf_counter() - t0
                res["load_gguf_s of which de-quantising"] = cold.load_info.get("dequantise_seconds", float("nan"))
                del cold
                t0 = time.perf_counter()
                warm = L.LLM(cache=False)
                res["load_float_cache_s"] = time.perf_counter() - t0
                res["load_speedup"] = res["load_gguf_s (tokenizer + de-quantise + save float copy)"] / res["load_float_cache_s"]
                del warm
            finally:
                if old is None:
                    os.environ.pop("COURSE_CACHE_DIR", None)
                else:
                    os.environ["COURSE_CACHE_DIR"] = old

    llm = L.LLM(max_new_tokens=48, batch_size=8, cache=False)  # no output cache: every number below is measured
    res["model"] = repr(llm)

    ds = load_shop()
    items = ds.items.reset_index(drop=True)
    lines = [item_line(r) for _, r in items.iterrows()]
    enc = TextEncoder()
    vecs = enc.encode(items[C.TEXT].tolist())
    index = Catalogue.from_items(items, vecs)  # ids, vectors and id -> row
    item_sub = items[C.SUBCATEGORY].to_numpy()
    lw = label_words()
    labels = list(lw)
    label_names = [lw[k].split(":")[0] for k in labels]  # "running shoes", "science fiction novel", ...

    users = pick_users(ds, args.users, args.seed)
    tiered = tiers.discover_all(ds.interactions, index, users=users)
    tiers.name_interests(tiered, lw, enc)
    rows = interests_of(ds, tiered, users, item_sub, args.per_user)
    res["naming: users / interests"] = f"{len(users)} / {len(rows)}"
    groups = [[lines[i] for i in r["items"]] for r in rows]
    truth = [r["label"] for r in rows]

    # ---- naming ------------------------------------------------------------------------------------------
    if "naming" not in skip:
        lv = unit_rows(enc.encode([lw[k] for k in labels]))

        def semantic(names):
            ok = [bool(n) for n in names]
            v = unit_rows(enc.encode([n or "-" for n in names]))
            nearest = [labels[j] for j in np.argmax(v @ lv.T, axis=1)]
            return [o and n == t for o, n, t in zip(ok, nearest, truth)]

        for style in ("chat", "fewshot"):
            t0 = time.perf_counter()
            named = L.name_groups(llm, groups, style=style, max_items=args.max_items, max_new_tokens=10)
            names = [n["name"] for n in named]
            lex = [lexical_match(n, t, lw) for n, t in zip(names, truth)]
            sem = semantic(names)
            res[f"(a) free {style}: lexical accuracy"] = float(np.mean(lex))
            res[f"(a) free {style}: semantic accuracy"] = float(np.mean(sem))
            res[f"(a) free {style}: off-format (no usable name)"] = float(np.mean([not n for n in names]))
            res[f"(a) free {style}: seconds"] = time.perf_counter() - t0
            ex = [f"{t} -> {n['raw']!r}" for t, n in zip(truth, named)][: args.examples]
            res[f"(a) free {style}: examples (truth -> raw answer)"] = " | ".join(ex)

        for style, n_groups in (("fewshot", len(groups)), ("chat", min(len(groups), args.chat_choice_n))):
            t0 = time.perf_counter()
            picks = {"sum": [], "mean": [], "calibrated sum": []}
            empty_prompt, _, sep = L.choice_prompt(llm, ["N/A"], label_names, style=style)
            base, _ = llm.loglik(empty_prompt, label_names, sep=sep)  # content-free prompt: each label's prior
            for g in groups[:n_groups]:
                prompt, _, sep = L.choice_prompt(llm, g, label_names, style=style, max_items=args.max_items)
                s, n = llm.loglik(prompt, label_names, sep=sep)
                s, n = np.array(s), np.array(n)
                picks["sum"].append(labels[int(np.argmax(s))])
                picks["mean"].append(labels[int(np.argmax(s / n))])
                picks["calibrated sum"].append(labels[int(np.argmax(s - np.array(base)))])
            for by, got in picks.items():
                res[f"(b) choice {style}, by {by}: accuracy"] = float(np.mean([a == t for a, t in zip(got, truth)]))
            top = pd.Series(picks["sum"]).value_counts()
            res[f"(b) choice {style}: interests / most frequent pick by sum"] = f"{n_groups} / {top.index[0]} {top.iloc[0]}x"
            res[f"(b) choice {style}: seconds"] = time.perf_counter() - t0
        res["(c) embedding nearest label: accuracy"] = float(np.mean([r["name_embed"] == t for r, t in zip(rows, truth)]))
        res["majority-label baseline (most common true label)"] = float(pd.Series(truth).value_counts().iloc[0] / len(truth))

    # ---- speed -------------------------------------------------------------------------------------------
    if "speed" not in skip:
        prompts = [llm.chat_prompt("Describe a shopper who likes these products in two sentences:\n"
                                   + "\n".join(f"- {x}" for x in g[:4])) for g in groups[: args.speed_prompts]]
        for th in args.threads:
            torch.set_num_threads(th)
            for bs in (1, 8):
                _, st = llm.generate(prompts, batch_size=bs, max_new_tokens=args.speed_tokens, return_stats=True)
                res[f"tokens/s greedy, {th} thread(s), batch {bs}"] = st.tokens_per_s
        torch.set_num_threads(args.threads[0])

    # ---- grounding of explanations and summaries --------------------------------------------------------
    if "grounding" not in skip or "profile" not in skip:
        vocab = L.Vocabulary.from_items(items, synonyms=grounding_terms(), extra={"interest": labels})
        ex_users = users[: args.explain_users]
        hist = ds.interactions[ds.interactions[C.USER].isin(ex_users)].sort_values(C.TIMESTAMP)
        seen = dict(zip(ex_users, seen_items(hist, index, ex_users)))

    if "grounding" not in skip:
        prompts, templates, evid = [], [], []
        notes = 0
        for u in ex_users:
            ui = tiered[u]
            core = ui.interests[0]
            scores = vecs @ core.centroid
            scores[seen[u]] = -np.inf
            rec = int(np.argmax(scores))
            hist_lines, note = L.truncate_lines([lines[i] for i in dict.fromkeys(seen[u])], 10)
            notes += bool(note)
            user = ("A shopper viewed these products:\n" + "\n".join(f"- {x}" for x in hist_lines)
                    + f"\nWe recommend: {lines[rec]}\nIn one sentence, tell the shopper why we recommend it.")
            prompts.append(llm.chat_prompt(user))
            templates.append(f"Recommended because it is close to the items of your interest "
                             f"'{core.name.replace('_', ' ')}' that you viewed.")
            evid.append(L.evidence_from_items(items, [items[C.ITEM][i] for i in seen[u] + [rec]],
                                              interests=[it.name for it in ui.interests], vocabulary=vocab))
        t0 = time.perf_counter()
        checked = L.generate_checked(llm, prompts, templates, evid, vocab, min_words=4, max_words=60,
                                     max_new_tokens=48)
        res["explanations: users"] = len(checked)
        res["explanations: prompts with a truncated history"] = notes
        res.update(_checked_stats("explanations", checked, time.perf_counter() - t0, args.examples))

    if "grounding" not in skip:
        per_user, evid = [], []
        for u in ex_users:
            ui = tiered[u]
            per_user.append([{"name": it.name, "tier": it.tier, "share": it.share,
                              "titles": [items[C.TITLE][i] for i in dict.fromkeys(it.items[::-1].tolist())]}
                             for it in ui.interests if it.tier != "peripheral"] or
                            [{"name": ui.interests[0].name, "tier": ui.interests[0].tier, "share": 1.0, "titles": []}])
            evid.append(L.evidence_from_items(items, [items[C.ITEM][i] for i in seen[u]],
                                              interests=[it.name for it in ui.interests], vocabulary=vocab))
        t0 = time.perf_counter()
        summaries = L.summarise_interests(llm, per_user, evid, vocab, max_new_tokens=60)
        res.update(_checked_stats("summaries", summaries, time.perf_counter() - t0, args.examples))

    # ---- the LLM profiler vs the history mean -----------------------------------------------------------
    if "profile" not in skip:
        # per user: the last 20% of events (at least one) are the future; interests and summaries from the rest
        k = 20
        recalls = {"history mean": [], "LLM summary": [], "template summary": []}
        past_all = []
        fut = {}
        for u in ex_users:
            h = ds.interactions[ds.interactions[C.USER] == u].sort_values(C.TIMESTAMP, kind="stable")
            n_test = max(1, int(0.2 * len(h)))
            past_all.append(h.iloc[:-n_test])
            fut[u] = {index[i] for i in h.iloc[-n_test:][C.ITEM]} - {index[i] for i in h.iloc[:-n_test][C.ITEM]}
        past = pd.concat(past_all)
        tiered_p = tiers.discover_all(past, index, users=ex_users)
        tiers.name_interests(tiered_p, lw, enc)
        prof_in, ev_p = [], []
        for u in ex_users:
            ui = tiered_p[u]
            keep = [it for it in ui.interests if it.tier != "peripheral"] or ui.interests[:1]
            prof_in.append([{"name": it.name, "tier": it.tier, "share": it.share,
                             "titles": [items[C.TITLE][i] for i in dict.fromkeys(it.items[::-1].tolist())]} for it in keep])
            ev_p.append(L.evidence_from_items(items, past[past[C.USER] == u][C.ITEM],
                                              interests=[it.name for it in ui.interests], vocabulary=vocab))
        summ = L.summarise_interests(llm, prof_in, ev_p, vocab, max_new_tokens=60)
        q_llm = enc.encode([s.llm_text or s.text for s in summ])
        q_tmp = enc.encode([L.profile_template(x) for x in prof_in])
        q_hist, _ = history_profiles(past, index, users=ex_users)
        seen_p = seen_items(past, index, ex_users)
        for name, q in (("history mean", q_hist), ("LLM summary", q_llm), ("template summary", q_tmp)):
            _, idx = top_k(q, vecs, k, exclude=seen_p)
            for u, row in zip(ex_users, idx):
                if fut[u]:
                    recalls[name].append(len(fut[u] & set(row.tolist())) / len(fut[u]))
        for name, r in recalls.items():
            res[f"profiler: recall@{k} of future items, query = {name}"] = float(np.mean(r))
        res["profiler: users with future items"] = len(recalls["history mean"])

    emit(res, args.json)
    return res


if __name__ == "__main__":
    main()
