"""The committed shop is what the seeded generator makes, and it has the structure the course relies on."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from course_lib import constants as C
from course_lib.data import load_shop, make_split
from course_lib.data.shop import FILES, ShopConfig, generate, oracle_scores, verdict_support, write
from course_lib.data.shop_catalogue import GENERIC_COPY, SUBCATEGORIES, VAGUE_USER


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    write(generate(ShopConfig()), out)
    return out


@pytest.mark.parametrize("name", list(FILES.values()))
def test_committed_tables_match_the_generator(shop, regenerated, name):
    committed = pd.read_csv(shop.root / name, keep_default_na=False)
    fresh = pd.read_csv(regenerated / name, keep_default_na=False)
    pd.testing.assert_frame_equal(committed, fresh, check_exact=False, rtol=1e-9)


def test_committed_images_match_the_generator(shop, regenerated):
    for item_id in shop.items[C.ITEM]:
        a = np.asarray(Image.open(shop.root / "images" / f"{item_id}.png").convert("RGB"))
        b = np.asarray(Image.open(regenerated / "images" / f"{item_id}.png").convert("RGB"))
        assert np.array_equal(a, b), item_id


def test_generator_is_seeded():
    small = ShopConfig(n_items=120, n_users=60)
    a, b = generate(small), generate(small)
    c = generate(ShopConfig(n_items=120, n_users=60, seed=1))
    pd.testing.assert_frame_equal(a["interactions"], b["interactions"])
    assert not a["interactions"].equals(c["interactions"])


def test_sizes_and_no_stray_files(shop):
    assert len(shop.items) == 1800 and len(shop.users) == 2500
    assert shop.items[C.CATEGORY].nunique() == 10
    assert shop.items[C.SUBCATEGORY].nunique() == len(SUBCATEGORIES)
    pngs = sorted(p.name for p in (shop.root / "images").glob("*.png"))
    assert pngs == sorted(f"{i}.png" for i in shop.items[C.ITEM])
    size = sum(p.stat().st_size for p in shop.root.rglob("*") if p.is_file())
    assert size < 15 * 2**20


def test_long_tails(shop):
    per_user = shop.interactions.groupby(C.USER).size()
    assert per_user.max() >= 200  # a few users with hundreds
    assert (per_user < 5).mean() > 0.2  # many with fewer than 5
    per_item = shop.interactions.groupby(C.ITEM).size().sort_values(ascending=False)
    assert per_item.iloc[: len(per_item) // 10].sum() / per_item.sum() > 0.3  # top 10% items take > 30%


def test_cold_users_and_items(shop):
    cold_users = shop.cold_users()
    assert len(cold_users) == 125  # 5% registered and never acted (notebook 05 serves them)
    described = shop.users.set_index(C.USER).loc[cold_users, C.DESCRIPTION]
    assert (described.str.len() > 0).all()  # a user who never acts still said something ...
    assert described.isin(VAGUE_USER).any() and not described.isin(VAGUE_USER).all()  # ... not always informative
    assert set(shop.user_truth.loc[shop.user_truth["is_cold"].astype(str) == "True", C.USER]) == set(cold_users)
    assert 20 <= len(shop.cold_items()) <= 150  # launched, never bought: mostly late launches
    assert shop.items.set_index(C.ITEM).loc[shop.cold_items(), C.IMAGE].str.len().gt(0).all()


def test_self_descriptions_vary_in_what_they_say(shop):
    d = shop.users[C.DESCRIPTION]
    empty, vague = (d == "").mean(), d.isin(VAGUE_USER).mean()
    assert 0.1 < empty < 0.25 and 0.08 < vague < 0.2 and (d == VAGUE_USER[0]).any()
    assert VAGUE_USER[0] == "I am new to this platform."  # the article's own example


def test_items_draw_events_only_after_their_launch(shop):
    launch = pd.read_csv(shop.root / FILES["item_truth"]).set_index(C.ITEM)["launch"].map(pd.Timestamp)
    first = shop.interactions.groupby(C.ITEM)[C.TIMESTAMP].min()
    assert (first >= launch.reindex(first.index)).all()
    start, end = shop.interactions[C.TIMESTAMP].min(), shop.interactions[C.TIMESTAMP].max()
    late = (launch >= start + 0.8 * (end - start)).mean()
    assert 0.15 <= late <= 0.2 and (launch < start).mean() > 0.5
    # the launch curve: an item launched during the log draws more in its first two weeks than in any later fortnight
    inter = shop.interactions.join(launch.rename("launch"), on=C.ITEM)
    days = (inter[C.TIMESTAMP] - inter["launch"]).dt.days
    during = inter[inter["launch"] >= start]
    per_fortnight = (days[during.index] // 14).value_counts().sort_index()
    assert per_fortnight.iloc[0] > 1.3 * per_fortnight.iloc[2:6].mean()


def test_users_act_only_after_signing_up(shop):
    signup = shop.user_truth.set_index(C.USER)["signup"].map(pd.Timestamp)
    first = shop.interactions.groupby(C.USER)[C.TIMESTAMP].min()
    assert (first >= signup.reindex(first.index)).all()
    assert (signup.sort_index().diff().dropna() >= pd.Timedelta(0)).all()  # ids follow the order of sign-up


def test_some_item_texts_do_not_say_what_the_item_is(shop):
    generic = shop.items[C.DESCRIPTION].map(lambda d: d.split(". ")[0].rstrip(".") + "." in GENERIC_COPY)
    assert 0.02 < generic.mean() < 0.07
    nouns = [any(w in d.lower() for w in SUBCATEGORIES[s]["literal"] + SUBCATEGORIES[s]["nouns"])
             for d, s in zip(shop.items[C.DESCRIPTION], shop.items[C.SUBCATEGORY])]
    assert 0.85 < np.mean(nouns) < 0.97  # the rest: no noun at all, or a related subcategory's (misleading)


def test_every_verdict_rests_on_at_least_100_test_users(shop):
    support = verdict_support(shop)
    assert (support >= 100).all(), support.to_dict()
    # cross-check two counts independently, from the split itself
    split = make_split(shop.interactions, "global", 0.2)
    train_items = split.train.groupby(C.USER)[C.ITEM].agg(set)
    test_items = split.test.groupby(C.USER)[C.ITEM].agg(set)
    assert support["test users"] == sum(bool(t - train_items.get(u, set())) for u, t in test_items.items())
    assert support["new users"] == len(set(split.test[C.USER]) - set(split.train[C.USER]))


def test_verdict_support_counts_a_hand_made_log():
    from course_lib.data import Dataset

    items = pd.DataFrame({C.ITEM: ["a", "b", "c"], C.TITLE: "t", C.CATEGORY: "k", C.DESCRIPTION: "",
                          C.SUBCATEGORY: ["x", "y", "z"]})
    t = lambda d: pd.Timestamp("2026-04-01") + pd.Timedelta(days=d)  # noqa: E731
    rows = [("u1", "a", 0), ("u1", "a", 1), ("u2", "a", 2), ("u2", "b", 3), ("u3", "b", 4), ("u3", "a", 5),
            ("u1", "b", 6), ("u1", "a", 7),  # test (last 20% of 10 events): u1 b (tier y: fading), a (seen)
            ("u4", "c", 8), ("u2", "c", 9)]  # u4 is new; c is a new item (u4, u2); c is u2's emerging interest
    inter = pd.DataFrame([{C.USER: u, C.ITEM: i, C.TIMESTAMP: t(d), C.EVENT: "view", C.WEIGHT: 1.0} for u, i, d in rows])
    truth = pd.DataFrame({C.USER: ["u1", "u2", "u4"], C.INTEREST: ["y", "z", "x"], C.TIER: ["fading", "emerging", "core"]})
    ds = Dataset("shop", items, pd.DataFrame({C.USER: ["u1", "u2", "u3", "u4"]}), inter, truth=truth)
    s = verdict_support(ds, 0.4)  # cut at the 60% quantile: events of days 6..9 are test
    assert s.to_dict() == {"test users": 3, "new users": 1, "with a relevant new item": 2, "tail users": 2,
                           "with emerging-tier test items": 1, "with fading-tier test items": 1}


def test_oracle_scores_are_the_generative_probabilities(shop):
    users = shop.users[C.USER].iloc[[0, 5, 1000]].tolist()
    at = pd.Timestamp("2026-09-01")
    p = oracle_scores(shop, users, at)
    assert p.shape == (3, len(shop.items)) and np.allclose(p.sum(axis=1), 1)
    launch = pd.read_csv(shop.root / FILES["item_truth"]).set_index(C.ITEM).reindex(shop.items[C.ITEM])["launch"]
    assert (p[:, (launch.map(pd.Timestamp) > at).to_numpy()] == 0).all()  # nothing before its launch
    # the user's true interests hold the mass that exploration leaves them
    sub = shop.items[C.SUBCATEGORY].to_numpy()
    truth = shop.truth[shop.truth[C.USER] == users[0]]
    inside = np.isin(sub, truth[C.INTEREST].tolist())
    assert p[0, inside].sum() > 0.85
    with pytest.raises(ValueError, match="not in the shop's ground truth"):
        oracle_scores(shop, ["nobody"], at)


def test_oracle_is_a_ceiling_on_the_test_period(shop):
    """The items users pick in the test period score far above a random item, and ranking by the oracle beats
    EASE on NDCG@10 under the course's global split."""
    from course_lib.baselines import EASE, Recommender
    from course_lib.evaluate import evaluate

    split = make_split(shop.interactions, "global", 0.2)
    test = split.test
    at = test[C.TIMESTAMP].min() + (test[C.TIMESTAMP].max() - test[C.TIMESTAMP].min()) / 2
    users = sorted(test[C.USER].unique())[::4]
    p = oracle_scores(shop, users, at)
    row = {u: k for k, u in enumerate(users)}
    col = {i: k for k, i in enumerate(shop.items[C.ITEM])}
    t = test[test[C.USER].isin(row)]
    picked = p[t[C.USER].map(row).to_numpy(), t[C.ITEM].map(col).to_numpy()]
    assert np.median(picked) > 10 / len(shop.items)  # a random item scores 1/n on average

    class Oracle(Recommender):
        fallbacks = ("oracle",)

        def __init__(self):
            super().__init__(shop.items, fallback="oracle")

        def score(self, users):
            return oracle_scores(shop, users, at).astype(np.float32)

    log = test[test[C.USER].isin(row)]
    ev = evaluate({"oracle": Oracle(), "EASE": EASE(shop.items)}, split.train, log, shop.items, 10, with_auc=False)
    d = ev.compare("oracle", "EASE", "ndcg", n_boot=200)
    assert d.lo > 0, d


