"""Splits on a log small enough to check on paper."""
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.data import leave_last_n, split_by_time, split_per_user


@pytest.fixture()
def log():
    # u1: 5 events (days 1..5), u2: 1 event (day 3), u3: 2 events on the same day (tie), listed out of time order
    rows = [("u1", "a", 5), ("u1", "b", 1), ("u1", "c", 2), ("u1", "d", 3), ("u1", "e", 4),
            ("u2", "a", 3), ("u3", "x", 2), ("u3", "y", 2)]
    return pd.DataFrame({C.USER: [r[0] for r in rows], C.ITEM: [r[1] for r in rows],
                         C.TIMESTAMP: pd.to_datetime([f"2026-01-0{r[2]}" for r in rows])})


def pairs(df):
    return sorted(zip(df[C.USER], df[C.ITEM]))


def test_per_user_takes_the_latest_fraction(log):
    s = split_per_user(log, test_frac=0.4)
    # u1: floor(5*0.4)=2 latest -> e (day 4) and a (day 5); u2: floor(0.4)=0; u3: floor(0.8)=0
    assert pairs(s.test) == [("u1", "a"), ("u1", "e")]
    assert len(s.train) + len(s.test) == len(log)
    assert "u2" in set(s.train[C.USER])  # a single-interaction user stays in train, not made cold


def test_per_user_tie_keeps_file_order(log):
    s = split_per_user(log, test_frac=0.5)
    # u3 has two events at the same time: the later row in the file counts as later
    assert ("u3", "y") in pairs(s.test) and ("u3", "x") in pairs(s.train)


def test_leave_last_one(log):
    s = leave_last_n(log, 1)
    assert pairs(s.test) == [("u1", "a"), ("u3", "y")]  # u2 has only one event: kept in train
    assert pairs(s.train).count(("u2", "a")) == 1


def test_leave_last_n_larger_than_history(log):
    s = leave_last_n(log, 5)
    assert len(s.test) == 0  # nobody has more than 5 events


def test_global_time_cut(log):
    s = split_by_time(log, cut="2026-01-04")
    assert pairs(s.test) == [("u1", "a"), ("u1", "e")]
    assert s.train[C.TIMESTAMP].max() < pd.Timestamp("2026-01-04") <= s.test[C.TIMESTAMP].min()


def test_global_time_fraction(log):
    s = split_by_time(log, test_frac=0.25)
    assert len(s.test) == 2 and s.test[C.TIMESTAMP].min() >= s.train[C.TIMESTAMP].max()


def test_describe_counts(log):
    d = leave_last_n(log, 1).describe()
    assert d.loc["test", "interactions"] == 2 and d.loc["train", "users"] == 3


@pytest.mark.parametrize("call,msg", [
    (lambda df: split_per_user(df, 0), r"test_frac must be in \(0, 1\)"),
    (lambda df: split_per_user(df, 1.5), r"test_frac must be in \(0, 1\)"),
    (lambda df: leave_last_n(df, 0), "n must be a positive integer"),
    (lambda df: split_by_time(df), "give exactly one of"),
    (lambda df: split_by_time(df.drop(columns=[C.TIMESTAMP]), test_frac=0.2), r"missing column\(s\) \['timestamp'\]"),
])
def test_bad_arguments(log, call, msg):
    with pytest.raises(ValueError, match=msg):
        call(log)


def test_on_the_shop_no_future_leaks(shop):
    s = split_per_user(shop.interactions, 0.2)
    last_train = s.train.groupby(C.USER)[C.TIMESTAMP].max()
    first_test = s.test.groupby(C.USER)[C.TIMESTAMP].min()
    common = first_test.index
    assert (last_train.loc[common] <= first_test).all()
    assert len(s.test) == pytest.approx(0.2 * len(shop.interactions), rel=0.1)


def test_fingerprint_names_the_held_out_pairs_not_the_row_order(log):
    from course_lib.data.splits import Split

    s = split_per_user(log, test_frac=0.4)
    fp = s.fingerprint()
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 64
    shuffled = Split(s.train.sample(frac=1, random_state=1), s.test.iloc[::-1])
    assert shuffled.fingerprint() == fp  # same pairs, other order
    repeated = Split(pd.concat([s.train, s.train.iloc[:1]]), s.test)
    assert repeated.fingerprint() == fp  # a repeated event is the same (user, item) pair
    moved = Split(pd.concat([s.train, s.test.iloc[:1]]), s.test.iloc[1:])  # one test event moved into train
    assert moved.fingerprint() != fp
    assert split_per_user(log, test_frac=0.6).fingerprint() != fp
    # the digest is sha256 of the sorted pairs, which a reader can recompute by hand
    import hashlib

    lines = lambda df: "".join(f"{u}\t{i}\n" for u, i in sorted(set(zip(df[C.USER], df[C.ITEM]))))  # noqa: E731
    text = f"train {s.train[[C.USER, C.ITEM]].drop_duplicates().shape[0]}\n" + lines(s.train) + \
        f"test {len(set(zip(s.test[C.USER], s.test[C.ITEM])))}\n" + lines(s.test)
    assert fp == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
