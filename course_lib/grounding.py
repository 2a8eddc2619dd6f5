"""Grounding: does a generated text claim only what the evidence holds? Checks on what goes into a language model
(prompts) and what comes out (format, mentions of catalogue terms the user does not have), and checked generation
with a template fallback, flagged as such.

Not the model (``llm.py`` loads it and generates) and not the prompts' wording (``prompts.py``). Public names are
importable from ``course_lib.llm`` too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from . import checks

if TYPE_CHECKING:  # annotations only: llm.py imports this module
    from .llm import LLM


def check_prompts(prompts) -> list[str]:
    """``prompts`` as a list of non-empty strings (one string is refused: wrap it in a list)."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings; wrap a single prompt in a list: generate([prompt])")
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise TypeError(f"prompt at index {i} is {p!r} ({type(p).__name__}), not a string")
        if not p.strip():
            raise ValueError(f"prompt at index {i} is empty; every prompt needs text")
    return out



# ---------------------------------------------------------------------------------------------------------
# 5. grounding: does the text claim only what the evidence holds?
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mention:
    field: str  # which vocabulary it comes from: "title", "category", "colour", "interest", ...
    term: str  # the canonical value, e.g. "running_shoes"
    text: str  # the words as written, e.g. "running shoes"
    start: int  # character offset in the checked text


@dataclass
class Grounding:
    """The result of :func:`check_grounding`."""

    ok: bool  # no offending mention
    offending: list  # mentions of catalogue terms the user does not have
    mentions: list  # every catalogue term found (grounded or not)

    def reason(self) -> str:
        if self.ok:
            return ""
        parts = [f"{m.text!r} ({m.field})" for m in self.offending[:4]]
        more = f" and {len(self.offending) - 4} more" if len(self.offending) > 4 else ""
        return "mentions " + ", ".join(parts) + more + " that the user does not have"


class Vocabulary:
    """Every term the catalogue can be talked about with, by field, and a matcher for them.

    ``terms`` maps a field to ``{canonical value: [surface forms]}``; the value itself (underscores read as
    spaces) is always a surface form. Matching is case-insensitive on whole words, allows a plural ``s``/``es``,
    and takes the longest term at each position (``"Vantix Flex 3"`` is a title, not the brand ``Vantix``).
    """

    def __init__(self, terms: Mapping[str, Mapping[str, Sequence[str]]], ignore: Sequence[str] = ()):
        self.terms = {f: {str(v): list(forms) for v, forms in vals.items()} for f, vals in terms.items()}
        ignored = {s.lower() for s in ignore}
        self._owners: dict[str, list[tuple[str, str]]] = {}
        for f, vals in self.terms.items():
            for v, forms in vals.items():
                for s in {v.replace("_", " "), *forms}:
                    s = " ".join(str(s).split())
                    if s and s.lower() not in ignored:
                        self._owners.setdefault(s.lower(), []).append((f, v))
        alts = sorted(self._owners, key=len, reverse=True)
        self._pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(a) for a in alts) + r")(?:e?s)?(?!\w)",
                                   re.IGNORECASE) if alts else None

    @classmethod
    def from_items(cls, items, fields: Sequence[str] = ("title", "category", "subcategory", "colour", "brand"),
                   synonyms: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                   extra: Mapping[str, Sequence[str]] | None = None, ignore: Sequence[str] = ()) -> "Vocabulary":
        """From a catalogue table: each column in ``fields`` (those present), plus ``synonyms`` (field -> value ->
        other words for it, e.g. paraphrases of subcategories) and ``extra`` (field -> values, e.g.
        ``{"interest": all interest names}``). ``ignore``: surface forms too common to count as claims."""
        terms: dict[str, dict[str, list[str]]] = {}
        for f in fields:
            if f in items.columns:
                terms[f] = {str(v): [] for v in items[f].dropna().unique() if str(v).strip()}
        for f, vals in (extra or {}).items():
            terms.setdefault(f, {}).update({str(v): [] for v in vals})
        for f, vals in (synonyms or {}).items():
            for v, forms in vals.items():
                terms.setdefault(f, {}).setdefault(str(v), []).extend(forms)
        return cls(terms, ignore=ignore)

    def find(self, text: str) -> list[Mention]:
        """Every vocabulary term in ``text``, longest first, without overlaps (one Mention per owning field)."""
        if self._pattern is None or not text:
            return []
        out = []
        for m in self._pattern.finditer(text):
            for f, v in self._owners[m.group(1).lower()]:
                out.append(Mention(field=f, term=v, text=m.group(0), start=m.start()))
        return out


def evidence_from_items(items, item_ids: Sequence, *, interests: Sequence[str] = (),
                        fields: Sequence[str] = ("title", "category", "subcategory", "colour", "brand"),
                        vocabulary: Vocabulary | None = None, text_columns: Sequence[str] = ("description",),
                        id_column: str = "item_id") -> dict[str, set]:
    """What a user has, by field: the values of their items' ``fields``, their interest names, and (with a
    ``vocabulary``) every vocabulary term that their items' ``text_columns`` mention, e.g. a feature such as
    "waterproof membrane" written in the description of a pair of boots they viewed."""
    rows = items[items[id_column].isin(list(item_ids))]
    ev = {f: {str(v) for v in rows[f].dropna()} for f in fields if f in rows.columns}
    ev["interest"] = {str(n) for n in interests if str(n)}
    if vocabulary is not None:
        for col in text_columns:
            if col in rows.columns:
                for text in rows[col].dropna():
                    for m in vocabulary.find(str(text)):
                        ev.setdefault(m.field, set()).add(m.term)
    return ev