def test_category_word_often_absent_and_colour_named_half_the_time(shop):
    items = shop.items
    literal = [any(w in d.lower() for w in SUBCATEGORIES[s]["literal"]) for d, s in zip(items[C.DESCRIPTION], items[C.SUBCATEGORY])]
    assert 0.15 < np.mean(literal) < 0.45
    named = [c in d for d, c in zip(items[C.DESCRIPTION], items[C.COLOUR])]
    assert 0.4 < np.mean(named) < 0.6


def test_image_shows_the_colour(shop):
    from course_lib.data.shop_catalogue import COLOURS

    hits = 0
    sample = shop.items.sample(60, random_state=0)
    for item_id, colour in zip(sample[C.ITEM], sample[C.COLOUR]):
        px = np.asarray(shop.image(item_id)).reshape(-1, 3).astype(float)
        dist = {c: np.abs(px - np.array(rgb)).sum(axis=1).min() for c, rgb in COLOURS.items()}
        hits += dist[colour] < 12  # the exact item colour appears in the picture
    assert hits == len(sample)


def test_ground_truth_tiers_show_in_the_log(shop):
    truth = shop.truth
    assert truth.groupby(C.USER)[C.TIER].apply(lambda t: (t == "core").sum()).eq(1).all()
    sub_of = shop.items.set_index(C.ITEM)[C.SUBCATEGORY]
    log = shop.interactions.assign(sub=shop.interactions[C.ITEM].map(sub_of))
    start, end = log[C.TIMESTAMP].min(), log[C.TIMESTAMP].max()
    frac = (log[C.TIMESTAMP] - start) / (end - start)
    log = log.assign(frac=frac)
    em = log.merge(truth[truth[C.TIER] == "emerging"][[C.USER, C.INTEREST]], left_on=[C.USER, "sub"],
                   right_on=[C.USER, C.INTEREST])
    # exploration can put an item of that subcategory anywhere, but nearly all events sit in the window
    assert em["frac"].between(0.55, 1.0).mean() > 0.9
    fa = log.merge(truth[truth[C.TIER] == "fading"][[C.USER, C.INTEREST]], left_on=[C.USER, "sub"],
                   right_on=[C.USER, C.INTEREST])
    early, late = (fa["frac"] < 0.25).mean() / 0.25, (fa["frac"] > 0.5).mean() / 0.5  # events per unit of time
    assert early > 2.5 * late and late > 0  # it fades to a floor, not to nothing
    core = truth[truth[C.TIER] == "core"][[C.USER, C.INTEREST]]
    m = log.merge(core, left_on=[C.USER, "sub"], right_on=[C.USER, C.INTEREST], how="left", indicator=True)
    share_core = (m["_merge"] == "both").mean()
    assert 0.3 < share_core < 0.7  # the core is the biggest interest, but no profile is pure


def test_share_outside_interests(shop):
    sub_of = shop.items.set_index(C.ITEM)[C.SUBCATEGORY]
    log = shop.interactions.assign(sub=shop.interactions[C.ITEM].map(sub_of))
    known = shop.truth[[C.USER, C.INTEREST]].rename(columns={C.INTEREST: "sub"}).assign(hit=1)
    m = log.merge(known, on=[C.USER, "sub"], how="left")
    outside = m["hit"].isna().mean()
    assert 0.05 < outside < 0.15  # explore_frac = 0.1, some of it lands inside an interest by chance


def test_loading_a_copy_with_a_broken_reference(tmp_path, shop):
    import shutil

    root = tmp_path / "shop"
    shutil.copytree(shop.root, root, ignore=shutil.ignore_patterns("images"))
    inter = pd.read_csv(root / "interactions.csv")
    inter.loc[5, C.ITEM] = "i9999"
    inter.to_csv(root / "interactions.csv", index=False)
    from course_lib.data import DataError

    with pytest.raises(DataError, match=r"interactions\.csv line 7: item_id \['i9999'\] not found in items"):
        load_shop(root)
