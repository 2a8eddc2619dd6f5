"""Explanations people can trust: measuring what a language model does to an explanation, shared by notebook 08,
the report's ``LLM=True`` and ``benchmarks/bench_trust.py``.

- wording: :func:`rewrite_prompt` hands the model the kit's template sentence to **rewrite** (few-shot completion);
  :func:`compose_prompt` asks it to compose from an evidence list (the measured counter-example);
  :func:`judge_rewrite` accepts a rewrite as faithful when it keeps every cited title and the share;
- the perturbation benchmark: :func:`perturb` plants one of five errors (``ERROR_KINDS``) in a copy of a faithful
  text; :func:`run_benchmark` learns the house-style words on one half of the users and scores the claim checks
  (``grounding.check_claims``) on the other, held-out half: detection per kind and false alarms, with intervals;
- :func:`simulatability`: can the text encoder pick the recommended item out of the user's list from the text alone;
- :func:`naming_table`: every interest of the given users named three ways against the shop's truth.

Not the checks themselves (``grounding.py``), not the model (``llm.py``), and not the explanations' evidence
(``explain.py``).
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import checks
from .grounding import EVENT_WORDS, Facts, Vocabulary, check_claims, content_words, format_problem

ERROR_KINDS = ("title", "number", "verb", "attribute", "praise")
OWN_SLOT = {"title": "title", "number": "number", "verb": "verb", "attribute": "attribute", "praise": "novel"}
PRAISE = (  # invented praise: true of no item in the evidence (split in two so each half plants its own)
    "It is praised for its durability and excellent customer service.",
    "Reviewers love its premium build quality.",
    "It is a bestseller with thousands of glowing reviews.",
    "Experts call it the most reliable choice on the market.",
    "It comes with a lifetime warranty and free shipping.",
    "Customers rave about its outstanding value.",
    "It won an award for innovative design.",
    "Shoppers say it is unbeatable for comfort and style.",
)
WRONG_VERB = {"view": "bought", "click": "bought", "purchase": "viewed", "rating": "viewed"}
REWRITE_EXAMPLES = (  # outside the shop's catalogue, so no title is given away
    ("Because you bought “Trailmaster 40 L” and viewed “Ridge Poles” (both part of your core interest in hiking "
     "gear); together 62% of the score.",
     "You bought “Trailmaster 40 L” and viewed “Ridge Poles”, both part of your core interest in hiking gear; "
     "together they make up 62% of the score."),
    ("Because you viewed “Moka Express 6-cup” (part of your emerging interest in coffee makers); 35% of the score.",
     "You viewed “Moka Express 6-cup”, which is part of your emerging interest in coffee makers; it makes up 35% "
     "of the score."),
)
REWRITE_INSTRUCTION = ("Rewrite each explanation in plain, friendly words. Keep every product name in quotes, every "
                       "verb and the percentage. Add nothing.")


# ---------------------------------------------------------------------------------------------------------
# wording
# ---------------------------------------------------------------------------------------------------------
def rewrite_prompt(template: str) -> str:
    """The few-shot completion prompt that asks for a rewrite of ``template``; generate with ``stop=["\\n"]``."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"template must be a non-empty sentence, got {template!r}")
    shots = "".join(f"Original: {a}\nRewritten: {b}\n\n" for a, b in REWRITE_EXAMPLES)
    return f"{REWRITE_INSTRUCTION}\n\n{shots}Original: {template.strip()}\nRewritten:"


def compose_prompt(llm, exp, item_line: str) -> str:
    """The counter-example: a chat prompt that hands the model the evidence as a list and asks it to compose."""
    facts = "\n".join(f"- {c.title} ({c.share:.0%} of the score)" for c in exp.cited())
    ask = (f"Recommended item: {item_line}\nEvidence from the shopper's history:\n{facts}\n"
           + (f"Their interest: {exp.interest['name'].replace('_', ' ')} ({exp.interest['tier']})\n"
              if exp.interest else "")
           + "Explain in one sentence why this item is recommended. Use only these facts.")
    return llm.chat_prompt(ask, system="You explain product recommendations briefly and truthfully.")


