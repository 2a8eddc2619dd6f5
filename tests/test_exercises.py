"""The exercise checker and the worked solutions (solutions must pass their own checks)."""
import importlib.util
from pathlib import Path

import pytest

from course_lib import exercises

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def load_solution(name):
    spec = importlib.util.spec_from_file_location(name, SOLUTIONS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("answer,expected,kw,ok", [
    (3, 3, {}, True),
    (3.0, 3, {}, True),
    (4, 3, {}, False),
    (0.3334, 1 / 3, {"tol": 1e-3}, True),
    (0.34, 1 / 3, {"tol": 1e-3}, False),
    (float("nan"), 0.5, {}, False),
    ("books", "books", {}, True),
    (["b", "a"], {"a", "b"}, {}, True),
    ([1, 2], [1, 2], {}, True),
    ([2, 1], [1, 2], {}, False),
    (True, 1, {}, False),
    ("x", 2.0, {}, False),
])
def test_check(answer, expected, kw, ok, capsys):
    assert exercises.check("q", answer, expected, **kw) is ok
    out = capsys.readouterr().out
    assert ("✅" in out) is ok and ("❌" in out) is (not ok)


def test_unanswered_is_not_an_error(capsys):
    assert exercises.check("q", None, 1) is False
    assert "not answered yet" in capsys.readouterr().out


def test_hint_is_shown_on_a_wrong_answer(capsys):
    exercises.check("q", 1, 2, hint="count again")
    assert "Hint: count again" in capsys.readouterr().out


def test_welcome_solutions_pass(shop, capsys):
    answers = load_solution("s00_welcome").answers(shop)
    expected = exercises.welcome_expected(shop)
    assert exercises.check("torso", answers["torso"], expected["torso"])
    assert exercises.check("top", answers["top_category_users"], expected["top_category_users"])
    assert exercises.check("share", answers["top1pct_share"], expected["top1pct_share"], tol=1e-9)
    # and the reference itself is sane on the shop
    assert 0 < expected["top1pct_share"] < 0.5 and expected["torso"] > 100


@pytest.mark.slow
def test_encoding_solutions_pass(shop, tiny_bert):
    import numpy as np
    import pandas as pd

    from course_lib.diagnostics import pooling_report
    from course_lib.encode import TextEncoder

    s = load_solution("s01_encoding")
    items = shop.items.groupby("category").head(12)  # 120 items over every category: "different" pairs exist
    vecs = {p: TextEncoder(tiny_bert, pooling=p, cache=False).encode(items["text"].tolist()) for p in ("mean", "cls")}
    table, pairs = pooling_report(vecs, items["subcategory"], items["category"], k=5, n_pairs=300)
    assert s.best_pooling(table, k=5) == table["neighbour precision@5"].idxmax()
    # the exercise's mean pooling agrees with the real encoder on a padded batch
    import torch

    enc = TextEncoder(cache=False)
    texts = ["I like smartwatches.", "Hiking boots for long wet trails in the mountains, and a warm jacket."]
    batch = enc.tokenizer(texts, return_tensors="pt", padding=True)
    assert batch["attention_mask"].sum() < batch["attention_mask"].numel()  # the batch is padded
    with torch.no_grad():
        mine = s.mean_pool(enc.model(**batch).last_hidden_state, batch["attention_mask"])
    mine = torch.nn.functional.normalize(mine, dim=1).numpy()
    assert np.allclose((mine * enc.encode(texts)).sum(1), 1.0, atol=1e-4)
    unrelated = pairs[(pairs["embedding"] == "cls") & (pairs["pair"] == "different")]["cosine"]
    assert s.share_above(pairs, "cls") == pytest.approx(float((unrelated >= 0.5).mean()))
    assert isinstance(table, pd.DataFrame)


def test_fusion_solutions_pass(shop):
    import numpy as np

    from course_lib.data import make_split
    from course_lib.diagnostics import neighbour_precision
    from course_lib.fuse import fuse_text_image

    s = load_solution("s02_fusion")
    rng = np.random.default_rng(0)
    t, i = rng.normal(size=(4, 6)), rng.normal(size=(4, 9))
    f = fuse_text_image(t, i, 0.3)
    assert exercises.check("cos", s.weighted_cosine(t[0], t[1], i[0], i[1], 0.3), float(f[0] @ f[1]), tol=1e-5)
    assert np.allclose(s.fuse(t, i, 0.3), f, atol=1e-6)  # the learner's fusion is the library's, row for row
    labels = np.array(["a", "a", "b", "b"])
    assert s.hist_sub_colour(i, labels, k=1) == neighbour_precision(i, labels, 1)
    tv = rng.normal(size=(len(shop.items), 6))
    iv = rng.normal(size=(len(shop.items), 5))
    split = make_split(shop.interactions, "per-user", 0.2)
    r = s.recall_at_alpha(shop.items, tv, iv, split.train, split.test, alpha=0.25)
    assert 0 <= r <= 1


def test_ranking_solutions_pass(shop):
    import numpy as np

    from course_lib.rank import top_k

    s = load_solution("s03_ranking")
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(len(shop.items), 8)).astype("float32")
    profiles = rng.normal(size=(2, 8)).astype("float32")
    _, unmasked = top_k(profiles, vecs, 10)
    seen = [unmasked[0][:3].tolist() + [9999], []]
    assert s.seen_in_top(unmasked, seen) == 3
    sims = np.array([0.1, 0.6, 0.5, 0.4] + [0.0] * (len(shop.items) - 4))
    assert s.ids_above(shop.items["item_id"], sims, 0.6) == shop.items["item_id"].iloc[[1]].tolist()
    assert s.ids_above(shop.items["item_id"], sims, 0.5) == shop.items["item_id"].iloc[[1, 2]].tolist()
    from course_lib.rank import top_k_scores

    scores = profiles @ vecs.T
    seen = [unmasked[0][:3].tolist(), []]
    assert np.array_equal(s.top_k_masked(scores, 10, seen), top_k_scores(scores, 10, exclude=seen)[1])
    assert s.top_books_subcategory(shop.items, profiles, vecs) in set(shop.items.loc[shop.items["category"] == "books", "subcategory"])


