"""Prompts: the words sent to the language model for each use (naming an interest zero-shot, few-shot or by
constrained choice; summarising a user's tiered interests), with their templates for when the model's text fails.

Not the model (``llm.py``) and not the checks (``grounding.py``). Public names are importable from
``course_lib.llm`` too.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Mapping, Sequence

from . import checks
from .grounding import Checked, Vocabulary, generate_checked, truncate_lines

if TYPE_CHECKING:  # annotations only: llm.py imports this module
    from .llm import LLM, Choice


# ---------------------------------------------------------------------------------------------------------
# 6. uses: naming an interest, summarising a profile
# ---------------------------------------------------------------------------------------------------------
NAMING_SYSTEM = "You name product groups for an online shop. Answer with the name only."
FEWSHOT_EXAMPLES = (  # deliberately outside the shop's catalogue, so no label is given away
    (["GreenFlow 30 m garden hose with brass fittings", "Expandable hose, 15 m, with spray nozzle",
      "Wall-mounted hose reel"], "garden hoses"),
    (["Catan: a strategy board game for 3-4 players", "Ticket to Ride, a family board game",
      "Chess set with wooden pieces"], "board games"),
    (["Nickel-wound electric guitar strings, light gauge", "Phosphor bronze acoustic strings",
      "Bass strings, 4-string set"], "guitar strings"),
)


def naming_prompt_chat(llm: LLM, item_lines: Sequence[str], max_items: int = 8) -> tuple[str, str]:
    """(a) zero-shot, chat: ask for a 2-4 word name of the group of items. Returns ``(prompt, truncation note)``."""
    lines, note = truncate_lines(item_lines, max_items)
    user = ("These products belong to one shopping interest:\n" + "\n".join(f"- {x}" for x in lines)
            + "\nName the interest in 2 to 4 words.")
    return llm.chat_prompt(user, system=NAMING_SYSTEM), note


def naming_prompt_fewshot(item_lines: Sequence[str], max_items: int = 8) -> tuple[str, str]:
    """(a) few-shot, completion: three solved examples (not from the shop), then the group, then ``Name:``.
    Generate with ``stop=["\\n"]``. Returns ``(prompt, truncation note)``."""
    lines, note = truncate_lines(item_lines, max_items)
    blocks = ["Each group of products gets a short name (2 to 4 words).\n"]
    for ex, name in FEWSHOT_EXAMPLES:
        blocks.append("Products:\n" + "\n".join(f"- {x}" for x in ex) + f"\nName: {name}\n")
    blocks.append("Products:\n" + "\n".join(f"- {x}" for x in lines) + "\nName:")
    return "\n".join(blocks), note


def choice_prompt(llm: LLM, item_lines: Sequence[str], labels: Sequence[str], style: str = "fewshot",
                  max_items: int = 8) -> tuple[str, str, str]:
    """(b) constrained choice: the prompt that each label continues. Returns ``(prompt, note, sep)``; score with
    ``llm.choose([prompt], labels, sep=sep)``.

    ``style="fewshot"`` (default): the few-shot completion prompt of :func:`naming_prompt_fewshot`, the label
    follows ``Name:`` after a space; the labels are not listed, the scores do the choosing.
    ``style="chat"``: a chat prompt that lists the labels; the label opens the assistant's answer. A 135M model
    reads a 26-label list poorly (it favours the first ones); benchmarks/bench_llm.py measures both.
    """
    checks.choice("style", style, ("fewshot", "chat"))
    if style == "fewshot":
        prompt, note = naming_prompt_fewshot(item_lines, max_items)
        return prompt, note, " "
    lines, note = truncate_lines(item_lines, max_items)
    user = ("These products belong to one shopping interest:\n" + "\n".join(f"- {x}" for x in lines)
            + "\nWhich of these names fits it best? " + ", ".join(labels) + ".\nAnswer with one name.")
    return llm.chat_prompt(user, system=NAMING_SYSTEM), note, ""


def name_by_choice(llm: LLM, groups: Sequence[Sequence[str]], labels: Sequence[str], style: str = "fewshot",
                   by: str = "sum", max_items: int = 8) -> list[Choice]:
    """(b) constrained-choice names for groups of item lines: for each group, the label the model finds most
    likely (see :meth:`LLM.choose` for ``by``)."""
    built = [choice_prompt(llm, g, labels, style=style, max_items=max_items) for g in groups]
    if not built:
        return []
    return llm.choose([p for p, _, _ in built], labels, by=by, sep=built[0][2])  # one call: its stats cover all


def clean_name(text: str, max_words: int = 6) -> str:
    """The name in a model's answer: first line, without a ``Name:`` prefix, quotes or a final full stop;
    "" when nothing usable is left or it is longer than ``max_words`` words (off-format)."""
    line = next((ln for ln in str(text).splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(name|answer|interest)\s*:\s*", "", line.strip(), flags=re.IGNORECASE)
    line = line.strip(" \t-*\"'`“”.,;:!")
    words = line.split()
    return line if 0 < len(words) <= max_words else ""


def name_groups(llm: LLM, groups: Sequence[Sequence[str]], style: str = "fewshot", max_items: int = 8,
                max_new_tokens: int = 8, **generate_kw) -> list[dict]:
    """(a) free-generation names for groups of item lines: ``[{name, raw, prompt, note}]`` per group.

    ``style="fewshot"`` (completion prompt, stops at the end of the line) or ``"chat"`` (zero-shot chat prompt).
    ``name`` is ``clean_name(raw)``: "" when the answer is off-format.
    """
    checks.choice("style", style, ("fewshot", "chat"))
    built = [naming_prompt_fewshot(g, max_items) if style == "fewshot" else naming_prompt_chat(llm, g, max_items)
             for g in groups]
    raws = llm.generate([p for p, _ in built], max_new_tokens=max_new_tokens,
                        stop=["\n"] if style == "fewshot" else (), **generate_kw)
    return [{"name": clean_name(r), "raw": r, "prompt": p, "note": n} for (p, n), r in zip(built, raws)]


PROFILE_SYSTEM = "You describe a shopper's interests for a recommender system, in plain words, using only the facts given."


def profile_prompt(llm: LLM, interests: Sequence[Mapping], max_interests: int = 6, max_titles: int = 3) -> tuple[str, str]:
    """The prompt of the LLM profiler: each interest's name, tier, share and a few item titles, and the ask for a
    two-sentence summary. ``interests``: dicts with ``name``, ``tier``, ``share`` (0..1) and ``titles``.
    Returns ``(prompt, note)``; the note says when interests or titles were left out."""
    rows = list(interests)
    if not rows:
        raise ValueError("interests is empty: a user with no interests has nothing to summarise; use a template")
    for i, r in enumerate(rows):
        missing = {"name", "tier", "share"} - set(r)
        if missing:
            raise ValueError(f"interests[{i}] lacks {sorted(missing)}; each needs name, tier, share and titles")
    rows = sorted(rows, key=lambda r: -float(r["share"]))
    kept, note = truncate_lines([str(i) for i in range(len(rows))], max_interests, what="interests", keep="first")
    notes = [note] if note else []
    lines = []
    for r in (rows[int(i)] for i in kept):
        titles = list(r.get("titles", ()))
        shown = titles[:max_titles]
        if len(titles) > len(shown):
            notes.append(f"{r['name']}: {len(shown)} of {len(titles)} titles shown")
        lines.append(f"- {str(r['name']).replace('_', ' ')} ({r['tier']}, {100 * float(r['share']):.0f}% of activity)"
                     + (f": {'; '.join(shown)}" if shown else ""))
    user = ("A shopper's interests, strongest first (tier, share of recent activity, example products):\n"
            + "\n".join(lines)
            + "\nSummarise what this shopper is interested in, in two sentences. Mention only the interests listed.")
    return llm.chat_prompt(user, system=PROFILE_SYSTEM), "; ".join(notes)


def profile_template(interests: Sequence[Mapping]) -> str:
    """The fallback summary, built from the same facts without a model."""
    rows = sorted(interests, key=lambda r: -float(r["share"]))
    if not rows:
        return "No interests yet."
    parts = [f"{str(r['name']).replace('_', ' ')} ({r['tier']}, {100 * float(r['share']):.0f}%)" for r in rows]
    return "Interested in " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] + "."


def summarise_interests(llm: LLM, users_interests: Sequence[Sequence[Mapping]], evidence: Sequence[Mapping],
                        vocabulary: Vocabulary, max_new_tokens: int = 60, **kw) -> list[Checked]:
    """The LLM profiler: one checked two-sentence summary per user (template fallback, flagged). Each result's
    ``note`` says what its prompt left out (interests beyond ``max_interests``, titles beyond ``max_titles``)."""
    built = [profile_prompt(llm, ints) for ints in users_interests]
    res = generate_checked(llm, [p for p, _ in built], [profile_template(i) for i in users_interests], evidence,
                           vocabulary, min_words=5, max_words=80, max_new_tokens=max_new_tokens, **kw)
    for r, (_, note) in zip(res, built):
        r.note = note
    return res