def judge_rewrite(text: str, exp, prompt: str = "") -> str:
    """Why a rewrite is not faithful ("" when it is): off-format, or it drops a cited title or the share.

    This judges what a rewrite must keep; what it must not add is the checks' job, so a rewrite judged faithful
    that adds a claim counts against the checks as a false alarm (conservative)."""
    bad = format_problem(text, "", min_words=5, max_words=70)
    if bad and bad != format_problem(exp.sentence, "", min_words=5, max_words=70):  # the template's own repeats
        return bad  # ("part of your core interest in ..." three times) are no fault of the rewrite
    low = text.lower()
    missing = [c.title for c in exp.cited() if c.title.lower() not in low]
    if missing:
        return f"drops “{missing[0]}”"
    share = round(100 * sum(c.share for c in exp.cited()))
    if exp.cited() and not re.search(rf"(?<!\d)({share - 1}|{share}|{share + 1})\s*(%|percent)", text):
        return f"drops the share ({share}%)"
    return ""


def explain_tops(models: Mapping, users: Sequence, tiered: Mapping, log: pd.DataFrame, k: int = 10) -> list[dict]:
    """For each method and user with history: the explanation of the top item and the user's top-``k`` list
    (catalogue rows; the list is what simulatability picks from). ``[{method, user, exp, target, list}]``."""
    from .explain import explain

    out = []
    for name, m in models.items():
        known = m.has_history(list(users))
        for u, ok in zip(users, known):
            if not ok:
                continue
            top = [int(r) for r in m.recommend([u], k)[0]]
            exp = explain(m, u, m.catalogue.ids[top[0]], tiered=tiered, method=name, log=log)
            if exp.cited():
                out.append({"method": name, "user": u, "exp": exp, "target": top[0], "list": top})
    return out


def faithful_set(records: Sequence[dict], items: pd.DataFrame, vocabulary: Vocabulary, llm=None,
                 max_new_tokens: int = 80) -> tuple[list[Faithful], list[dict]]:
    """The benchmark's faithful texts: every record's template, and (with an ``llm``) its rewrite when
    :func:`judge_rewrite` accepts it. Returns ``(faithful, rewrites)``; ``rewrites`` holds every rewrite with its
    verdict (``judged``: "" when faithful, else why not), accepted or not."""
    from .grounding import facts_from_explanation

    out, rewrites = [], []
    prompts = [rewrite_prompt(r["exp"].sentence) for r in records]
    texts = llm.generate(prompts, max_new_tokens=max_new_tokens, stop=["\n"]) if llm is not None and prompts else []
    for i, r in enumerate(records):
        e = r["exp"]
        out.append(Faithful(e.sentence, "template", facts_from_explanation(e, items, vocabulary), r["user"],
                            r["method"]))
        if llm is None:
            continue
        verdict = judge_rewrite(texts[i], e)
        rewrites.append({"method": r["method"], "user": r["user"], "template": e.sentence, "rewrite": texts[i],
                         "judged": verdict})
        if not verdict:
            out.append(Faithful(texts[i], "LLM rewrite", facts_from_explanation(e, items, vocabulary,
                                                                                prompt=prompts[i]),
                                r["user"], r["method"], prompt=prompts[i]))
    return out, rewrites


# ---------------------------------------------------------------------------------------------------------
# the perturbation benchmark
# ---------------------------------------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion ``k / n``; (nan, nan) when ``n`` is 0."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def _present_titles(text: str, facts: Facts, exclude_item: bool = True) -> list[str]:
    low = text.lower()
    return [t for t in facts.titles if t.lower() in low and not (exclude_item and t == facts.item_title)]


