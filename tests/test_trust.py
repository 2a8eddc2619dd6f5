"""Checks that catch invented facts (grounding.check_claims) and the measurements of course_lib.trust: the five planted
error kinds are each caught by their own slot, faithful wordings pass, the held-out half is never tuned on, intervals
match scipy's, and simulatability picks by the text alone."""
import numpy as np
import pandas as pd
import pytest

from course_lib import trust as T
from course_lib.explain import Contribution, Explanation, template
from course_lib.grounding import Vocabulary, check_claims, facts_from_explanation

ITEMS = pd.DataFrame({
    "item_id": ["i1", "i2", "i3", "i9", "x1"],
    "title": ["Pavé Edge 3", "Stride Neo 3", "Loomwell Flex 9", "Pavé Flex 1", "Loomwell Air 9"],
    "subcategory": ["sandals", "sandals", "bedding", "sandals", "bedding"],
    "colour": ["teal", "black", "white", "teal", "pink"],
    "pattern": ["plain", "plain", "striped", "dots", "plain"],
    "description": ["Open-toe sandals with a cork footbed.", "Light sandals with a cork footbed.",
                    "A linen duvet cover, breathable.", "Strappy sandals with a cork footbed.",
                    "A memory-foam pillow."],
})


def _exp():
    exp = Explanation("u", "i9", "Pavé Flex 1", "content", 0.72, "history", contributions=[
        Contribution("i1", "Pavé Edge 3", 0.13, 0.175, "click", {"name": "sandals", "tier": "secondary"}),
        Contribution("i2", "Stride Neo 3", 0.10, 0.135, "purchase", {"name": "sandals", "tier": "secondary"}),
        Contribution("i3", "Loomwell Flex 9", 0.05, 0.07, "view", {"name": "bedding", "tier": "core"})],
        interest={"name": "sandals", "tier": "secondary", "share": 0.4})
    exp.sentence = template(exp)
    return exp


@pytest.fixture()
def vocab():
    return Vocabulary.from_items(ITEMS, fields=("title", "subcategory", "colour", "pattern"),
                                 synonyms={"feature": {"cork footbed": [], "memory-foam pillow": []}},
                                 extra={"interest": ["sandals", "bedding"]})


def test_the_template_passes_and_each_planted_error_is_caught_by_its_slot(vocab):
    exp = _exp()
    facts = facts_from_explanation(exp, ITEMS, vocab)
    assert check_claims(exp.sentence, facts, vocab).ok, check_claims(exp.sentence, facts, vocab).reason()
    expect = {"title": "title", "number": "number", "verb": "verb", "attribute": "attribute", "praise": "novel"}
    rng = np.random.default_rng(0)
    for kind, slot in expect.items():
        bad = T.perturb(exp.sentence, kind, facts, ITEMS, rng)
        assert bad is not None and bad != exp.sentence
        res = check_claims(bad, facts, vocab)
        assert slot in res.slots, (kind, bad, res.problems)


def test_the_issues_two_invented_facts_are_caught(vocab):
    exp = _exp()
    facts = facts_from_explanation(exp, ITEMS, vocab)
    wrong_pair = "You looked closely at Pavé Edge 3, a match for the Loomwell Air 9 pillow."
    assert "title" in check_claims(wrong_pair, facts, vocab).slots
    praise = ("Recommended because you bought Stride Neo 3, for its durability, high-quality bedding, and excellent "
              "customer service.")
    res = check_claims(praise, facts, vocab)
    assert res.slots == {"novel"} and "durability" in res.reason()


def test_wrong_tier_and_unknown_interest_are_claims_too(vocab):
    facts = facts_from_explanation(_exp(), ITEMS, vocab)
    assert check_claims("Part of your secondary interest in sandals.", facts, vocab).ok
    assert "interest" in check_claims("Part of your core interest in sandals.", facts, vocab).slots
    facts.interests.pop("bedding")
    assert "interest" in check_claims("Part of your interest in bedding.", facts, vocab).slots


def test_a_faithful_paraphrase_passes_once_its_house_words_are_allowed(vocab):
    exp = _exp()
    facts = facts_from_explanation(exp, ITEMS, vocab)
    text = ("You looked closely at “Pavé Edge 3” and bought “Stride Neo 3”, both in your secondary interest in "
            "sandals, and viewed “Loomwell Flex 9”; together they make up 38% of the score.")
    assert check_claims(text, facts, vocab).slots == set()  # every word is evidence or a stop word
    assert check_claims(text + " We picked it.", facts, vocab).slots == {"novel"}
    assert check_claims(text + " We picked it.", facts, vocab, allowed_words=["picked"]).ok
    assert T.judge_rewrite(text, exp) == ""
    assert "drops" in T.judge_rewrite("You looked closely at “Pavé Edge 3”; 38% of the score.", exp)
    assert "drops the share" in T.judge_rewrite(text.replace("38%", "most"), exp)


def test_numbers_in_the_prompt_count_as_evidence(vocab):
    exp = _exp()
    assert not check_claims("17% of it is from “Pavé Edge 3”.", facts_from_explanation(exp, ITEMS, vocab),
                            vocab).ok
    facts = facts_from_explanation(exp, ITEMS, vocab, prompt="- Pavé Edge 3 (17% of the score)")
    assert check_claims("17% of it is from “Pavé Edge 3”.", facts, vocab).ok


def test_wilson_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (7, 20), (20, 20), (93, 104)]:
        ref = binomtest(k, n).proportion_ci(method="wilson")
        assert T.wilson(k, n) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert all(np.isnan(T.wilson(0, 0)))