def check_grounding(text: str, evidence: Mapping[str, set], vocabulary: Vocabulary) -> Grounding:
    """Find claims in ``text`` about items, interests or attributes that the user does NOT have.

    A mention is any term of the catalogue ``vocabulary`` (a title, a category, a colour, a brand, an interest
    name, ...). It is grounded when its value is in ``evidence`` for at least one field that owns the same words
    (a word that is both a category and a subcategory needs only one). Everything else is offending.
    This is a lexical check: it catches named things the user lacks, not wrong reasoning in plain words.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    ev = {f: {str(v) for v in vals} for f, vals in evidence.items()}
    mentions = vocabulary.find(text)
    by_pos: dict[int, list[Mention]] = {}
    for m in mentions:
        by_pos.setdefault(m.start, []).append(m)
    offending = []
    for group in by_pos.values():
        if not any(m.term in ev.get(m.field, ()) for m in group):
            offending.append(group[0])
    return Grounding(ok=not offending, offending=offending, mentions=mentions)


# ---------------------------------------------------------------------------------------------------------
# checked generation with a flagged template fallback
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Checked:
    """One text that is safe to show, and where it came from."""

    text: str  # what to show
    source: str  # "llm", or "template (LLM output failed: <reason>)"
    llm_text: str  # what the model said (may be the failed one)
    reason: str  # why the LLM text was rejected ("" when accepted)
    offending: list = field(default_factory=list)  # ungrounded mentions in the LLM text
    prompt: str = ""
    note: str = ""  # e.g. what the prompt left out of a long history ("" when nothing)

    @property
    def from_llm(self) -> bool:
        return not self.reason


_MARKUP = re.compile(r"<\|[^|]*\|>|^(system|user|assistant)\s*$|\b(System|User|Assistant):", re.MULTILINE)


def format_problem(text: str, prompt: str = "", *, min_words: int = 1, max_words: int = 80) -> str:
    """Why ``text`` is not usable as it stands ("" when it is): empty, chat markup, too short or long, repeating
    itself, or mostly copied from the prompt."""
    words = text.split()
    if not words:
        return "empty output"
    if _MARKUP.search(text):
        return "off-format: chat markup in the answer"
    if len(words) < min_words or len(words) > max_words:
        return f"off-format: {len(words)} words, expected {min_words} to {max_words}"
    low = [w.lower().strip(".,;:!?\"'") for w in words]
    grams = [tuple(low[i:i + 3]) for i in range(len(low) - 2)]
    if grams and max(grams.count(g) for g in set(grams)) >= 3:
        return "off-format: repeats itself"
    if prompt and len(low) >= 8:
        p = [w.lower().strip(".,;:!?\"'") for w in prompt.split()]
        pg = {tuple(p[i:i + 4]) for i in range(len(p) - 3)}
        g4 = [tuple(low[i:i + 4]) for i in range(len(low) - 3)]
        if sum(g in pg for g in g4) >= 0.6 * len(g4):
            return "off-format: copies the prompt"
    return ""


def generate_checked(llm: LLM, prompts: Sequence[str], templates: Sequence[str], evidence: Sequence[Mapping],
                     vocabulary: Vocabulary, *, min_words: int = 1, max_words: int = 80,
                     validate: Callable[[str], str] | None = None, **generate_kw) -> list[Checked]:
    """Generate one text per prompt and keep it only if it passes every check, else show the template.

    Checks, in order: the model ran; :func:`format_problem` (empty, markup, length, repetition, parroting);
    ``validate(text)`` if given (return a reason or ""); :func:`check_grounding` against the user's
    ``evidence``. A failed text is replaced by its template, with ``source = "template (LLM output failed:
    <reason>)"``; the model's text and the offending mentions stay in the result for inspection.
    """
    prompts = check_prompts(prompts)
    if not (len(prompts) == len(templates) == len(evidence)):
        raise ValueError(f"prompts, templates and evidence must have one entry per text, got {len(prompts)}, "
                         f"{len(templates)} and {len(evidence)}")
    try:
        texts = llm.generate(prompts, **generate_kw)
        error = ""
    except Exception as e:  # noqa: BLE001 - any model failure falls back to the template, flagged with its reason
        texts, error = [""] * len(prompts), f"generation error ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    out = []
    for p, t, tmpl, ev in zip(prompts, texts, templates, evidence):
        reason = error or format_problem(t, p, min_words=min_words, max_words=max_words)
        if not reason and validate is not None:
            reason = validate(t) or ""
        offending = []
        if not reason:
            g = check_grounding(t, ev, vocabulary)
            offending = g.offending
            reason = "" if g.ok else "ungrounded: " + g.reason()
        if reason:
            out.append(Checked(text=tmpl, source=f"template (LLM output failed: {reason})", llm_text=t,
                               reason=reason, offending=offending, prompt=p))
        else:
            out.append(Checked(text=t, source="llm", llm_text=t, reason="", prompt=p))
    return out


def truncate_lines(lines: Sequence[str], max_lines: int = 20, what: str = "items", keep: str = "last") -> tuple[list[str], str]:
    """At most ``max_lines`` of a long history for a prompt, and a note saying what was left out ("" if nothing).

    ``keep="last"`` keeps the most recent lines (the end of a time-ordered history), ``"first"`` the first ones.
    """
    max_lines = checks.integer("max_lines", max_lines, min=1)
    checks.choice("keep", keep, ("last", "first"))
    lines = [str(x) for x in lines]
    if len(lines) <= max_lines:
        return lines, ""
    kept = lines[-max_lines:] if keep == "last" else lines[:max_lines]
    which = "most recent" if keep == "last" else "first"
    return kept, (f"history truncated: the prompt shows the {which} {max_lines} of {len(lines)} {what} "
                  f"({len(lines) - max_lines} left out)")