def perturb(text: str, kind: str, facts: Facts, items: pd.DataFrame, rng: np.random.Generator,
            half: int = 0) -> str | None:
    """A copy of the faithful ``text`` with one planted error of ``kind`` (one of ``ERROR_KINDS``); None when the
    text gives the kind nothing to act on (e.g. no cited title to swap).

    title: a cited title becomes another catalogue item's; number: the share moves by 10-40 points (or a wrong share
    is added); verb: the event verb of a cited title becomes another event's (or a wrong one is added); attribute: a
    colour or feature the cited item lacks is attached to it; praise: a sentence of invented praise is added
    (``half`` picks which half of ``PRAISE``, so the held-out half is scored on praise the tuning never saw).
    """
    checks.choice("kind", kind, ERROR_KINDS)
    titles = _present_titles(text, facts)
    if kind == "title":
        if not titles:
            return None
        old = titles[int(rng.integers(len(titles)))]
        pool = [t for t in items["title"].astype(str).unique() if t not in facts.titles]
        new = pool[int(rng.integers(len(pool)))]
        i = text.lower().find(old.lower())
        return text[:i] + new + text[i + len(old):]
    if kind == "number":
        share = max(facts.numbers) if facts.numbers else 50
        wrong = int(share + rng.choice([-1, 1]) * rng.integers(10, 41))
        wrong = wrong if 1 <= wrong <= 99 else int(share + (20 if share < 50 else -20))
        m = re.search(r"(?<![\w.])(\d+)\s*(%|percent)", text)
        if m:
            return text[:m.start(1)] + str(wrong) + text[m.end(1):]
        return text.rstrip() + f" That is {wrong}% of the score."
    if kind == "verb":
        known = [t for t in titles if facts.titles[t]["event"]]
        if not known:
            return None
        t = known[int(rng.integers(len(known)))]
        wrong = WRONG_VERB.get(facts.titles[t]["event"], "bought")
        i = text.lower().find(t.lower())
        before = [(m.start(), m.end()) for v in sorted(EVENT_WORDS, key=len, reverse=True)
                  for m in re.finditer(rf"(?<!\w){re.escape(v)}(?!\w)", text[:i], re.IGNORECASE)]
        if before:
            a, b = max(before)
            return text[:a] + wrong + text[b:]
        return text.rstrip() + f" You {wrong} “{t}”."
    if kind == "attribute":
        if not titles:
            return None
        t = titles[int(rng.integers(len(titles)))]
        has = facts.titles[t]["attributes"]
        colours = sorted({c for c in items["colour"].dropna().astype(str)} - {a.split(":", 1)[1] for a in has})
        phrase = f", in {colours[int(rng.integers(len(colours)))]},"
        i = text.lower().find(t.lower()) + len(t)
        if i < len(text) and text[i] in "”\"'":
            i += 1
        return text[:i] + phrase + text[i:]
    pool = PRAISE[half::2]
    return text.rstrip() + " " + pool[int(rng.integers(len(pool)))]


@dataclass
class Faithful:
    """One faithful explanation text of the benchmark, with what it may claim."""

    text: str
    source: str  # "template" or "LLM rewrite"
    facts: Facts
    user: object
    method: str
    prompt: str = ""
    extra: dict = field(default_factory=dict)


def _half(user) -> int:
    """A fixed half (0: tuning, 1: held out) per user, from a hash of its id: the same user is never in both."""
    return int(hashlib.sha256(str(user).encode()).hexdigest(), 16) % 2


def learn_allowed_words(texts: Sequence[Faithful], min_texts: int = 2) -> list[str]:
    """House-style words: content words of faithful texts that their evidence does not hold, kept when they occur in
    at least ``min_texts`` texts (learned on the tuning half only)."""
    counts: dict[str, int] = {}
    for f in texts:
        for w in content_words(f.text) - f.facts.words:
            counts[w] = counts.get(w, 0) + 1
    return sorted(w for w, n in counts.items() if n >= min_texts)


