"""Sentences computed from results (course_lib.sentences) and the story user's rule (course_lib.story)."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib import sentences as S
from course_lib.data import Split
from course_lib.evaluate import PairedDiff
from course_lib.story import story_sentence, story_user


def test_paired_sentence_says_tied_whenever_the_interval_covers_zero():
    # a 2x ratio of the means, yet the interval covers 0: the sentence must say tied, not better
    p = PairedDiff("tier-aware", "single vector", "emerging recall", "all", 286, 0.0291, 0.0141, 0.0150, -0.0058,
                   0.0364)
    text = S.paired_sentence(p)
    assert "tied" in text and "better" not in text
    assert "+0.0150 [−0.0058, +0.0364]" in text and "286 users" in text
    assert "tier-aware is better" in S.paired_sentence({**p.to_dict(), "lo": 0.001})
    assert "single vector is better" in S.paired_sentence({**p.to_dict(), "diff": -0.02, "lo": -0.03, "hi": -0.01})
    assert "no interval" in S.paired_sentence({**p.to_dict(), "lo": np.nan, "hi": np.nan})
    with pytest.raises(ValueError, match="has none of"):
        S.paired_sentence({"a": "x"})


def test_paired_figure_sentence_sorts_methods_by_their_interval():
    df = pd.DataFrame({"group": ["ndcg"] * 3, "a": ["m1", "m2", "m3"], "b": ["ref"] * 3,
                       "diff": [0.05, -0.001, -0.2], "lo": [0.01, -0.01, -0.3], "hi": [0.09, 0.008, -0.1]})
    text = S.paired_figure_sentence(df)
    assert text.startswith("On ndcg, against ref: m1 above it (e.g. m1 +0.0500 [+0.0100, +0.0900])")
    assert "m3 below it (e.g. m3 −0.2000" in text and "m2 tied with it" in text
    two = S.paired_figure_sentence(pd.concat([df, df.assign(group="recall")]))
    assert "On ndcg" in two and ". On recall" in two
    with pytest.raises(ValueError, match="non-empty DataFrame"):
        S.paired_figure_sentence(df.drop(columns="lo"))


def _pairs(found):
    true = ["core", "secondary", "emerging", "fading"]
    rows = [{C.USER: "u1", "label": f"l{i}", "true": t, "found": f} for i, (t, f) in enumerate(zip(true, found))]
    rows.append({C.USER: "u1", "label": "x", "true": "none (exploration)", "found": "peripheral"})
    rows.append({C.USER: "u2", "label": "l0", "true": "core", "found": "core"})
    return pd.DataFrame(rows)


def test_story_recovery_says_well_partly_or_badly_by_count():
    assert "well" in S.story_recovery(_pairs(["core", "secondary", "emerging", "fading"]), "u1")
    assert "partly (2 of 4 true" in S.story_recovery(_pairs(["core", "secondary", "missed", "peripheral"]), "u1")
    bad = S.story_recovery(_pairs(["secondary", "core", "missed", "fading"]), "u1")
    assert "badly (1 of 4 true" in bad and "l0 (core) found as **secondary**" in bad
    assert "1 discovered interest(s) match no true interest" in bad
    assert "no true interest" in S.story_recovery(_pairs(["core"] * 4), "u9")


def _shop():
    class DS:  # the three tables story_user reads
        pass
    ds = DS()
    users = [f"u{i}" for i in range(7)]
    ds.users = pd.DataFrame({C.USER: users, C.DESCRIPTION: ["I cook", "", "I run", "I read", "I ski", "me", "hi"]})
    ds.truth = pd.DataFrame({C.USER: [u for u in users for _ in range(2)],
                             C.TIER: ["emerging", "fading"] * 6 + ["core", "core"]})
    n_train = [5, 3, 9, 1, 7, 7, 4]  # u1 has no description, u6 no emerging/fading interest
    train = pd.DataFrame({C.USER: [u for u, n in zip(users, n_train) for _ in range(n)]})
    test = pd.DataFrame({C.USER: ["u0", "u1", "u2", "u4", "u5", "u6"]})  # u3 has no test events
    return ds, Split(train, test)


def test_story_user_is_the_median_of_the_eligible_users_by_hand():
    ds, split = _shop()
    # eligible: u0 (5), u2 (9), u4 (7), u5 (7): sorted (5 u0, 7 u4, 7 u5, 9 u2); lower median = index 1 -> u4
    assert story_user(ds, split) == "u4"
    assert "among the 4 users with events in the test period" in story_sentence(ds, split) and "(7;" in story_sentence(ds, split)
    ds.truth = None  # without truth the interest condition drops: u0 5, u2 9, u4 7, u5 7, u6 4 -> median u4 (7)
    assert story_user(ds, split) == "u4"
    # no user with test events: that condition drops (u0 5, u2 9, u3 1, u4 7, u5 7, u6 4 -> sorted 1,4,5,7,7,9: u0)
    empty_test = Split(split.train, split.test.iloc[0:0])
    assert story_user(ds, empty_test) == "u0" and "none has test events" in story_sentence(ds, empty_test)
    with pytest.raises(ValueError, match="split.train has no events"):
        story_user(ds, Split(split.train.iloc[0:0], split.test))
    with pytest.raises(TypeError, match="split must be a course_lib.data.Split"):
        story_user(ds, object())


def test_ray_cost_reading_names_the_winner_with_a_ten_percent_margin():
    assert "One process wins here" in S.ray_cost_reading(5.4, 15.9, 2, 2) and "0.34×" in S.ray_cost_reading(5.4, 15.9, 2, 2)
    assert "Ray wins here" in S.ray_cost_reading(10.0, 5.0, 8, 4)
    assert "A tie here" in S.ray_cost_reading(10.0, 10.5, 8, 4)
    assert "计算成本高" in S.ray_cost_reading(1.0, 1.0, 2, 2)
    with pytest.raises(ValueError, match="ray_s must be a positive number"):
        S.ray_cost_reading(1.0, 0.0, 2, 2)


def _index_table():
    rows = [("exact", "-", 0.0, 73.0, 0.419, 1.000), ("HNSW", "efSearch 16", 2.4, 80.0, 0.022, 0.916),
            ("HNSW", "efSearch 256", 2.4, 80.0, 0.189, 0.998), ("IVF-PQ", "nprobe 1", 2.3, 4.0, 0.018, 0.675),
            ("IVF-PQ", "nprobe 16", 2.3, 4.0, 0.046, 0.697), ("IVF-PQ + re-rank", "nprobe 1, 32·k", 2.4, 77.0, 0.047, 0.949),
            ("IVF-PQ + re-rank", "nprobe 16, 32·k", 2.4, 77.0, 0.125, 0.999)]
    return pd.DataFrame(rows, columns=["index", "setting", "build s", "MiB", "ms per query", "recall@10"])


def test_index_reading_by_hand():
    text = S.index_reading(_index_table(), 10, 48, 32)
    assert "from 91.6% to 99.8%" in text and "4 MiB, 18× less than the matrix" in text  # 73 / 4 = 18.25
    assert "more clusters cannot make them exact" in text  # 0.697 − 0.675 < 0.05
    # re-rank's best (99.9%) is above HNSW's best (99.8%); its cheapest setting reaching 99.8% is nprobe 16 (0.125 ms),
    # 0.189 / 0.125 = 1.5× faster than HNSW at efSearch 256
    assert "is nprobe 16, 32·k (99.9% in 0.125 ms): 1.5× faster than HNSW at efSearch 256" in text
    # verdict at best recall: recall within 1% tie; time 0.125 vs 0.189 -> re-rank; memory 77 < 80 -> re-rank
    assert "IVF-PQ + re-rank wins on query time and memory; they tie on recall (within 1%) and build time" in text
    with pytest.raises(ValueError, match="must hold exact, HNSW"):
        S.index_reading(_index_table().iloc[:3], 10, 48, 32)


def _correct(emb, choice, free):
    return pd.DataFrame({"(a) free generation": free, "(b) constrained choice": choice, "(c) embedding": emb})


def test_naming_verdict_calls_a_gap_only_when_the_interval_is_clear():
    # embedding right on all 16, choice on 15: the paired interval has 0 as its lower end -> not more than chance
    tied = S.naming_verdict(_correct([True] * 16, [True] * 15 + [False], [True] * 14 + [False] * 2), seed=0)
    assert tied.startswith("The LLM did **not** beat the embedding baseline: embedding naming got 100%")
    assert "constrained choice 94%, free generation 88%" in tied
    assert "includes 0 (its lower end): the two differ on 1 of 16 interests" in tied
    # choice wrong on 12 of 16 where the embedding is right: clearly better
    clear = S.naming_verdict(_correct([True] * 16, [True] * 4 + [False] * 12, [False] * 16), seed=0)
    assert "lies above 0: the embedding is clearly better on these 16 interests" in clear
    same = S.naming_verdict(_correct([True, False], [True, False], [False, False]), seed=0)
    assert same.startswith("The LLM only tied")
    assert "3 free names were off-format" in S.naming_reading(_correct([True] * 4, [True] * 4, [True] * 4), 3)
    with pytest.raises(ValueError, match="correct must be a non-empty DataFrame"):
        S.naming_verdict(pd.DataFrame({"x": [True]}))


def test_naming_figure_reading_says_whether_the_best_interval_is_apart():
    full = {"embedding": {"accuracy": 0.95, "lo": 0.92, "hi": 0.97, "interests": 365},
            "free generation": {"accuracy": 0.69, "lo": 0.64, "hi": 0.74, "interests": 365}}
    text = S.naming_figure_reading(full, 16)
    assert "**embedding** names the most right (95%, interval [92%, 97%]); free generation 69%" in text
    assert "the ranking is not chance" in text
    full["free generation"]["hi"] = 0.93
    assert "not told apart" in S.naming_figure_reading(full, 16)
    assert "Only this run's 16 interests" in S.naming_figure_reading(None, 16)


def test_profiler_reading_explains_an_all_zero_ndcg():
    prof = pd.DataFrame({"query": ["LLM summary", "template summary"], "score": ["in a true interest"] * 2,
                         "lo": [-0.15, 0.01]})
    text = S.profiler_reading(prof, {"LLM summary": [0, 0, np.nan], "history mean": [0.0], "template": [0, 0.2]},
                              8, 2, 1, 10)
    assert text.startswith("Clearly better than the history mean (paired interval above 0): template summary on in a")
    assert "from the LLM summary and history mean queries (NDCG 0 for every user)" in text
    assert "2 of 8 LLM summaries fell back to the template (1 of them fact-free)" in text
    assert S.profiler_reading(prof.assign(lo=-1.0), {}, 8, 0, 0, 10).startswith("No summary query is clearly better")


def test_emerging_reading_says_tied_for_a_doubled_mean_whose_interval_covers_zero():
    from course_lib.evaluate import Evaluation

    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in range(40)]
    single = rng.random(40) * 0.02
    tier = single + rng.normal(0.0, 0.05, 40)  # noisy: the interval covers 0 whatever the means
    rows = []
    for m, em in (("single vector", single), ("tier-aware", tier)):
        for u, e in zip(users, em):
            rows.append({"method": m, "user": u, "group": "returning", "segment": "head", "ndcg": 0.1,
                         "emerging-interest recall": e})
    ev = Evaluation.__new__(Evaluation)
    ev.per_user, ev.k = pd.DataFrame(rows), 10
    text = S.emerging_reading(ev, recovered=set(users[:10]))
    assert "ndcg@10 over 40 users: +0.0000 [+0.0000, +0.0000]: tied" in text
    assert "emerging-interest recall over 40 users" in text and "but a ratio of means is no evidence" in text
    assert "Only 25% of the 40 users with such test items" in text


def test_segment_reading_names_the_best_and_worst_segment():
    summary = pd.DataFrame({"core found as core": [0.75, 0.58, 0.74, 0.92], "|found − true| interests": [1.3, 2.2, 1.3, 0.7]},
                           index=["all", "tail", "torso", "head"])
    text = S.segment_reading(summary)
    assert "highest for **head** users (0.92) and lowest for **tail** users (0.58)" in text
    assert "closest to the truth for head users (|found − true| 0.70), the same segment." in text
    assert "nothing to compare" in S.segment_reading(summary.loc[["all", "head"]])
