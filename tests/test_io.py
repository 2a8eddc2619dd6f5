"""Bad input files: each gets one DataError naming the file and the fix, never a deep pandas traceback."""
import pytest

from course_lib.data import DataError, load_shop, read_table


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"items\.csv: file not found\. Regenerate"):
        read_table(tmp_path / "items.csv", ["item_id"], fix="Regenerate it.")


def test_empty_file(tmp_path):
    p = tmp_path / "items.csv"
    p.write_text("")
    with pytest.raises(DataError, match=r"items\.csv: file is empty"):
        read_table(p, ["item_id"])


def test_header_only(tmp_path):
    p = tmp_path / "items.csv"
    p.write_text("item_id,title\n")
    with pytest.raises(DataError, match="header but no rows"):
        read_table(p, ["item_id"])


def test_wrong_columns_are_named(tmp_path):
    p = tmp_path / "items.csv"
    p.write_text("id,name\n1,a\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['item_id'\]; found \['id', 'name'\]"):
        read_table(p, ["item_id"])


def test_non_utf8(tmp_path):
    p = tmp_path / "users.csv"
    p.write_bytes("user_id,description\nu1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"users\.csv: not valid utf-8 text.*Save the file as UTF-8"):
        read_table(p, ["user_id"])


def test_corrupt_table(tmp_path):
    p = tmp_path / "interactions.csv"
    p.write_text('user_id,item_id\nu1,i1\nu2,"i2\n')  # unterminated quote
    with pytest.raises(DataError, match=r"interactions\.csv: cannot be parsed"):
        read_table(p, ["user_id"])


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path, ["x"])


def test_missing_shop_folder_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match=r"shop folder not found\. Regenerate it with: python -m course_lib\.data"):
        load_shop(tmp_path / "nope")


def test_bad_timestamp_names_file_and_line(tmp_path, shop):
    import shutil

    root = tmp_path / "shop"
    shutil.copytree(shop.root, root, ignore=shutil.ignore_patterns("images"))
    lines = (root / "interactions.csv").read_text().splitlines()
    parts = lines[3].split(",")
    parts[2] = "yesterday"
    lines[3] = ",".join(parts)
    (root / "interactions.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"interactions\.csv line 4: timestamp 'yesterday' is not a date"):
        load_shop(root)
