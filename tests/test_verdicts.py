"""The article's claims as paired verdicts: every row's users, interval, ceiling and wording, on a toy evaluation
whose differences are known by construction."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.evaluate import Evaluation
from course_lib.evaluate import article_verdicts as old_import
from course_lib.verdicts import CLAIMS, article_verdicts, side_by_side, tier_test_users, verdict_summary


def _evaluation(n=200):
    rng = np.random.default_rng(1)
    users = [f"u{i:03d}" for i in range(n)]
    seg = np.array((["tail"] * 60 + ["head"] * 100 + ["cold"] * 40)[:n])
    base = rng.uniform(0, 0.3, n)
    idx = np.arange(n)
    emerging = idx % 4 == 0  # users the tier claims are judged on
    vals = {
        "popularity": base,
        "EASE": base + np.where(seg == "head", 0.2, 0.0),
        "content": base + np.where(seg == "tail", 0.1, -0.05) + np.where(seg == "cold", 0.15, 0),
        "text": base, "fused": base + 0.03,
        "tfidf": base + 0.01,
        "untiered": base, "tiered": base + np.where(emerging, 0.08, 0.0),
        "larger": base + np.where(seg == "tail", 0.1, -0.05) + np.where(seg == "cold", 0.15, 0) + rng.normal(0, 0.01, n),
        "oracle": np.full(n, 0.9),
    }
    rows = []
    for m, v in vals.items():
        new_rec = np.where(idx % 3 == 0, {"content": 0.3, "tfidf": 0.1, "oracle": 0.8}.get(m, 0.0), np.nan)
        rows.append(pd.DataFrame({"method": m, "user": users, "group": np.where(seg == "cold", "new", "returning"),
                                  "segment": seg, "ndcg": np.clip(v, 0, 1), "new-item recall": new_rec}))
    ev = Evaluation(pd.concat(rows, ignore_index=True), pd.DataFrame(index=list(vals)),
                    pd.DataFrame(index=list(vals)), 10, users={"new": int((seg == "cold").sum())},
                    fallbacks={"content": "description"})
    tier_users = {"emerging": [u for u, e in zip(users, emerging) if e], "fading": users[:80]}
    return ev, tier_users


def test_every_claim_is_a_paired_verdict_with_users_and_ceiling():
    ev, tu = _evaluation()
    v = article_verdicts(ev, "content", "EASE", text="text", fused="fused", tfidf="tfidf", tiered="tiered",
                         untiered="untiered", tier_users=tu, larger="larger", oracle="oracle", n_boot=300)
    assert list(v["claim (中文)"]) == [zh for _, zh, _ in CLAIMS]
    v = v.set_index("claim (中文)")
    assert v.loc["覆盖长尾用户", "verdict"] == "supported" and v.loc["覆盖长尾用户", "users"] == 60
    assert v.loc["大模型辅助推荐", "verdict"] == "refuted"
    assert v.loc["新物品推荐", "users"] == 67 and v.loc["新物品推荐", "verdict"] == "supported"
    assert v.loc["新物品推荐 (vs TF-IDF)", "difference"] == pytest.approx(0.2)
    assert v.loc["多模态融合", "verdict"] == "supported" and v.loc["多模态融合", "difference"] == pytest.approx(0.03)
    assert v.loc["冷启动用户", "users"] == 40 and v.loc["冷启动用户", "verdict"] == "supported"
    assert "description" in v.loc["冷启动用户", "evidence"]
    assert v.loc["兴趣分层 (emerging)", "users"] == 50
    assert v.loc["兴趣分层 (emerging)", "difference"] == pytest.approx(0.08)
    assert v.loc["兴趣分层 (fading)", "users"] == 80  # 20 of them emerging too: +0.02 on average
    assert v.loc["兴趣分层 (fading)", "difference"] == pytest.approx(0.08 * 20 / 80)
    assert v.loc["依赖大模型性能", "verdict"] == "mixed (tied)"
    # the ceiling is the oracle's mean over the row's own users (0.9 on ndcg, 0.8 on new-item recall)
    assert v.loc["大模型辅助推荐", "ceiling"] == pytest.approx(0.9)
    assert v.loc["新物品推荐", "ceiling"] == pytest.approx(0.8)
    assert "the generator oracle 0.9000" in v.loc["覆盖长尾用户", "evidence"]
    lo, hi = v.loc["多模态融合", ["lo", "hi"]]
    assert lo <= 0.03 <= hi


def test_data_reasons_and_missing_methods_are_told_apart():
    ev, _ = _evaluation()
    v = article_verdicts(ev, "content", "EASE", reasons={"fusion": "MovieLens has no pictures",
                                                         "兴趣分层 (emerging)": "no true tiers"}, n_boot=200)
    v = v.set_index("claim (中文)")
    assert v.loc["多模态融合", "verdict"] == "not testable here"
    assert v.loc["多模态融合", "evidence"] == "MovieLens has no pictures"
    assert v.loc["兴趣分层 (emerging)", "evidence"] == "no true tiers"
    assert v.loc["兴趣分层 (fading)", "verdict"] == "not run"  # no tier_users: the run left it out
    assert v.loc["依赖大模型性能", "verdict"] == "not run"
    assert np.isnan(v.loc["大模型辅助推荐", "ceiling"])  # no oracle on real data
    with pytest.raises(TypeError, match="ev must be an Evaluation"):
        article_verdicts("ev", "content", "EASE")
    assert old_import is article_verdicts  # the old import path still works


def test_side_by_side_and_summary():
    ev, tu = _evaluation()
    shop = article_verdicts(ev, "content", "EASE", text="text", fused="fused", n_boot=200)
    ml = article_verdicts(ev, "content", "EASE", reasons={"fusion": "no pictures"}, n_boot=200)
    t = side_by_side({"shop": shop, "MovieLens-100k": ml})
    assert list(t.index) == [zh for _, zh, _ in CLAIMS]
    assert t.loc["多模态融合", "shop: verdict"] == "supported"
    assert t.loc["多模态融合", "MovieLens-100k: verdict"] == "not testable (no pictures)"
    assert t.loc["覆盖长尾用户", "shop: users"] == 60
    assert t.loc["覆盖长尾用户", "shop: difference [95%]"].startswith("+0.1000 [")
    s = verdict_summary(shop)
    assert s.startswith("supported: 覆盖长尾用户") and "refuted: 大模型辅助推荐" in s and "not run: " in s
    with pytest.raises(ValueError, match="non-empty dict"):
        side_by_side({})
    with pytest.raises(TypeError, match="tables\\['x'\\]"):
        side_by_side({"x": pd.DataFrame({"a": [1]})})


def test_tier_test_users_reads_truth_only_to_choose_users():
    items = pd.DataFrame({C.ITEM: ["a", "b", "c"], C.SUBCATEGORY: ["tea", "pens", "maps"]})
    truth = pd.DataFrame({C.USER: ["u1", "u1", "u2", "u3", "u4"], C.INTEREST: ["tea", "maps", "pens", "maps", "tea"],
                          C.TIER: ["emerging", "fading", "emerging", "fading", "fading"]})
    test = pd.DataFrame({C.USER: ["u1", "u2", "u3"], C.ITEM: ["a", "c", "b"]})
    got = tier_test_users(truth, test, items)
    assert got == {"emerging": ["u1"], "fading": ["u1", "u3"]}  # u2's test item is not its emerging tea; u4 untested
    with pytest.raises(ValueError, match="items is missing column"):
        tier_test_users(truth, test, items.drop(columns=[C.SUBCATEGORY]))


def test_a_claim_left_out_says_how_to_run_it():
    ev, _ = _evaluation()
    v = article_verdicts(ev, "content", "EASE", n_boot=100, tiered="tiered", untiered="untiered",
                         not_run={"larger model": 'set LARGER_MODEL="all-mpnet-base-v2"'}).set_index("claim (中文)")
    assert v.loc["依赖大模型性能", "verdict"] == "not run"
    assert v.loc["依赖大模型性能", "evidence"] == ('not in this run (it has no method for it): '
                                              'set LARGER_MODEL="all-mpnet-base-v2"')
    assert v.loc["兴趣分层 (fading)", "evidence"] == ("not in this run (it has no list of the users it concerns "
                                                 "(tier_users))")


def test_join_pairs_a_reference_scored_apart():
    ev, _ = _evaluation()
    pu = ev.per_user
    main = Evaluation(pu[pu["method"] != "oracle"].reset_index(drop=True), pd.DataFrame(index=["x"]),
                      pd.DataFrame(index=["x"]), 10)
    ref = Evaluation(pu[pu["method"] == "oracle"].reset_index(drop=True), pd.DataFrame(index=["oracle"]),
                     pd.DataFrame(index=["oracle"]), 10)
    both = main.join(ref)
    assert both.methods == main.methods + ["oracle"] and "oracle" not in main.methods
    p = both.compare("oracle", "EASE", n_boot=100)
    wide = pu.pivot(index="user", columns="method", values="ndcg")
    assert p.n == 200 and p.diff == pytest.approx((wide["oracle"] - wide["EASE"]).mean())
    with pytest.raises(ValueError, match="both runs have the method"):
        both.join(ref)
    with pytest.raises(ValueError, match="k=5"):
        main.join(Evaluation(ref.per_user, ref.beyond, ref.by_bucket, 5))
    fewer = Evaluation(ref.per_user.iloc[:50], ref.beyond, ref.by_bucket, 10)
    with pytest.raises(ValueError, match="other scored 50 users"):
        main.join(fewer)
    with pytest.raises(TypeError, match="other must be an Evaluation"):
        main.join(ref.per_user)
