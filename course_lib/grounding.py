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


# ---------------------------------------------------------------------------------------------------------
# claim slots and novel content words: checks that catch invented facts in an explanation
# ---------------------------------------------------------------------------------------------------------
EVENT_WORDS = {  # verb as written -> the event it claims (the template's verbs and their usual paraphrases)
    "viewed": "view", "browsed": "view", "saw": "view", "looked at": "view", "checked out": "view",
    "looked closely at": "click", "clicked": "click", "clicked on": "click",
    "bought": "purchase", "purchased": "purchase", "ordered": "purchase",
    "rated": "rating",
}
TEMPLATE_WORDS = "because interest score part together"  # the template's own words: never a claim by themselves
ATTRIBUTE_FIELDS = ("colour", "pattern", "feature", "material")
STOPWORDS = frozenset("""a about above after again all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each even few for from further had has have having he her
here hers him his how i if in into is it its itself just like made make makes may me more most much my no nor not now
of off on once one only or other our out over own part same she should so some such than that the their them then there
these they this those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself together both all share score item items product products also which that""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(%|percent\b)?")


def _stem(word: str) -> str:
    """A crude stem, enough to match a word with its plural or past form: lower case, minus s/es/ed/ing/ly."""
    w = word.lower().strip("'-")
    for suffix in ("ing", "ed", "es", "ly", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[:-len(suffix)]
    return w


def content_words(text: str) -> set[str]:
    """The stems of ``text``'s content words (letters only, 3+ characters, not a stop word)."""
    return {_stem(w) for w in _WORD.findall(str(text)) if len(w) >= 3 and w.lower() not in STOPWORDS}


@dataclass
class Facts:
    """What one explanation may claim: the recommended item, the history items it may cite (each with the event the
    user had and the attributes the item really has), the numbers, the interest-tier pairs, and every word of the
    evidence (titles, descriptions, interest names, and the prompt the model read)."""

    item_title: str
    titles: dict  # title -> {"event": "view" | "click" | "purchase" | None, "attributes": set of "field:term"}
    numbers: set  # percentages and other numbers the evidence states (whole numbers)
    interests: dict  # interest name (spaces, lower case) -> set of tiers it may be called
    words: set  # content-word stems of the evidence and the prompt

    def attributes(self) -> set:
        return set().union(*(t["attributes"] for t in self.titles.values())) if self.titles else set()


def facts_from_explanation(exp, items, vocabulary: Vocabulary, *, prompt: str = "", history_titles: Sequence[str] = (),
                           id_column: str = "item_id", text_columns: Sequence[str] = ("title", "description")) -> Facts:
    """The :class:`Facts` of an ``explain.Explanation``: its cited items (with their events), the recommended item,
    optionally more ``history_titles`` the user really has (no event claimed for them), its share of the score (and
    any number the ``prompt`` states) and the interests it names. Attributes come from ``items`` (their ``ATTRIBUTE_FIELDS`` columns, and every vocabulary
    term of their description)."""
    by_id = items.set_index(id_column)

    def attrs(item_id) -> set:
        if item_id not in by_id.index:
            return set()
        row = by_id.loc[item_id]
        out = {f"{f}:{row[f]}" for f in ATTRIBUTE_FIELDS if f in by_id.columns and isinstance(row[f], str)}
        for col in text_columns:
            if col in by_id.columns:
                out |= {f"{m.field}:{m.term}" for m in vocabulary.find(str(row[col])) if m.field in ATTRIBUTE_FIELDS}
        return out

    titles = {str(t): {"event": None, "attributes": set()} for t in history_titles}
    words = content_words(prompt)
    cited = exp.cited()
    for c in [*cited, *exp.contributions]:  # cited first: a title shared by two items keeps the cited one's event
        if (c in cited or c.title in titles) and not titles.get(c.title, {}).get("attributes"):
            titles[c.title] = {"event": c.event, "attributes": attrs(c.item_id)}
    titles.setdefault(exp.title, {"event": None, "attributes": attrs(exp.item_id)})
    ids = [c.item_id for c in exp.contributions if c.title in titles] + [exp.item_id]
    for col in text_columns:
        if col in by_id.columns:
            for v in by_id.loc[[i for i in ids if i in by_id.index], col]:
                words |= content_words(str(v))
    numbers = {round(100 * sum(c.share for c in cited))} | {int(float(n)) for n in re.findall(r"\d+(?:\.\d+)?", prompt)
                                                            if float(n) < 1000}
    interests: dict = {}
    for it in [exp.interest] + [c.interest for c in exp.contributions]:
        if it:
            interests.setdefault(str(it["name"]).replace("_", " ").lower(), set()).add(str(it["tier"]))
    for name, tiers in interests.items():
        words |= content_words(name) | {_stem(t) for t in tiers}
    events = {t["event"] for t in titles.values() if t["event"]}
    words |= content_words(" ".join(v for v, e in EVENT_WORDS.items() if e in events)) | content_words(TEMPLATE_WORDS)
    for t in titles:
        words |= content_words(t)
    return Facts(item_title=exp.title, titles=titles, numbers=numbers, interests=interests, words=words)


@dataclass
class ClaimCheck:
    """The result of :func:`check_claims`: ``problems`` is a list of ``(slot, what)``; ``ok`` when it is empty."""

    problems: list

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def slots(self) -> set:
        return {s for s, _ in self.problems}

    def reason(self) -> str:
        return "; ".join(f"{s}: {w}" for s, w in self.problems[:4])


def check_claims(text: str, facts: Facts, vocabulary: Vocabulary, *, allowed_words: Sequence[str] = (),
                 tiers: Sequence[str] = ("core", "secondary", "emerging", "fading", "peripheral")) -> ClaimCheck:
    """Claim slots plus a novel-content-word test: every claim ``text`` makes must match ``facts``.

    - title: every catalogue title it names is one the facts hold (a cited or history item, or the recommended one);
    - verb: the event verb before a cited title (bought, viewed, ...) is the event the user really had with it;
    - number: every number outside a title is one the evidence states (a share, to the rounded percent, ±1);
    - attribute: a colour, pattern or feature next to a title is one that item has (else one of the items has it);
    - interest: an interest name it uses is the user's, and a tier word just before it is that interest's tier;
    - novel: every content word is in the evidence, the prompt or ``allowed_words`` (house-style words such as
      "recommend"): invented praise ("durable", "excellent service") and invented attributes fail here.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    problems: list = []
    mentions = vocabulary.find(text)
    title_spans = [(m.start, m.start + len(m.text), m.term) for m in mentions if m.field == "title"]
    # titles may also be written exactly as in the facts (quoted), whatever the vocabulary holds
    low = text.lower()
    for t in facts.titles:
        start = low.find(t.lower())
        while start >= 0:
            if not any(a <= start < b for a, b, _ in title_spans):
                title_spans.append((start, start + len(t), t))
            start = low.find(t.lower(), start + 1)
    title_spans.sort()
    for a, b, term in title_spans:
        if term not in facts.titles:
            problems.append(("title", f"“{text[a:b]}” is not an item of this explanation"))
    masked = "".join(" " if any(a <= i < b for a, b, _ in title_spans) else ch for i, ch in enumerate(text))
    # verbs: the nearest event verb before each cited title must be its event
    verbs = sorted((m.start(), m.group(0).lower()) for v in EVENT_WORDS
                   for m in re.finditer(rf"(?<!\w){re.escape(v)}(?!\w)", masked, re.IGNORECASE))
    verbs = [(p, v) for p, v in verbs if not any(q < p < q + len(w) for q, w in verbs if w != v and v in w)]
    for a, _, term in title_spans:
        event = facts.titles.get(term, {}).get("event")
        before = [v for p, v in verbs if p < a]
        if event and before and EVENT_WORDS[before[-1]] != event:
            problems.append(("verb", f"says “{before[-1]}” for “{term}”; the user's event was {event}"))
    # numbers
    for m in _NUMBER.finditer(masked):
        value = float(m.group(1))
        if not any(abs(value - n) <= 1 for n in facts.numbers):
            problems.append(("number", f"{m.group(0).strip()} is not in the evidence"))
    # attributes next to a title
    for m in mentions:
        if m.field not in ATTRIBUTE_FIELDS or any(a <= m.start < b for a, b, _ in title_spans):
            continue
        key = f"{m.field}:{m.term}"
        near = min(title_spans, key=lambda s: abs(s[0] - m.start) if s[0] > m.start else m.start - s[1],
                   default=None)
        owner = facts.titles.get(near[2]) if near else None
        own = owner["attributes"] if owner and owner["attributes"] else facts.attributes()
        if key not in own:
            problems.append(("attribute", f"“{m.text}” ({m.field}) is not a property of "
                             + (f"“{near[2]}”" if near else "these items")))
    # interests and their tiers
    tier_pat = "|".join(map(re.escape, tiers))
    for m in mentions:
        if m.field != "interest":
            continue
        name = m.term.replace("_", " ").lower()
        if name not in facts.interests:
            problems.append(("interest", f"“{m.text}” is not one of the user's interests"))
            continue
        said = re.search(rf"(?<!\w)({tier_pat})(?!\w)[^.;,]{{0,25}}$", masked[:m.start], re.IGNORECASE)
        if said and said.group(1).lower() not in facts.interests[name]:
            problems.append(("interest", f"calls {name!r} {said.group(1)!r}; it is "
                             + "/".join(sorted(facts.interests[name]))))
    # novel content words
    allowed = facts.words | {_stem(w) for w in allowed_words}
    novel = sorted({w for w in content_words(masked) if w not in allowed and not w.isdigit()})
    if novel:
        problems.append(("novel", "words in neither the evidence nor the prompt: " + ", ".join(novel[:6])))
    return ClaimCheck(problems=problems)