def test_cold_item_solution_pass(shop):
    import numpy as np

    s5 = load_solution("s05_cold_start")
    rng = np.random.default_rng(0)
    warm = sorted(shop.interactions["user_id"].unique())[:50]
    p = s5.cold_precision(shop, rng.normal(size=(len(shop.items), 6)), rng.normal(size=(len(shop.items), 5)), warm)
    assert 0 <= p <= 1


def test_cold_start_and_evaluation_solutions_pass():
    import math

    import pandas as pd

    from course_lib import metrics

    import numpy as np

    s5 = load_solution("s05_cold_start")
    vecs = np.eye(4)
    assert s5.empty_pages(np.array([[1.0, 0, 0, 0], [0.3, 0.3, 0.3, 0.3]]), vecs, 0.6) == 1
    curve = pd.DataFrame({"n": [0, 0, 1, 1], "method": ["blend", "popularity"] * 2, "recall@10": [0.1, 0.2, 0.3, 0.2]})
    assert s5.first_n(curve) == 1
    s6 = load_solution("s06_evaluation")
    ref = metrics.ndcg_at_k([list("abcd")], [set("bdz")], 4).value
    assert exercises.check("ndcg", s6.ndcg_at_k(list("abcd"), set("bdz"), 4), ref, tol=1e-12) and not math.isnan(ref)
    leak = pd.DataFrame({"recall": [0.3, 0.2]}, index=["random split", "time split"])
    assert s6.inflation(leak) == 0.3 / 0.2
    ev = _toy_evaluation()
    assert s6.tail_lo(ev, n_boot=200) == ev.compare("EASE", "popularity", "ndcg", segment="tail", n_boot=200).lo


def _toy_evaluation():
    import numpy as np
    import pandas as pd

    from course_lib.evaluate import Evaluation

    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in range(60)]
    seg = np.array(["tail"] * 20 + ["head"] * 30 + ["cold"] * 10)
    rows = []
    for m, lift in (("random", -0.1), ("popularity", 0.0), ("EASE", 0.15), ("content", 0.02)):
        v = np.clip(rng.uniform(0.1, 0.3, 60) + lift + (seg == "head") * 0.05 * (m == "EASE"), 0, 1)
        rows.append(pd.DataFrame({"method": m, "user": users, "group": np.where(seg == "cold", "new", "returning"),
                                  "segment": seg, "ndcg": v}))
    return Evaluation(pd.concat(rows, ignore_index=True), pd.DataFrame(), pd.DataFrame(), 10)


