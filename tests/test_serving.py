"""Slots per tier, the merged multi-interest list and the MultiInterest recommender, on hand-checkable cases."""
import numpy as np
import pytest

from course_lib import constants as C
from course_lib.serving import UNTIERED, MultiInterest, SlotPolicy, allocate_slots, interleave, multi_interest_lists
from course_lib.tiers import TierConfig, discover
from test_tiers import CAT, ITEMS, VECS, story, topic

INDEX = {f"i{k}": k for k in range(18)}


@pytest.mark.parametrize("shares,tiers,k,policy,expected", [
    # untiered: slots follow importance share, whatever the tier (largest remainders)
    ([0.7, 0.3], ["core", "secondary"], 10, UNTIERED, [7, 3]),
    ([0.5, 0.2, 0.2, 0.1], ["core", "secondary", "fading", "peripheral"], 10, UNTIERED, [5, 2, 2, 1]),
    # tier-aware: a secondary counts × secondary_weight, the core keeps the most
    ([0.7, 0.3], ["core", "secondary"], 10, SlotPolicy(secondary_weight=1.0), [7, 3]),
    ([0.5, 0.5], ["core", "secondary"], 10, SlotPolicy(secondary_weight=0.25), [8, 2]),
    ([0.2, 0.8], ["core", "secondary"], 10, SlotPolicy(secondary_weight=1.0), [5, 5]),  # core takes until it leads
    # emerging: its exploration slots come first, whatever its small share
    ([0.9, 0.1], ["core", "emerging"], 10, SlotPolicy(emerging_slots=3), [7, 3]),
    ([0.9, 0.1], ["core", "emerging"], 3, SlotPolicy(emerging_slots=3), [2, 1]),  # the core keeps at least one ...
    ([0.9, 0.1], ["core", "emerging"], 2, SlotPolicy(emerging_slots=3), [1, 1]),  # ... and the most
    # fading: dropped at weight 0, halved at 0.5; peripheral: none
    ([0.64, 0.16, 0.2], ["core", "secondary", "fading"], 10, SlotPolicy(secondary_weight=1.0), [8, 2, 0]),
    ([0.5, 0.25, 0.25], ["core", "secondary", "fading"], 7,
     SlotPolicy(secondary_weight=1.0, fading_weight=0.5), [4, 2, 1]),
    ([0.5, 0.5], ["core", "peripheral"], 4, SlotPolicy(), [4, 0]),
    ([1.0], ["peripheral"], 3, SlotPolicy(), [3]),  # nothing but one-offs: they share by importance
    ([], [], 5, SlotPolicy(), []),
])
def test_slots(shares, tiers, k, policy, expected):
    slots = allocate_slots(shares, tiers, k, policy)
    assert slots.tolist() == expected
    assert slots.sum() == (k if tiers else 0)
    if "core" in tiers:
        assert slots[tiers.index("core")] == slots.max()


def test_slots_sum_to_k_and_core_leads_on_random_users():
    r = np.random.default_rng(0)
    for _ in range(300):
        n = int(r.integers(1, 7))
        tiers = ["core"] + list(r.choice(["secondary", "emerging", "fading", "peripheral"], size=n - 1))
        shares = r.dirichlet(np.ones(n))
        k = int(r.integers(1, 25))
        policy = SlotPolicy(emerging_slots=int(r.integers(0, 5)), secondary_weight=float(r.uniform(0, 1)),
                            fading_weight=float(r.uniform(0, 1)))
        slots = allocate_slots(shares, tiers, k, policy)
        assert slots.sum() == k and (slots >= 0).all() and slots[0] == slots.max()
        assert all(s == 0 for s, t in zip(slots, tiers) if t == "peripheral")


