"""The non-language-model baselines for new items and new users: TF-IDF content against a hand-written TF-IDF and
scikit-learn's cosine, popularity within a registration group with its declared back-off, and the paired comparison
of registration-based routes for MovieLens new users on a fixture in the official layout."""
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from course_lib import constants as C
from course_lib.baselines import Popularity, clone
from course_lib.coldstart import registration_comparison
from course_lib.data import load_movielens_100k, make_split
from course_lib.demographic import DemographicPopularity, age_band
from course_lib.evaluate import evaluate
from course_lib.tfidf import TfidfContent

from ml_like import write_movielens_like

TEXTS = ["red running shoes", "blue running jacket", "red wool scarf", "coffee beans dark roast"]
ITEMS = pd.DataFrame({C.ITEM: list("abcd"), C.TEXT: TEXTS})


def log(pairs, days=None):
    days = days or list(range(1, len(pairs) + 1))
    return pd.DataFrame({C.USER: [p[0] for p in pairs], C.ITEM: [p[1] for p in pairs],
                         C.TIMESTAMP: pd.to_datetime([f"2026-01-{d:02d}" for d in days]), C.WEIGHT: 1.0})


def hand_tfidf(docs, queries=()):
    """TF-IDF as scikit-learn defines it by default, written out: raw counts × (ln((1 + n) / (1 + df)) + 1), rows
    scaled to unit length; queries use the documents' vocabulary and IDF."""
    toks = [d.lower().split() for d in docs]
    vocab = sorted({w for t in toks for w in t})
    df = Counter(w for t in toks for w in set(t))
    idf = {w: math.log((1 + len(docs)) / (1 + df[w])) + 1 for w in vocab}

    def vec(t):
        c = Counter(w for w in t if w in idf)
        v = np.array([c[w] * idf[w] for w in vocab])
        n = np.linalg.norm(v)
        return v / n if n else v

    return np.stack([vec(t) for t in toks]), np.stack([vec(q.lower().split()) for q in queries]) if queries else None


# ---- TF-IDF ---------------------------------------------------------------------------------------------------
def test_tfidf_scores_match_a_hand_written_tfidf_and_sklearn_cosine():
    train = log([("u1", "a"), ("u1", "c"), ("u2", "d"), ("u3", "a"), ("u3", "b")])
    desc = {"new1": "I want a warm wool jacket", "new2": "I am new to this platform.", "new3": ""}
    m = TfidfContent(ITEMS, descriptions=desc, stop_words=None).fit(train)
    X, Q = hand_tfidf(TEXTS, ["i want a warm wool jacket"])
    assert m.vocabulary == sorted({w for t in TEXTS for w in t.split()})
    np.testing.assert_allclose(m.item_vecs, X, atol=1e-6)
    # a returning user: the mean of their history's vectors, scored by cosine (sklearn's, on the hand-made vectors)
    profile = X[[0, 2]].mean(0, keepdims=True)
    np.testing.assert_allclose(m.score(["u1"]), cosine_similarity(profile, X), atol=1e-6)
    # a new user: their own words through the items' vocabulary
    np.testing.assert_allclose(m.score(["new1"]), cosine_similarity(Q, X), atol=1e-6)
    s = m.score(["new1"])[0]
    assert s[1] == pytest.approx(s[2]) and s[1] > 0 == s[0] == s[3]  # "jacket" and "wool": one item each, alike
    # nothing indexed in their words, or nothing written: popularity, declared, never a constant row
    pop = m.popularity_ / m.popularity_.max()
    for u in ("new2", "new3", "stranger"):
        np.testing.assert_allclose(m.score([u])[0], pop)
        assert m.new_user_source(u) == "popularity"
    assert m.new_user_source("new1") == "description"
    assert m.served_by(["u1", "new1", "new2"]).tolist() == ["history", "description", "popularity"]
    assert m.fallback_label == "description (TF-IDF of their words), else popularity"
    assert TfidfContent(ITEMS, fallback="popularity").fallback_label == "popularity"


