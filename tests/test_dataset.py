"""Dataset validation on hand-made tables: duplicate ids, unknown references, missing columns, bad weights."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.data import DataError, Dataset, parse_timestamps


def tables():
    items = pd.DataFrame({C.ITEM: ["a", "b", "c"], C.TITLE: ["A", "B", "C"], C.CATEGORY: ["x", "x", "y"],
                          C.DESCRIPTION: ["aa", "bb", "cc"]})
    users = pd.DataFrame({C.USER: ["u1", "u2"]})
    inter = pd.DataFrame({C.USER: ["u1", "u1", "u2"], C.ITEM: ["a", "b", "a"],
                          C.TIMESTAMP: pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"])})
    return items, users, inter


def test_valid_dataset_gains_text_weight_and_cold_lists():
    items, users, inter = tables()
    users = pd.concat([users, pd.DataFrame({C.USER: ["u3"]})], ignore_index=True)
    ds = Dataset("toy", items, users, inter)
    assert ds.items[C.TEXT].tolist() == ["A. aa", "B. bb", "C. cc"]
    assert ds.interactions[C.WEIGHT].tolist() == [1.0, 1.0, 1.0]
    assert ds.cold_users() == ["u3"]
    assert ds.cold_items() == ["c"]
    assert not ds.has_images


def test_duplicate_item_ids_named_with_row():
    items, users, inter = tables()
    items.loc[2, C.ITEM] = "a"
    with pytest.raises(DataError, match=r"items row 2: duplicate item_id \['a'\]"):
        Dataset("toy", items, users, inter)


def test_duplicate_ids_named_with_file_line():
    items, users, inter = tables()
    users = pd.DataFrame({C.USER: ["u1", "u2", "u2"]})
    users.attrs.update(source="users.csv", line_offset=2)
    with pytest.raises(DataError, match=r"users\.csv line 4: duplicate user_id \['u2'\]"):
        Dataset("toy", items, users, inter)


def test_unknown_item_in_interactions():
    items, users, inter = tables()
    inter.loc[1, C.ITEM] = "zzz"
    with pytest.raises(DataError, match=r"interactions row 1: item_id \['zzz'\] not found in items"):
        Dataset("toy", items, users, inter)


def test_unknown_user_in_interactions():
    items, users, inter = tables()
    inter.loc[2, C.USER] = "ghost"
    with pytest.raises(DataError, match=r"interactions row 2: user_id \['ghost'\] not found in users"):
        Dataset("toy", items, users, inter)


def test_missing_column():
    items, users, inter = tables()
    with pytest.raises(DataError, match=r"missing column\(s\) \['description'\]"):
        Dataset("toy", items.drop(columns=[C.DESCRIPTION]), users, inter)


def test_empty_required_value():
    items, users, inter = tables()
    items.loc[1, C.TITLE] = np.nan
    with pytest.raises(DataError, match=r"items row 1: empty value in required column 'title'"):
        Dataset("toy", items, users, inter)


def test_timestamps_must_be_parsed():
    items, users, inter = tables()
    inter[C.TIMESTAMP] = ["2026-01-01"] * 3
    with pytest.raises(DataError, match="must be datetimes.*parse_timestamps"):
        Dataset("toy", items, users, inter)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_or_nan_weight(bad):
    items, users, inter = tables()
    inter[C.WEIGHT] = [1.0, bad, 1.0]
    with pytest.raises(DataError, match=r"interactions row 1: 'weight' must be a positive number"):
        Dataset("toy", items, users, inter)


def test_parse_timestamps_iso_and_unix():
    iso = parse_timestamps(pd.DataFrame({C.TIMESTAMP: ["2026-05-01T12:00:00", "2026-05-02"]}))
    unix = parse_timestamps(pd.DataFrame({C.TIMESTAMP: [0, 86400]}))
    assert iso.iloc[0] == pd.Timestamp("2026-05-01 12:00")
    assert unix.iloc[1] == pd.Timestamp("1970-01-02")


def test_image_errors_name_the_item(tmp_path, shop):
    items = shop.items.head(2).copy()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bad.png").write_bytes(b"not a png")
    items[C.IMAGE] = ["images/missing.png", "images/bad.png"]
    inter = shop.interactions[shop.interactions[C.ITEM].isin(items[C.ITEM])]
    users = shop.users[shop.users[C.USER].isin(inter[C.USER])]
    ds = Dataset("t", items.drop(columns=[C.TEXT]), users, inter.copy(), root=tmp_path)
    first, second = items[C.ITEM].tolist()
    with pytest.raises(DataError, match=rf"item '{first}': image file .*missing\.png not found"):
        ds.image(first)
    with pytest.raises(DataError, match=rf"item '{second}': image file .*bad\.png is corrupt"):
        ds.image(second)