def run_benchmark(faithful: Sequence[Faithful], vocabulary: Vocabulary, items: pd.DataFrame, seed: int = 0,
                  allowed_words: Sequence[str] | None = None) -> dict:
    """Plant each of the five error kinds in a copy of every faithful text and run the claim checks.

    The users split in two halves by a hash of their id: house-style words are learned on the tuning half
    (``allowed_words`` overrides that) and every rate is computed on the held-out half. A detection counts only
    for a copy whose original passed the checks (else the original's false alarm would count as a detection).
    Returns ``{"rates": DataFrame (one row per error kind, then one per faithful source), "allowed_words",
    "rows": DataFrame of every checked text, "n_faithful": {half: count}}``.
    """
    if not faithful:
        raise ValueError("faithful is empty: give at least one faithful explanation to perturb")
    rng = np.random.default_rng(seed)
    tune = [f for f in faithful if _half(f.user) == 0]
    allowed = list(allowed_words) if allowed_words is not None else learn_allowed_words(tune)
    rows = []
    for n, f in enumerate(faithful):
        half = _half(f.user)
        res = check_claims(f.text, f.facts, vocabulary, allowed_words=allowed)
        rows.append({"half": half, "source": f.source, "method": f.method, "user": f.user, "kind": "none",
                     "text": f.text, "flagged": not res.ok, "slots": ",".join(sorted(res.slots)),
                     "reason": res.reason(), "original_ok": res.ok, "original": f.text})
        for kind in ERROR_KINDS:
            bad = perturb(f.text, kind, f.facts, items, rng, half=half)
            if bad is None or bad == f.text:
                continue
            r = check_claims(bad, f.facts, vocabulary, allowed_words=allowed)
            rows.append({"half": half, "source": f.source, "method": f.method, "user": f.user, "kind": kind,
                         "text": bad, "flagged": not r.ok, "slots": ",".join(sorted(r.slots)), "reason": r.reason(),
                         "original_ok": res.ok, "original": f.text})
    table = pd.DataFrame(rows)
    held = table[table["half"] == 1]
    out = []
    for kind in ERROR_KINDS:
        sel = held[(held["kind"] == kind) & held["original_ok"]]
        k, n = int(sel["flagged"].sum()), len(sel)
        own = int(sel["slots"].str.split(",").apply(lambda s: OWN_SLOT[kind] in s).sum())
        lo, hi = wilson(k, n)
        out.append({"what": f"detected: {kind}", "kind": kind, "n": n, "flagged": k,
                    "rate": k / n if n else float("nan"), "lo": lo, "hi": hi,
                    "by its own slot": own / n if n else float("nan")})
    for source in sorted(held["source"].unique()):
        sel = held[(held["kind"] == "none") & (held["source"] == source)]
        k, n = int(sel["flagged"].sum()), len(sel)
        lo, hi = wilson(k, n)
        out.append({"what": f"false alarm: {source}", "kind": "none", "n": n, "flagged": k,
                    "rate": k / n if n else float("nan"), "lo": lo, "hi": hi})
    return {"rates": pd.DataFrame(out).set_index("what"), "allowed_words": allowed, "rows": table,
            "n_faithful": {"tuning": len(tune), "held out": len(faithful) - len(tune)}}


# ---------------------------------------------------------------------------------------------------------
# simulatability
# ---------------------------------------------------------------------------------------------------------
def mask_title(text: str, title: str) -> str:
    """``text`` with the recommended item's title blanked, so a text cannot be matched by naming the answer."""
    return re.sub(re.escape(title), "this item", text, flags=re.IGNORECASE) if title else text