def test_tfidf_half_life_weights_recent_history_more():
    train = log([("u", "a"), ("u", "d")], days=[1, 11])
    m = TfidfContent(ITEMS, half_life_days=10.0, stop_words=None).fit(train)
    X, _ = hand_tfidf(TEXTS)
    profile = (0.5 * X[0] + 1.0 * X[3])[None] / 1.5  # a is 10 days older than d: half the weight
    np.testing.assert_allclose(m.score(["u"]), cosine_similarity(profile, X), atol=1e-6)
    assert m.score(["u"])[0, 3] > m.score(["u"])[0, 0]


def test_tfidf_stop_words_and_a_wordless_history():
    items = pd.DataFrame({C.ITEM: list("abc"), C.TEXT: ["the red shoes", "and of the", "blue shoes"]})
    m = TfidfContent(items, descriptions={"n": "the"}).fit(log([("w", "b"), ("x", "a"), ("y", "a")]))
    assert "the" not in m.vocabulary and not m.item_vecs[1].any()
    assert "n" not in m.user_vecs  # "the" is a stop word: nothing left to match
    # w's only item has no indexed word: w gets the popularity row, not a constant one
    ev = evaluate({"tfidf": m}, log([("w", "b"), ("x", "a"), ("y", "a")]), log([("w", "c"), ("w", "a")]), items, 2,
                  with_auc=False)
    assert ev.constant_rows["tfidf"] == 0
    np.testing.assert_allclose(m.score(["w"])[0], m.popularity_ / m.popularity_.max())
    assert m.served_by(["w", "x"]).tolist() == ["popularity", "history"]


def test_tfidf_bad_input_and_protocol():
    with pytest.raises(ValueError, match=r"stop_words must be one of \('english', None\), got 'french'"):
        TfidfContent(ITEMS, stop_words="french")
    with pytest.raises(ValueError, match="min_df must be >= 1, got 0"):
        TfidfContent(ITEMS, min_df=0)
    with pytest.raises(ValueError, match="lower min_df"):
        TfidfContent(ITEMS, min_df=5)
    with pytest.raises(ValueError, match=r"reads the item text column 'text'.*Catalogue.from_items\(ds.items\)"):
        TfidfContent(ITEMS[[C.ITEM]])
    with pytest.raises(ValueError, match="descriptions is a table without column"):
        TfidfContent(ITEMS, descriptions=pd.DataFrame({C.USER: ["u"]}))
    with pytest.raises(TypeError, match=r"descriptions\['u'\] is 3"):
        TfidfContent(ITEMS, descriptions={"u": 3})
    with pytest.raises(ValueError, match="fallback must be one of"):
        TfidfContent(ITEMS, fallback="parts")
    m = TfidfContent(ITEMS, descriptions={"n": "red shoes"}, half_life_days=5.0, min_df=1)
    again = TfidfContent(**m.get_params())
    np.testing.assert_array_equal(again.item_vecs, m.item_vecs)
    fitted = m.fit(log([("u", "a")]))
    c = clone(fitted)
    assert not hasattr(c, "profiles_") and c.get_params()["half_life_days"] == 5.0
    np.testing.assert_array_equal(c.fit(log([("u", "a")])).score(["u", "n"]), fitted.score(["u", "n"]))


# ---- registration groups ----------------------------------------------------------------------------------------
def test_age_bands_are_movielens_1m_bands():
    assert age_band([1, 17, 18, 24, 25, 44, 45, 49, 50, 55, 56, 73]).tolist() == [
        "<18", "<18", "18-24", "18-24", "25-34", "35-44", "45-49", "45-49", "50-55", "50-55", "56+", "56+"]
    assert age_band([None, "x"]).isna().all()


