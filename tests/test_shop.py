"""The committed shop is what the seeded generator makes, and it has the structure the course relies on."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from course_lib import constants as C
from course_lib.data import load_shop
from course_lib.data.shop import FILES, ShopConfig, generate, write
from course_lib.data.shop_catalogue import SUBCATEGORIES


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
    assert len(shop.items) == 1200 and len(shop.users) == 1200
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
    assert len(cold_users) == 60
    described = shop.users.set_index(C.USER).loc[cold_users, C.DESCRIPTION]
    assert (described.str.len() > 0).all()  # cold users always describe themselves
    assert len(shop.cold_items()) >= 60
    assert shop.items.set_index(C.ITEM).loc[shop.cold_items(), C.IMAGE].str.len().gt(0).all()


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
    for tier, lo, hi in (("emerging", 0.55, 1.0), ("fading", 0.0, 0.5)):
        t = truth[truth[C.TIER] == tier][[C.USER, C.INTEREST]]
        m = log.merge(t, left_on=[C.USER, "sub"], right_on=[C.USER, C.INTEREST])
        # exploration can put an item of that subcategory anywhere, but nearly all events sit in the window
        assert m["frac"].between(lo, hi).mean() > 0.9, tier
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
    assert 0.08 < outside < 0.2


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