def simulatability(texts: Sequence[str], candidates: Sequence[Sequence[int]], targets: Sequence[int],
                   item_vecs: np.ndarray, encoder, shuffle_seed: int | None = None) -> np.ndarray:
    """For each text: does the text encoder, reading only the text, rank the recommended item (``targets[i]``, a
    catalogue row) first among that user's ``candidates[i]`` (catalogue rows, the target among them)? Returns one
    bool per text. ``shuffle_seed``: pair every list with another user's text (the shuffled control; chance level is
    about 1 / len(list))."""
    if not (len(texts) == len(candidates) == len(targets)):
        raise ValueError(f"texts, candidates and targets need one entry each; got {len(texts)}, {len(candidates)}, "
                         f"{len(targets)}")
    texts = list(texts)
    if shuffle_seed is not None and len(texts) > 1:
        order = np.random.default_rng(shuffle_seed).permutation(len(texts))
        if np.any(order == np.arange(len(texts))):  # a derangement: nobody keeps their own text
            order = np.roll(np.arange(len(texts)), 1)
        texts = [texts[j] for j in order]
    q = np.asarray(encoder.encode(texts), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-12
    v = np.asarray(item_vecs, dtype=np.float32)
    v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)
    out = []
    for qi, cands, t in zip(q, candidates, targets):
        cands = [int(c) for c in cands]
        if int(t) not in cands:
            raise ValueError(f"target row {t} is not among its candidates {cands[:5]}...: include it")
        out.append(cands[int(np.argmax(v[cands] @ qi))] == int(t))
    return np.array(out, dtype=bool)


# ---------------------------------------------------------------------------------------------------------
# naming every interest
# ---------------------------------------------------------------------------------------------------------
def naming_table(llm, tiered: Mapping, users: Sequence, item_lines: Sequence[str], subcategories: Sequence[str],
                 label_words: Mapping[str, str], encoder, max_items: int = 8) -> pd.DataFrame:
    """Every interest of ``users`` named three ways and judged against its majority subcategory (the shop's truth):
    (a) free generation (few-shot), counted right when the label nearest to the name is the truth; (b) constrained
    choice among the labels' names by log-likelihood; (c) the interest's embedding name (``tiers.name_interests``).

    ``item_lines``: one line per catalogue row, what the model reads about that item. One row per interest."""
    from .prompts import name_by_choice, name_groups
    from .recovery import majority_label
    from .vectors import unit_rows

    labels = list(label_words)
    names = [label_words[k].split(":")[0] for k in labels]
    sub = np.asarray(subcategories)
    groups, rows = [], []
    for u in users:
        ui = tiered[u]
        for it, truth in zip(ui.interests, majority_label(ui, sub)):
            groups.append([item_lines[int(r)] for r in list(it.items)[-max_items:]])
            rows.append({"user": u, "tier": it.tier, "truth": truth, "(c) embedding": it.name})
    if not groups:
        raise ValueError("no interests among the given users: pass users with tiered interests")
    free = name_groups(llm, groups, style="fewshot", max_items=max_items)
    free_cost = llm.last_stats.cost_seconds
    choice = name_by_choice(llm, groups, names, max_items=max_items)
    choice_cost = llm.last_choice_stats.cost_seconds
    lab_vecs = unit_rows(encoder.encode([label_words[k] for k in labels]))
    free_vecs = unit_rows(encoder.encode([f["name"] or "-" for f in free]))
    table = pd.DataFrame(rows)
    table["(a) free name"] = [f["name"] for f in free]
    table["(a) free generation"] = [labels[int(np.argmax(lab_vecs @ v))] if f["name"] else "" for f, v in
                                    zip(free, free_vecs)]
    table["(b) constrained choice"] = [labels[c.index] for c in choice]
    table.attrs["seconds"] = {"free generation": free_cost, "constrained choice": choice_cost}
    return table