def test_the_benchmark_scores_only_the_held_out_half_and_learns_on_the_other(vocab):
    exp = _exp()
    faithful = []
    for u in range(40):  # the same explanation for 40 users, each with a house word of its own half
        e = _exp()
        e.user = f"u{u}"
        word = "splendid" if T._half(e.user) == 0 else "marvellous"
        faithful.append(T.Faithful(e.sentence + f" A {word} fit.", "LLM rewrite",
                                   facts_from_explanation(exp, ITEMS, vocab), e.user, "content"))
    res = T.run_benchmark(faithful, vocab, ITEMS, seed=1)
    assert "splendid" in res["allowed_words"] and "marvellou" not in res["allowed_words"]
    fa = res["rates"].loc["false alarm: LLM rewrite"]
    n_held = res["n_faithful"]["held out"]
    assert fa["n"] == n_held and fa["flagged"] == n_held  # every held-out text has an unlearned word: all flagged
    assert res["rates"].loc["detected: title", "n"] == 0  # originals that fail are never counted as detections
    rows = res["rows"]
    assert set(rows.loc[rows["half"] == 0, "user"]).isdisjoint(rows.loc[rows["half"] == 1, "user"])


class _BagEncoder:
    """Texts -> bag-of-words counts over a fixed word list: a transparent stand-in for the text encoder."""

    words = ["sandals", "bedding", "pillow", "cork", "linen"]

    def encode(self, texts):
        return np.array([[t.lower().count(w) + 1e-3 for w in self.words] for t in texts], dtype=np.float32)


def test_simulatability_picks_by_the_text_and_the_control_is_shuffled():
    enc = _BagEncoder()
    item_vecs = enc.encode(["sandals cork", "bedding linen", "pillow"])
    texts = ["you like cork sandals", "you like linen bedding", "a pillow person"]
    cands, targets = [[0, 1, 2]] * 3, [0, 1, 2]
    assert T.simulatability(texts, cands, targets, item_vecs, enc).tolist() == [True, True, True]
    assert T.simulatability(texts, cands, targets, item_vecs, enc, shuffle_seed=0).sum() == 0  # nobody keeps theirs
    with pytest.raises(ValueError, match="not among its candidates"):
        T.simulatability(texts[:1], [[1, 2]], [0], item_vecs, enc)
    assert T.mask_title("Get the Pavé Flex 1 now", "pavé flex 1") == "Get the this item now"


class _EchoLLM:
    """A stand-in model: rewrites by echoing the template, names every group 'sandals', chooses the first label."""

    fingerprint = "echo"

    def __init__(self):
        from course_lib.llm import GenerationStats, LLMConfig

        self.config = LLMConfig(model="echo")
        self.last_stats = self.last_choice_stats = GenerationStats()

    def generate(self, prompts, **kw):
        from course_lib.llm import GenerationStats

        self.last_stats = GenerationStats(prompts=len(prompts), generated=len(prompts), seconds=0.5)
        return [p.rsplit("Original: ", 1)[1].split("\nRewritten:")[0] if "Rewritten:" in p else "sandals"
                for p in prompts]

    def choose(self, prompts, labels, **kw):
        from course_lib.llm import Choice, GenerationStats

        self.last_choice_stats = GenerationStats(prompts=len(prompts), cached=len(prompts), cached_seconds=2.0)
        return [Choice(labels[0], 0, {}, "sum", {}, {}) for _ in prompts]


def test_measure_runs_end_to_end_and_its_summary_is_strict_json(shop):
    import json

    from course_lib import constants as C
    from course_lib.baselines import EASE, ItemKNN
    from course_lib.catalogue import Catalogue
    from course_lib.data import make_split
    from course_lib.data.shop import grounding_terms, label_words
    from course_lib.tiers import discover_all

    rng = np.random.default_rng(0)
    sub = shop.items[C.SUBCATEGORY].astype("category").cat.codes.to_numpy()
    vecs = np.eye(sub.max() + 1)[sub] + 0.3 * rng.normal(size=(len(sub), sub.max() + 1))

    class Enc:  # texts -> the mean vector of the items whose title they name (a transparent encoder)
        def encode(self, texts):
            titles = shop.items[C.TITLE].tolist()
            return np.array([vecs[[i for i, t in enumerate(titles) if t in x] or [0]].mean(0) for x in texts])

    cat = Catalogue.from_items(shop.items, vecs)
    train = make_split(shop.interactions, "global", 0.2).train
    users = train.groupby(C.USER).size().sort_values().index[-12:].tolist()
    tiered = discover_all(train, cat, users=users)
    models = {"EASE": EASE(cat).fit(train), "item-kNN": ItemKNN(cat).fit(train)}
    vocab = T.vocabulary(shop.items, tiered, grounding_terms())
    res = T.measure(_EchoLLM(), models, tiered, users[:4], train, shop.items, vocab, Enc(), vecs, label_words(),
                    seed=0, template_users=users)
    s = res["summary"]
    json.dumps(s, allow_nan=False)  # strict JSON: no NaN
    assert s["benchmark"]["faithful"]["templates"] == len(res["records"]) > 8
    rewritten = sum(r["user"] in users[:4] for r in res["records"])
    assert s["benchmark"]["faithful"]["LLM rewrites"] == rewritten > 4  # an echo keeps every title and the share
    assert set(s["benchmark"]["detection"]) == set(T.ERROR_KINDS)
    assert s["naming"]["constrained choice"]["interests"] == sum(len(tiered[u].interests) for u in users[:4])
    assert s["seconds"]["naming, constrained choice (when generated)"] == 2.0
    sim = pd.DataFrame(s["simulatability"])
    assert set(sim["text"]) == {"template", "LLM rewrite", "shuffled control"}
    assert sim.loc[sim["text"] == "LLM rewrite", "users"].sum() == rewritten