@pytest.mark.parametrize("call,error,match", [
    (lambda: allocate_slots([1.0], ["core"], 0), ValueError, "k must be >= 1, got 0"),
    (lambda: allocate_slots([1.0], ["core"], -3), ValueError, "k must be >= 1"),
    (lambda: allocate_slots([1.0], ["core"], 2.5), TypeError, "k must be an integer"),
    (lambda: allocate_slots([0.5, 0.5], ["core"], 4), ValueError, "one entry per interest"),
    (lambda: allocate_slots([0.5, -0.5], ["core", "secondary"], 4), ValueError, "shares must be >= 0, got -0.5"),
    (lambda: allocate_slots([0.5, float("nan")], ["core", "secondary"], 4), ValueError, "shares has NaN"),
    (lambda: SlotPolicy(emerging_slots=-1), ValueError, "emerging_slots must be >= 0"),
    (lambda: SlotPolicy(emerging_slots=1.5), TypeError, "emerging_slots must be an integer"),
    (lambda: SlotPolicy(fading_weight=-0.5), ValueError, "fading_weight must be >= 0"),
    (lambda: SlotPolicy(fading_weight=float("nan")), ValueError, "fading_weight must be a finite number"),
    (lambda: SlotPolicy(fading_weight=2), ValueError, "fading_weight must be <= 1"),
    (lambda: SlotPolicy(secondary_weight=-1), ValueError, "secondary_weight must be >= 0"),
    (lambda: SlotPolicy(order="random"), ValueError, r"order must be one of \('profile', 'interleave'\)"),
    (lambda: SlotPolicy(tiered="yes"), TypeError, "tiered must be True or False"),
    (lambda: allocate_slots([1.0], ["core"], 3, policy={"tiered": True}), TypeError, "policy must be a SlotPolicy"),
])
def test_bad_policy_input(call, error, match):
    with pytest.raises(error, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_interleave_lets_the_biggest_lead_and_spreads_the_rest():
    assert interleave([3, 1]) == [0, 0, 0, 1]  # quotas 3, 1.5, then a tie (1 vs 1) goes to the first
    assert interleave([2, 2]) == [0, 1, 0, 1]
    order = interleave([4, 2, 2])
    assert order[0] == 0 and sorted(order) == [0, 0, 0, 0, 1, 1, 2, 2]
    assert interleave([0, 2]) == [1, 1]


def test_lists_follow_the_slots_without_duplicates_or_seen_items():
    ui = discover(story(), CAT)
    seen = [list(story()[C.ITEM].map(INDEX).unique())]
    policy = SlotPolicy(emerging_slots=2, secondary_weight=1.0)
    row = multi_interest_lists({"u": ui}, ["u"], CAT, 4, seen=seen, policy=policy)[0]
    assert len(set(row)) == 4 and -1 not in row and not set(row) & set(seen[0])
    topics = [ITEMS[C.SUBCATEGORY].iloc[i] for i in row]
    assert topics.count("B") == 2 and topics.count("A") == 2 and "C" not in topics  # fading dropped
    tiny = multi_interest_lists({"u": ui}, ["u", "nobody"], CAT, 3, seen=[list(range(17)), []])
    assert tiny[0].tolist() == [17, -1, -1] and tiny[1].tolist() == [-1, -1, -1]


def test_an_interest_that_runs_out_passes_its_places_on():
    ui = discover(story(), CAT)
    seen = [[k for k in range(18) if k not in (0, 6, 7, 8, 9, 10, 11)]]  # topic A has one unseen item left
    row = multi_interest_lists({"u": ui}, ["u"], CAT, 5, seen=seen, policy=SlotPolicy(emerging_slots=1))[0]
    assert sorted(row.tolist()) == sorted(set(row.tolist())) and -1 not in row and 0 in row


def test_profile_order_ranks_the_chosen_items_by_the_given_scores():
    ui = discover(story(), CAT)
    seen = [list(story()[C.ITEM].map(INDEX).unique())]
    interleaved = multi_interest_lists({"u": ui}, ["u"], CAT, 4, seen, SlotPolicy(order="interleave"))[0]
    score = np.arange(18, dtype=float)[None, :]  # a made-up profile score: higher item row, higher score
    ranked = multi_interest_lists({"u": ui}, ["u"], CAT, 4, seen, SlotPolicy(order="profile"), order_by=score)[0]
    assert sorted(ranked) == sorted(interleaved) and ranked.tolist() == sorted(ranked.tolist(), reverse=True)


def test_recommender_follows_the_protocol_and_ranks_its_list_first():
    log = story()
    m = MultiInterest(ITEMS, VECS, k=4)
    assert m.fit(log) is m and hasattr(m, "tiered_") and m.policy == SlotPolicy()
    s = m.score(["u"])[0]
    from course_lib.profiles import history_profiles
    from course_lib.vectors import unit_rows

    prof, _ = history_profiles(log, m.catalogue, users=["u"], half_life_days=m.cfg.half_life_days)
    expected = multi_interest_lists(m.tiered_, ["u"], m.catalogue, 4, [list(log[C.ITEM].map(INDEX).unique())],
                                    m.policy, order_by=unit_rows(prof) @ m.catalogue.vectors.T)[0]
    assert np.argsort(-s)[:4].tolist() == expected.tolist() == m.recommend(["u"], 4)[0].tolist()
    assert np.isfinite(s).all()
    new = m.score(["stranger"])  # no history: the declared fallback (popularity)
    assert m.fallback == "popularity" and new.shape == (1, 18)


def test_the_score_is_a_documented_rank_because_no_cosine_gives_the_list():
    """MultiInterest's score: LIST_TOP - position on the list, profile cosine + BELOW_LIST below it. The docstring's
    reason, checked: an item left out is nearer both the profile and its nearest interest than a listed item, so
    neither cosine could rank the list first; hence Hybrid refuses a MultiInterest part."""
    from course_lib.baselines import Content, Hybrid
    from course_lib.profiles import history_profiles
    from course_lib.serving import BELOW_LIST, LIST_TOP
    from course_lib.vectors import unit_rows

    log = story()
    m = MultiInterest(ITEMS, VECS, k=4).fit(log)
    s, listed = m.score(["u"])[0], m.recommend(["u"], 4)[0]
    assert np.isfinite(s).all()
    np.testing.assert_array_equal(s[listed], LIST_TOP - np.arange(4))
    seen = set(m.seen(["u"])[0])
    left_out = [j for j in range(18) if j not in set(listed) and j not in seen]
    prof, _ = history_profiles(log, m.catalogue, users=["u"], half_life_days=m.cfg.half_life_days)
    cos_profile = (unit_rows(prof) @ m.catalogue.vectors.T)[0]
    np.testing.assert_allclose(s[left_out], cos_profile[left_out] + BELOW_LIST, rtol=1e-6)
    assert cos_profile[left_out].max() > cos_profile[listed].min()  # the profile cosine would change the list
    cents = unit_rows(np.stack([it.centroid for it in m.tiered_["u"].interests]))
    cos_interest = (cents @ m.catalogue.vectors.T).max(0)
    assert cos_interest[left_out].max() > cos_interest[listed].min()  # ... and so would the nearest interest's
    terms = m.contributions("u", int(listed[0]))  # the explanation decomposes that cosine, as documented
    assert terms.score == pytest.approx(float(cos_interest[listed[0]]), abs=1e-5)
    with pytest.raises(ValueError, match="content is a MultiInterest, whose score is a list rank"):
        Hybrid(CAT, MultiInterest(CAT, k=4), Content(CAT), 0.5)
    with pytest.raises(ValueError, match="collaborative is a MultiInterest"):
        Hybrid(CAT, Content(CAT), MultiInterest(CAT, k=4), 0.5)


def test_untiered_and_tier_aware_differ_where_tiers_matter():
    log = story()
    seen = list(log[C.ITEM].map(INDEX).unique())
    lists = {}
    for name, policy in (("untiered", UNTIERED), ("tier-aware", SlotPolicy(emerging_slots=2))):
        m = MultiInterest(ITEMS, VECS, TierConfig(), k=5, policy=policy).fit(log)
        lists[name] = [topic_of(i) for i in m.recommend(["u"], 5)[0] if i not in seen]
    assert sorted(lists["tier-aware"]) == ["A", "A", "A", "B", "B"]  # the fading topic C is dropped
    ints = m.tiered_["u"].interests
    shares, tiers = [it.share for it in ints], [it.tier for it in ints]
    assert tiers == ["core", "emerging", "fading"]
    assert allocate_slots(shares, tiers, 12, UNTIERED)[2] > 0 == allocate_slots(shares, tiers, 12, SlotPolicy())[2]


def topic_of(i):
    return ITEMS[C.SUBCATEGORY].iloc[int(i)]


def test_bad_recommender_settings():
    with pytest.raises(TypeError, match="policy must be a SlotPolicy"):
        MultiInterest(ITEMS, VECS, policy="tiered")
    with pytest.raises(TypeError, match="cfg must be a TierConfig"):
        MultiInterest(ITEMS, VECS, cfg={"half_life_days": 30})
    with pytest.raises(ValueError, match="k must be >= 1"):
        MultiInterest(ITEMS, VECS, k=0)