def naming_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Share of interests named right per method, with a Wilson interval."""
    out = []
    for m in ("(a) free generation", "(b) constrained choice", "(c) embedding"):
        right = (table[m] == table["truth"])
        k, n = int(right.sum()), len(table)
        lo, hi = wilson(k, n)
        out.append({"method": m, "interests": n, "right": k, "accuracy": k / n, "lo": lo, "hi": hi})
    return pd.DataFrame(out).set_index("method")


__all__ = ["ERROR_KINDS", "PRAISE", "Faithful", "compose_prompt", "explain_tops", "faithful_set", "judge_rewrite", "learn_allowed_words",
           "mask_title", "naming_accuracy", "naming_table", "perturb", "rewrite_prompt", "run_benchmark",
           "simulatability", "simulatability_table", "measure", "summary", "item_lines", "vocabulary", "wilson"]


# ---------------------------------------------------------------------------------------------------------
# everything at once: notebook 08's full setting, the report's LLM=True and benchmarks/bench_trust.py
# ---------------------------------------------------------------------------------------------------------
def vocabulary(items: pd.DataFrame, tiered: Mapping, synonyms: Mapping | None = None) -> Vocabulary:
    """The vocabulary the claim checks read: the catalogue's titles, categories, subcategories, colours, brands and
    patterns, the ``synonyms`` (the shop's ``grounding_terms()``: subcategory paraphrases and features) and the names
    of every interest in ``tiered``."""
    return Vocabulary.from_items(items, fields=("title", "category", "subcategory", "colour", "brand", "pattern"),
                                 synonyms=synonyms,
                                 extra={"interest": sorted({it.name for ui in tiered.values() for it in ui.interests
                                                            if it.name})})


def item_lines(items: pd.DataFrame) -> list[str]:
    """What the model reads about each catalogue row: its title and the first sentence of its description."""
    first = items["description"].astype(str).str.split(r"(?<=[.!?])\s", n=1, regex=True).str[0]
    return (items["title"].astype(str) + ": " + first).tolist()


def simulatability_table(records: Sequence[dict], rewrites: Sequence[dict], item_vecs: np.ndarray, encoder,
                         seed: int = 0) -> pd.DataFrame:
    """Per method: the share of users whose recommended item the text encoder picks out of their list from the
    template, from the LLM rewrite (every rewrite, faithful or not) and from another user's template (shuffled
    control); the recommended item's own title is blanked in every text. Wilson intervals."""
    rw = {(r["method"], r["user"]): r["rewrite"] for r in rewrites}
    out = []
    for method in dict.fromkeys(r["method"] for r in records):
        recs = [r for r in records if r["method"] == method]
        cands, targets = [r["list"] for r in recs], [r["target"] for r in recs]
        texts = {"template": [mask_title(r["exp"].sentence, r["exp"].title) for r in recs]}
        if rw:
            texts["LLM rewrite"] = [mask_title(rw.get((method, r["user"]), "") or "-", r["exp"].title) for r in recs]
        for what, tx in texts.items():
            hit = simulatability(tx, cands, targets, item_vecs, encoder)
            out.append(_rate_row(method, what, hit))
        hit = simulatability(texts["template"], cands, targets, item_vecs, encoder, shuffle_seed=seed)
        out.append(_rate_row(method, "shuffled control", hit))
    return pd.DataFrame(out)


def _rate_row(method, what, hit) -> dict:
    k, n = int(np.sum(hit)), len(hit)
    lo, hi = wilson(k, n)
    return {"method": method, "text": what, "users": n, "picked": k, "rate": k / n if n else float("nan"),
            "lo": lo, "hi": hi}


