"""MovieLens-100k loader on a tiny fixture written in the official GroupLens format."""
import hashlib
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.data import DataError, load_dataset, load_movielens_100k
from course_lib.data import movielens

FIXTURE = Path(__file__).parent / "fixtures" / "ml-100k-tiny"


def test_loads_the_official_layout():
    ds = load_movielens_100k(FIXTURE)
    assert ds.name == "movielens-100k"
    assert len(ds.items) == 4 and len(ds.users) == 3 and len(ds.interactions) == 5
    text = ds.items.set_index(C.ITEM)[C.TEXT]
    assert text["1"] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert text["3"] == "Cité des enfants perdus, La (1995). Genres: Drama, Sci-Fi"  # latin-1 decoded
    assert ds.items.set_index(C.ITEM).loc["2", C.CATEGORY] == "Action"
    assert ds.interactions[C.WEIGHT].tolist() == [5.0, 3.0, 4.0, 1.0, 2.0]
    assert ds.interactions[C.TIMESTAMP].iloc[0] == pd.Timestamp(874965758, unit="s")
    assert ds.users.set_index(C.USER).loc["2", C.DESCRIPTION] == "A 53-year-old woman working as other."
    assert ds.cold_items() == ["4"]
    assert not ds.has_images and "no item images" in ds.notes["images"]


def test_accepts_the_parent_folder_of_the_zip_layout(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "ml-100k")
    assert len(load_movielens_100k(tmp_path).items) == 4
    assert len(load_dataset("movielens-100k", tmp_path).users) == 3


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DataError, match=r"files \['u.data', 'u.item', 'u.user'\] not found.*download=True"):
        load_movielens_100k(tmp_path)


def test_unknown_item_in_ratings_is_reported(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    with open(tmp_path / "u.data", "a") as f:
        f.write("1\t99\t4\t889237455\n")
    with pytest.raises(DataError, match=r"u\.data line 6: item_id \['99'\] not found in items"):
        load_movielens_100k(tmp_path)


def test_bad_rating(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    (tmp_path / "u.data").write_text("1\t1\t9\t874965758\n")
    with pytest.raises(DataError, match="ratings must be numbers from 1 to 5"):
        load_movielens_100k(tmp_path)


def _zip_of_fixture(tmp_path) -> Path:
    z = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in FIXTURE.iterdir():
            zf.write(f, f"ml-100k/{f.name}")
    return z


def test_download_verifies_checksum_and_unpacks(tmp_path, monkeypatch):
    z = _zip_of_fixture(tmp_path)
    good = hashlib.md5(z.read_bytes()).hexdigest()
    monkeypatch.setattr(movielens, "URL", z.as_uri())
    monkeypatch.setattr(movielens, "MD5", good)
    dest = tmp_path / "data"
    ds = movielens.load_movielens_100k(dest, download=True)
    assert len(ds.items) == 4 and (dest / "ml-100k" / "u.data").exists()


def test_download_with_wrong_checksum_fails_and_leaves_nothing(tmp_path, monkeypatch):
    z = _zip_of_fixture(tmp_path)
    dest = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch"):
        movielens.download(dest, url=z.as_uri(), md5="0" * 32)
    assert not (dest / "ml-100k").exists()


def test_unknown_dataset_name_lists_choices():
    with pytest.raises(ValueError, match=r"dataset must be one of \('shop', 'movielens-100k'\)"):
        load_dataset("netflix")
