"""The generator oracle: the shop's own probabilities as a recommender, the ceiling beside each verdict."""
import numpy as np
import pytest

from course_lib import constants as C
from course_lib.baselines import EASE, Popularity
from course_lib.data import load_shop, make_split
from course_lib.data.shop import oracle_scores
from course_lib.evaluate import evaluate
from course_lib.oracle import GeneratorOracle


@pytest.fixture(scope="module")
def shop():
    ds = load_shop()
    return ds, make_split(ds.interactions, "global", 0.2)


def test_oracle_scores_are_the_generators_averaged_probabilities(shop):
    ds, split = shop
    users = sorted(split.test[C.USER].unique())[:40]
    o = GeneratorOracle(ds, steps=3).fit(split.train)
    s = o.score(users)
    assert s.shape == (40, len(ds.items)) and np.allclose(s.sum(1), 1, atol=1e-5)  # a distribution per user
    by_hand = sum(oracle_scores(ds, users, t) for t in o.times_) / 3
    assert np.allclose(s, by_hand, atol=1e-6)
    assert o.times_[0] == split.train[C.TIMESTAMP].max() and o.times_[-1] == ds.interactions[C.TIMESTAMP].max()


def test_oracle_is_a_ceiling_no_method_reaches(shop):
    ds, split = shop
    ev = evaluate({"popularity": Popularity(ds.items), "EASE": EASE(ds.items), "oracle": GeneratorOracle(ds)},
                  split.train, split.test, ds.items, 10, with_auc=False)
    for other in ("popularity", "EASE"):
        p = ev.compare("oracle", other, "ndcg", n_boot=200)
        assert p.n > 1000 and p.lo > 0, p  # clearly above, paired over the same users
    new = ev.compare("oracle", "popularity", "ndcg", group="new", n_boot=200)
    assert new.n >= 100 and new.lo > 0  # it knows new users' true interests; popularity does not
    assert ev.fallbacks["oracle"].startswith("truth")


def test_oracle_refuses_data_without_a_generator(shop):
    ds, _ = shop
    from dataclasses import replace
    with pytest.raises(ValueError, match="needs the shop with its ground truth"):
        GeneratorOracle(replace(ds, truth=None))
    with pytest.raises(ValueError, match="steps"):
        GeneratorOracle(ds, steps=0)