def test_tiering_solutions_pass():
    from types import SimpleNamespace

    import pandas as pd

    from course_lib import constants as C
    from course_lib.tiers import TierConfig, discover_all
    from test_tiers import CAT, ITEMS, story

    s = load_solution("s04_tiering")
    ds = SimpleNamespace(interactions=story())
    assert s.n_interests_08(ds, CAT, "u", TierConfig()) == 3  # three well-separated topics stay three
    truth = pd.DataFrame({C.USER: ["u"] * 3, C.INTEREST: ["A", "B", "C"], C.TIER: ["core", "emerging", "fading"]})
    tiered = discover_all(story(), CAT)
    labels = ITEMS[C.SUBCATEGORY].to_numpy()
    assert s.fading_recall_60(tiered, truth, labels, ["u"], TierConfig()) == 1.0  # C has been quiet for 150 days
    # by hand: weights 0.5, 0.2 × 0.25, 0.3 × 0.5 → 7.14, 0.71, 2.14 of 10 → floors 7, 0, 2; the last slot: 0.71
    assert s.fading_slots() == 2


def test_report_solutions_pass():
    s = load_solution("s09_report")
    ev = _toy_evaluation()
    assert s.top_returning(ev) == "EASE"
    expected = sum(ev.compare(m, "popularity", "ndcg", n_boot=200).lo > 0 for m in ("EASE", "content"))
    assert s.n_beat_popularity(ev, n_boot=200) == expected == 1


def test_explanation_solutions_pass(shop):
    import numpy as np

    from course_lib.baselines import EASE, ItemKNN
    from course_lib.catalogue import Catalogue
    from course_lib.explain import explain, fidelity

    s = load_solution("s08_explanations")
    cat = Catalogue.from_items(shop.items)
    users = shop.interactions.groupby("user_id").size().sort_values().index[-15:].tolist()
    knn = ItemKNN(cat).fit(shop.interactions)
    share = s.top_share(knn, users[0], cat)
    e = explain(knn, users[0], cat.ids[int(knn.recommend([users[0]], 1)[0, 0])])
    assert share == e.contributions[0].share and 0 < share <= 1
    counts = shop.interactions.groupby("user_id").size()
    few = counts[counts.between(3, 6)].index[0]  # a user with a handful of items cannot have every colour
    hist = shop.interactions.loc[shop.interactions["user_id"] == few, "item_id"].tolist()
    colours = set(shop.items.loc[shop.items["item_id"].isin(hist), "colour"])
    absent = next(c for c in sorted(shop.items["colour"].unique()) if c not in colours)
    assert s.grounded(f"Because you liked {absent} things.", shop.items, hist, []) is False
    ease = EASE(cat).fit(shop.interactions)
    f = fidelity(ease, users, k=10, n_cite=1, seed=42)
    assert s.leave_rate(ease, users) == float(f["leaves top-10 (cited removed)"].mean())
    assert np.isfinite(s.leave_rate(ease, users))


def test_finetuning_solutions_pass(tiny_bert):
    import torch

    from course_lib import finetune as ft

    s = load_solution("s07_finetuning")
    g = torch.Generator().manual_seed(0)
    anchors, cands = torch.randn(6, 8, generator=g), torch.randn(10, 8, generator=g)
    assert s.loss_scale5(anchors, cands) == pytest.approx(float(ft.info_nce(anchors, cands, 5.0)), abs=1e-5)
    assert s.n_adapter(tiny_bert) == 32 * 32  # tiny_bert's vectors are 32 wide: one 32 x 32 matrix
    from course_lib import exercise_bank as bank

    assert bank.check_info_nce(s.my_info_nce).status == "passed"
    assert bank.check_adapter_step(s.adapter_step).status == "passed"
    from course_lib.evaluate import Evaluation

    toy = _toy_evaluation()
    pu = toy.per_user.replace({"method": {"content": "content (tuned)"}})
    ev = Evaluation(pu, toy.per_user.iloc[:0], toy.per_user.iloc[:0], 10)
    tail = pu[pu["segment"] == "tail"].pivot(index="user", columns="method", values="ndcg")
    assert s.tail_vs_ease(ev, n_boot=200) == pytest.approx((tail["content (tuned)"] - tail["EASE"]).mean())


def test_scaling_code_solutions_pass_their_checks():
    from course_lib import exercise_bank as bank

    s = load_solution("s10_scaling")
    assert bank.check_chunked_top_k(s.chunked_top_k).status == "passed"
    assert bank.check_ann_recall(s.ann_recall).status == "passed"


def test_explanation_code_solutions_pass_their_checks():
    from course_lib import exercise_bank as bank

    s = load_solution("s08_explanations")
    assert bank.check_grounding(s.flags_invented).status == "passed"
    assert bank.check_content_terms(s.content_terms).status == "passed"
