"""The recommender protocol as scikit-learn users know it: get_params / clone (an unfitted copy; fitting it never
touches the original), evaluate fitting copies (never the caller's objects) and refusing a method built on other item ids, and the
cold-start blend as a recommender that evaluate scores (checked against profiles.blend_profiles + rank.top_k)."""
import numpy as np
import pytest

from course_lib import constants as C
from course_lib.baselines import EASE, Content, Hybrid, ItemKNN, Popularity, RandomRec, clone, item_popularity
from course_lib.catalogue import Catalogue
from course_lib.coldstart import Blend
from course_lib.data import make_split
from course_lib.demographic import DemographicPopularity
from course_lib.evaluate import evaluate
from course_lib.profiles import blend_profiles, history_profiles
from course_lib.rank import tie_order, top_k, top_k_scores
from course_lib.serving import MultiInterest, SlotPolicy
from course_lib.tfidf import TfidfContent


@pytest.fixture(scope="module")
def setup(shop):
    rng = np.random.default_rng(0)
    sub = shop.items[C.SUBCATEGORY].astype("category").cat.codes.to_numpy()
    vecs = np.eye(sub.max() + 1)[sub] + 0.3 * rng.normal(size=(len(sub), sub.max() + 1))
    cat = Catalogue.from_items(shop.items, vecs.astype(np.float32))
    split = make_split(shop.interactions, "global", 0.2)
    desc = {u: vecs[k % len(vecs)].astype(np.float32) for k, u in enumerate(shop.users[C.USER])}
    return cat, split, desc


def makers(cat, desc, users=None):
    out = {"random": RandomRec(cat, seed=3), "popularity": Popularity(cat), "item-kNN": ItemKNN(cat, neighbours=20),
           "EASE": EASE(cat, lam=50.0), "content": Content(cat, half_life_days=30, user_vecs=desc),
           "hybrid": Hybrid(cat, Content(cat), EASE(cat), 0.3),
           "multi-interest": MultiInterest(cat, k=10, policy=SlotPolicy(), fallback=Content(cat, user_vecs=desc)),
           "blend": Blend(cat, user_vecs=desc, blend_k=4.0)}
    if users is not None:  # the shop's users, with made-up registration data for the demographic method
        registered = users.assign(age=[18 + k % 50 for k in range(len(users))],
                                  occupation=[("student", "engineer", "artist")[k % 3] for k in range(len(users))])
        out["TF-IDF"] = TfidfContent(cat, descriptions=users, half_life_days=30, min_df=2)
        out["demographic"] = DemographicPopularity(cat, registered, min_users=15)
    return out


def test_get_params_gives_the_constructor_arguments(setup, shop):
    cat, _, desc = setup
    for name, model in makers(cat, desc, shop.users).items():
        params = model.get_params()
        again = type(model)(**params)  # the parameters rebuild an equal model
        assert again.get_params().keys() == params.keys(), name
        for k, v in params.items():
            w = again.get_params()[k]
            if isinstance(v, (int, float, str, type(None))):
                assert w == v, (name, k)
    assert EASE(cat, lam=7.0).get_params() == {"catalogue": EASE(cat).catalogue, "lam": 7.0, "fallback": "popularity"}
    deep = makers(cat, desc)["hybrid"].get_params(deep=True)
    assert deep["weight"] == 0.3 and deep["collaborative__lam"] == 200.0


def test_a_clone_is_unfitted_and_fitting_it_leaves_the_original_alone(setup, shop):
    cat, split, desc = setup
    for name, model in makers(cat, desc, shop.users).items():
        model.fit(split.train)
        before = {k: id(v) for k, v in vars(model).items()}
        copy = clone(model)
        assert not [k for k in vars(copy) if k.endswith("_")], name  # no fitted state
        with pytest.raises(RuntimeError, match="not fitted"):
            copy.score([split.train[C.USER].iloc[0]])
        copy.fit(split.test)  # another log: the original must not see it
        assert {k: id(v) for k, v in vars(model).items()} == before, name
        users = sorted(set(split.test[C.USER]))[:5]
        assert copy.score(users).shape == (5, len(cat))
    with pytest.raises(TypeError, match="clone\\(\\) needs a recommender"):
        clone("EASE")