def measure(llm, models: Mapping, tiered: Mapping, users: Sequence, log: pd.DataFrame, items: pd.DataFrame,
            vocabulary: Vocabulary, encoder, item_vecs: np.ndarray, label_words: Mapping[str, str], k: int = 10,
            seed: int = 0, naming_users: Sequence | None = None, template_users: Sequence | None = None) -> dict:
    """The whole measurement: explanations of each method's top item for ``users`` (and, templates only, for
    ``template_users``, which cost no generation), LLM rewrites of ``users``' explanations, the perturbation
    benchmark on all of those texts, simulatability, and naming on every interest of ``naming_users`` (default
    ``users``). Returns the tables and :func:`summary`'s JSON-ready dict under ``"summary"``."""
    import time

    t0 = time.perf_counter()
    users = list(users)
    more = [u for u in (template_users or ()) if u not in set(users)]
    records = explain_tops(models, users, tiered, log, k)
    faithful, rewrites = faithful_set(records, items, vocabulary, llm)
    rewrite_cost = llm.last_stats.cost_seconds
    others = explain_tops(models, more, tiered, log, k) if more else []
    faithful += faithful_set(others, items, vocabulary)[0]
    bench = run_benchmark(faithful, vocabulary, items, seed=seed)
    sim = simulatability_table(records + others, [], item_vecs, encoder, seed=seed)
    if rewrites:
        sim_rw = simulatability_table(records, rewrites, item_vecs, encoder, seed=seed)
        sim = pd.concat([sim, sim_rw[sim_rw["text"] == "LLM rewrite"]], ignore_index=True)
    naming = naming_table(llm, tiered, list(naming_users if naming_users is not None else users), item_lines(items),
                          items["subcategory"].to_numpy(), label_words, encoder)
    res = {"records": records + others, "faithful": faithful, "rewrites": rewrites, "benchmark": bench,
           "simulatability": sim, "naming": naming, "naming_accuracy": naming_accuracy(naming),
           "seconds": {"total (this run)": time.perf_counter() - t0, "rewrites (when generated)": rewrite_cost,
                       **{f"naming, {k} (when generated)": v for k, v in naming.attrs["seconds"].items()}}}
    res["summary"] = summary(res, llm)
    return res


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def summary(res: dict, llm=None, n_examples: int = 4) -> dict:
    """The JSON-ready digest of :func:`measure` (the report's ``metrics.json["llm"]``; keys in the README)."""
    rates = res["benchmark"]["rates"]
    rw = res["rewrites"]
    acc = res["naming_accuracy"]
    rows = res["benchmark"]["rows"]
    caught = rows[(rows["half"] == 1) & (rows["kind"] != "none") & rows["original_ok"]]
    return {
        "model": None if llm is None else llm.config.model,
        "model_fingerprint": None if llm is None else llm.fingerprint,
        "naming": {m.split(") ", 1)[1]: {"interests": int(r["interests"]), "accuracy": _num(r["accuracy"]),
                                          "lo": _num(r["lo"]), "hi": _num(r["hi"])} for m, r in acc.iterrows()},
        "benchmark": {"faithful": {"templates": sum(f.source == "template" for f in res["faithful"]),
                                   "LLM rewrites": sum(f.source == "LLM rewrite" for f in res["faithful"]),
                                   **{f"{h} half": n for h, n in res["benchmark"]["n_faithful"].items()}},
                      "rewrites judged faithful": f"{sum(not r['judged'] for r in rw)} of {len(rw)}",
                      "detection": {r["kind"]: {"n": int(r["n"]), "rate": _num(r["rate"]), "lo": _num(r["lo"]),
                                                "hi": _num(r["hi"]), "by_own_slot": _num(r["by its own slot"])}
                                    for w, r in rates.iterrows()
                                    if w.startswith("detected")},
                      "false_alarm": {w.split(": ", 1)[1]: {"n": int(r["n"]), "rate": _num(r["rate"]),
                                                            "lo": _num(r["lo"]), "hi": _num(r["hi"])}
                                      for w, r in rates.iterrows() if w.startswith("false alarm")},
                      "allowed_words": list(res["benchmark"]["allowed_words"])},
        "simulatability": [{k: (_num(v) if k in ("rate", "lo", "hi") else v) for k, v in r.items()}
                           for r in res["simulatability"].to_dict(orient="records")],
        "examples": {
            "rewrites": [{k: r[k] for k in ("method", "template", "rewrite", "judged")} for r in rw[:n_examples]],
            "caught": [{"kind": r["kind"], "text": r["text"], "reason": r["reason"]}
                       for _, r in caught[caught["flagged"]].groupby("kind").head(1).iterrows()],
        },
        "seconds": {k: _num(v) for k, v in res["seconds"].items()},
    }