def _registered():
    """Ten 25-34 engineers who like a, four 25-34 writers who like b, three 60-year-old artists who like c."""
    users = pd.DataFrame({C.USER: [f"e{i}" for i in range(10)] + [f"w{i}" for i in range(4)] + ["o0", "o1", "o2"]
                          + ["new_e", "new_w", "new_o", "new_x"],
                          "age": [30] * 14 + [60] * 3 + [27, 33, 61, np.nan],
                          "occupation": ["engineer"] * 10 + ["writer"] * 4 + ["artist"] * 3
                          + ["engineer", "writer", "artist", "engineer"]})
    pairs = ([(f"e{i}", "a") for i in range(10)] + [(f"w{i}", "b") for i in range(4)] + [("w0", "c")]
             + [(f"o{i}", "c") for i in range(3)] + [("o0", "d")])
    return users, log(pairs, days=[1 + i % 28 for i in range(len(pairs))])


def test_demographic_popularity_counts_the_group_and_backs_off_as_declared():
    users, train = _registered()
    items = pd.DataFrame({C.ITEM: list("abcde")})
    m = DemographicPopularity(items, users, min_users=5).fit(train)
    # new_e: 25-34 × engineer has 10 training users -> their counts; new_w: 25-34 × writer has 4 < 5 -> the 25-34
    # band (14 users); new_o: 56+ × artist and 56+ have 3 -> popularity; new_x: no age -> popularity
    assert m.served_by(["new_e", "new_w", "new_o", "new_x", "ghost"]).tolist() == [
        "age × occupation = ('25-34', 'engineer')", "age = ('25-34',)", "popularity", "popularity", "popularity"]
    assert m.level_of(["new_e", "new_w", "new_o"]).tolist() == ["age × occupation", "age", "popularity"]
    glob = np.array([10, 4, 4, 1, 0], dtype=float)  # distinct training users per item
    tie = glob / (glob.max() + 1)
    s = m.score(["new_e", "new_w", "new_o", "new_x"])
    np.testing.assert_allclose(s[0], np.array([10, 0, 0, 0, 0]) + tie, rtol=1e-6)
    np.testing.assert_allclose(s[1], np.array([10, 4, 1, 0, 0]) + tie, rtol=1e-6)
    np.testing.assert_allclose(s[2], glob + tie, rtol=1e-6)
    np.testing.assert_allclose(s[3], glob + tie, rtol=1e-6)
    # ties inside the group follow global popularity (b, c tie in 25-34 × engineer; b and c have 4 users each: id)
    assert m.recommend(["new_e"], 4, exclude=None).tolist() == [[0, 1, 2, 3]]
    # with min_users=3 the 56+ artists count too; with min_users=11 nobody's group does
    assert m.__class__(items, users, min_users=3).fit(train).served_by(["new_o"]).iloc[0].startswith("age × occ")
    assert (DemographicPopularity(items, users, min_users=11).fit(train).level_of(["new_e"]) == "age").all()
    assert (DemographicPopularity(items, users, min_users=15).fit(train).level_of(["new_e"]) == "popularity").all()
    ev = evaluate({"demographic": m, "popularity": Popularity(items)}, train,
                  log([("new_e", "b"), ("new_w", "c"), ("new_o", "a")]), items, 2, with_auc=False)
    assert ev.fallbacks["demographic"].endswith("else popularity") and ev.constant_rows["demographic"] == 0