def test_evaluate_fits_copies_and_they_give_the_callers_lists(setup):
    """evaluate never fits the caller's objects (scikit-learn's habit); ev.models holds the fitted copies, and they
    rank exactly the lists evaluate scored, and what the caller gets by fitting its own object."""
    cat, split, desc = setup
    given = {"EASE": EASE(cat), "hybrid": Hybrid(cat, Content(cat, user_vecs=desc), EASE(cat), 0.5)}
    ev = evaluate(given, split.train, split.test, cat, k=10)
    assert all(not hasattr(m, "users_") for m in given.values())  # the caller's objects were not fitted
    assert not hasattr(given["hybrid"].content, "users_") and not hasattr(given["hybrid"].collaborative, "users_")
    for name in given:
        fitted = ev.models[name]
        assert fitted is not given[name] and hasattr(fitted, "users_")
        users, idx = ev.lists[name]
        seen = split.train.groupby(C.USER)[C.ITEM].agg(set)
        hide = [sorted(cat.row[i] for i in seen.get(u, ())) for u in users]
        order = tie_order(item_popularity(split.train, cat), cat)
        _, mine = top_k_scores(fitted.score(users), 10, exclude=hide, tiebreak=order)
        np.testing.assert_array_equal(mine, idx)  # ev.models[name] gives the very lists evaluate scored
        own = clone(given[name]).fit(split.train)  # the caller fitting its own copy gets the same scores
        np.testing.assert_array_equal(own.score(users[:20]), fitted.score(users[:20]))
    again = evaluate(given, split.train, split.test, cat, k=10)  # the untouched objects evaluate the same again
    assert again.per_user.equals(ev.per_user)


def test_evaluate_refuses_a_method_built_on_other_item_ids(setup, shop):
    cat, split, _ = setup
    reordered = Catalogue.from_items(shop.items.iloc[::-1])
    with pytest.raises(ValueError, match=r"method 'EASE' ranks other item ids than evaluate's catalogue \(row 0: "):
        evaluate({"EASE": EASE(reordered)}, split.train, split.test, cat)
    fewer = Catalogue.from_items(shop.items.iloc[:-1])
    with pytest.raises(ValueError, match=r"ranks other item ids .*1799 vs 1800 items"):
        evaluate({"pop": Popularity(fewer)}, split.train, split.test, cat)


def test_the_blend_ranks_like_the_cold_start_recipe(setup):
    """Blend.recommend equals the recipe of coldstart.new_user_curve written out: blend_profiles of the history mean
    and the description, w = n / (n + k), then cosine top-k with seen items hidden."""
    from course_lib.vectors import unit_rows

    cat, split, desc = setup
    cat = cat.with_vectors(unit_rows(cat.vectors))  # unit item vectors, as the encoders give (Content's space)
    model = Blend(cat, user_vecs=desc, blend_k=4.0).fit(split.train)
    users = [u for u in split.train[C.USER].unique() if u in desc][:40]
    hist, _ = history_profiles(split.train, cat, users=users)
    n = split.train[C.USER].value_counts().reindex(users).to_numpy()
    prof = blend_profiles(hist, np.stack([desc[u] for u in users]), n, 4.0)
    _, expected = top_k(prof, cat.vectors, 10, exclude=model.seen(users))
    np.testing.assert_array_equal(model.recommend(users, 10), expected)
    assert Blend(cat, user_vecs=desc).fit(split.train).new_user_source("nobody") == "popularity"
    with pytest.raises(ValueError, match="blend_k must be > 0"):
        Blend(cat, blend_k=0)


def test_evaluate_scores_the_blend_like_any_method(setup):
    cat, split, desc = setup
    ev = evaluate({"popularity": Popularity(cat), "blend": Blend(cat, user_vecs=desc)}, split.train, split.test, cat)
    assert ev.fallbacks["blend"] == "description" and set(ev.methods) == {"popularity", "blend"}
    assert ev.per_user.groupby("method")["ndcg"].mean().notna().all()