def test_demographic_popularity_refuses_a_dataset_without_registration_data():
    shop_like = pd.DataFrame({C.USER: ["u1"], C.DESCRIPTION: ["I like tea."]})
    with pytest.raises(ValueError, match=r"no registration column 'age' .*found \['user_id', 'description'\]"):
        DemographicPopularity(ITEMS, shop_like)
    users, _ = _registered()
    with pytest.raises(ValueError, match="no registration column 'zip'"):
        DemographicPopularity(ITEMS, users, levels=[("zip",)])
    with pytest.raises(TypeError, match="users must be a pandas DataFrame"):
        DemographicPopularity(ITEMS, {"u": 1})
    with pytest.raises(ValueError, match="min_users must be >= 1, got 0"):
        DemographicPopularity(ITEMS, users, min_users=0)
    with pytest.raises(ValueError, match="age_bands must be increasing whole ages"):
        DemographicPopularity(ITEMS, users, age_bands=(30, 20))
    with pytest.raises(TypeError, match="levels must be a list of tuples of column names, got one str"):
        DemographicPopularity(ITEMS, users, levels="age")
    c = clone(DemographicPopularity(ITEMS, users, levels=[("occupation",)], min_users=2))
    assert c.get_params()["levels"] == (("occupation",),) and c.get_params()["min_users"] == 2


# ---- MovieLens new users: registration data against popularity, paired --------------------------------------------
@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    return load_movielens_100k(write_movielens_like(tmp_path_factory.mktemp("ml") / "ml-100k"))


def test_registration_routes_for_movielens_new_users_are_paired_against_popularity(ml):
    rng = np.random.default_rng(0)
    item_vecs = rng.normal(size=(len(ml.items), 8)).astype(np.float32)  # stands in for an encoder's vectors
    desc_vecs = {u: rng.normal(size=8).astype(np.float32) for u in ml.users[C.USER]}
    table, ev = registration_comparison(ml, min_users=10, item_vecs=item_vecs, description_vecs=desc_vecs,
                                        n_boot=200, per_user=True)
    split = make_split(ml.interactions, "global", 0.2)
    new = set(split.test[C.USER]) - set(split.train[C.USER])
    assert ev.users["new"] == len(new) >= 30 and ev.users["returning"] == 0
    assert list(table.index) == ["demographic popularity", "TF-IDF description", "LM description"]
    assert (table["users"] == len(new)).all()
    assert np.isfinite(table[["difference", "lo", "hi"]].to_numpy()).all()
    for m in table.index:
        p = ev.compare(m, "popularity", group="new", n_boot=200)
        assert p.n == len(new) and np.isfinite([p.lo, p.hi]).all() and p.lo <= p.diff <= p.hi
        assert p.diff == pytest.approx(table.loc[m, "difference"])
    # every new user has a u.user row, so each is served by a group or falls back, as the table says
    levels = ev.models["demographic popularity"].level_of(ev.lists["popularity"][0]).value_counts()
    assert sum(int(n) for n in levels) == len(new)
    assert table.loc["demographic popularity", "new users served by"] == ", ".join(
        f"{k}: {v}" for k, v in levels.sort_index().items())
    # the description route reads the u.user sentence ("A 24-year-old man working as technician.")
    tf = ev.models["TF-IDF description"]
    assert tf.descriptions[ml.users[C.USER].iloc[0]] == ml.users[C.DESCRIPTION].iloc[0]
    assert "description" in table.loc["TF-IDF description", "new users served by"]
    u = sorted(new)[0]
    q = tf.vectorizer.transform([tf.descriptions[u]])
    np.testing.assert_allclose(tf.score([u])[0], cosine_similarity(q, tf.vectorizer.transform(ml.items[C.TEXT]))[0],
                               atol=1e-6)
    assert table.loc["LM description", "new users served by"] == f"description: {len(new)}"


def test_registration_comparison_bad_input(ml):
    with pytest.raises(ValueError, match=r"split must be one of \('global',\), got 'per-user'"):
        registration_comparison(ml, split="per-user")
    with pytest.raises(ValueError, match="give both item_vecs and description_vecs"):
        registration_comparison(ml, item_vecs=np.zeros((len(ml.items), 2)))
    with pytest.raises(TypeError, match="ds must be a course_lib Dataset"):
        registration_comparison(ml.users)
    with pytest.raises(ValueError, match="metric must be one of"):
        registration_comparison(ml, metric="ndgc")
