"""The bag-of-words baseline: the content recommender with TF-IDF item vectors instead of a language model's.

Not a new ranking rule: :class:`TfidfContent` is :class:`~course_lib.baselines.Content` (profile = the time-decayed
mean of the history's item vectors, scored by cosine) over scikit-learn's ``TfidfVectorizer`` vectors of the item text
the language model reads (``items.text``: title + description). It is the baseline a language model must beat on new
items and on cold users' own words.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import Content, Recommender
from .catalogue import Catalogue
from .checks import boolean, choice, integer, mapping
from .vectors import unit_rows

STOP_WORDS = ("english", None)  # scikit-learn's English list, or keep every word


def tfidf_vectorizer(stop_words: str | None = "english", min_df: int = 1, sublinear_tf: bool = False):
    """The vectorizer every TF-IDF space here uses (``sklearn.feature_extraction.text.TfidfVectorizer``): lower-cased
    words of 2+ letters or digits, smoothed IDF, rows of unit length."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(stop_words=stop_words, min_df=min_df, sublinear_tf=sublinear_tf, dtype=np.float32)


def _descriptions(descriptions) -> dict:
    """``user -> text`` from a users table (``user_id``, ``description``) or a dict; empty texts are dropped."""
    if descriptions is None:
        return {}
    if isinstance(descriptions, pd.DataFrame):
        missing = [c for c in (C.USER, C.DESCRIPTION) if c not in descriptions.columns]
        if missing:
            raise ValueError(f"descriptions is a table without column(s) {missing} (found "
                             f"{list(descriptions.columns)}); pass the users table (ds.users) or a dict user_id -> text")
        descriptions = dict(zip(descriptions[C.USER], descriptions[C.DESCRIPTION]))
    out = mapping("descriptions", descriptions, allow_empty=True, what="user_id -> text",
                  fix="pass the users table (ds.users) or a dict user_id -> text")
    bad = [u for u, t in out.items() if not (isinstance(t, str) or t is None or (isinstance(t, float) and t != t))]
    if bad:
        raise TypeError(f"descriptions[{bad[0]!r}] is {out[bad[0]]!r} ({type(out[bad[0]]).__name__}), not a text; "
                        "give each user's self-description as a string ('' or None when they wrote nothing)")
    return {u: t for u, t in out.items() if isinstance(t, str) and t.strip()}


class TfidfContent(Content):
    """Content-based ranking over TF-IDF vectors of the item text (the non-language-model text baseline).

    - Item vectors: ``TfidfVectorizer`` fitted on the catalogue's ``text`` column (every item, launched or not: item
      text is known at launch; no interaction is read), rows of unit length.
    - A returning user: the (``half_life_days``-decayed, event-weighted) mean of their history's item vectors,
      scored by cosine with every item, exactly as :class:`~course_lib.baselines.Content`.
    - A new user (no history), ``fallback="description"``: their self-description (``descriptions``: the users table
      or a dict ``user_id -> text``) through the same vectorizer, scored by cosine. A user who wrote nothing, or whose
      words are all unknown to the catalogue's vocabulary (e.g. "I am new to this platform." once stop words go),
      gets popularity, declared (:meth:`new_user_source` says which). ``"popularity"``: every new user gets the popular
      list; ``None``: nothing (``evaluate`` then refuses those users).
    - A returning user whose history items have no word in the vocabulary gets the new-user popularity row, never a
      constant row. Items that share no word with a profile score 0 and follow the kit's tie rule (training
      popularity, then item id), as every method's ties do.

    Parameters of the vectorizer: ``stop_words`` ("english" or None), ``min_df`` (a word must occur in that many
    items), ``sublinear_tf`` (1 + log tf). The vocabulary is :attr:`vocabulary`.
    """

    name = "TF-IDF"

    def __init__(self, catalogue, descriptions=None, half_life_days: float | None = None, fallback="description",
                 stop_words: str | None = "english", min_df: int = 1, sublinear_tf: bool = False):
        cat = Catalogue.from_items(catalogue)
        if cat.items is None or C.TEXT not in cat.items.columns:
            found = "no item table" if cat.items is None else f"columns {list(cat.items.columns)}"
            raise ValueError(f"TfidfContent reads the item text column {C.TEXT!r}, but the catalogue has {found}; "
                             "build it from the dataset's items: Catalogue.from_items(ds.items)")
        self.stop_words = choice("stop_words", stop_words, STOP_WORDS)
        self.min_df = integer("min_df", min_df, min=1)
        self.sublinear_tf = boolean("sublinear_tf", sublinear_tf)
        self.descriptions = _descriptions(descriptions)
        texts = cat.items[C.TEXT].fillna("").astype(str).tolist()
        vec = tfidf_vectorizer(self.stop_words, self.min_df, self.sublinear_tf)
        try:
            items = vec.fit_transform(texts)
        except ValueError as e:  # an empty vocabulary: every text is empty or stop words, or min_df too high
            raise ValueError(f"TfidfContent: no word of the item texts is left to index ({e}); lower min_df "
                             f"(got {self.min_df}) or use stop_words=None") from None
        self.vectorizer = vec
        users = list(self.descriptions)
        user_vecs = {}
        if users:
            q = vec.transform([self.descriptions[u] for u in users])
            has_words = np.diff(q.indptr) > 0  # a description sharing no word with the catalogue: popularity instead
            dense = q.toarray()
            user_vecs = {u: dense[k] for k, u in enumerate(users) if has_words[k]}
        super().__init__(cat.with_vectors(items.toarray()), half_life_days=half_life_days, user_vecs=user_vecs,
                         fallback=fallback)

    @property
    def vocabulary(self) -> list[str]:
        """The indexed words, in column order."""
        return self.vectorizer.get_feature_names_out().tolist()

    def get_params(self, deep: bool = False) -> dict:
        return Recommender.get_params(self, deep)  # this signature, not Content's (its vectors are derived here)

    @property
    def fallback_label(self) -> str:
        if self.fallback == "description":
            return "description (TF-IDF of their words), else popularity"
        return super().fallback_label

    def __repr__(self):
        return (f"TfidfContent(half_life_days={self.half_life_days!r}, fallback={self.fallback!r}, "
                f"stop_words={self.stop_words!r}, min_df={self.min_df}, sublinear_tf={self.sublinear_tf})")

    def _popular_row(self) -> np.ndarray:
        return self.popularity_ / max(float(self.popularity_.max()), 1.0)  # as Content's new users get it

    def _score(self, users) -> np.ndarray:
        s = super()._score(users)
        wordless = ~np.any(self._known_profiles(users) != 0, axis=1)
        if wordless.any() and self.fallback is not None:
            s[wordless] = self._popular_row()
        return s

    def _score_history(self, user, history: pd.DataFrame) -> np.ndarray:
        s = super()._score_history(user, history)
        if not np.any(s != 0) and self.fallback is not None:
            return self._popular_row().astype(np.float32)
        return s

    def describe(self, text: str) -> np.ndarray:
        """One text as a unit TF-IDF vector of this catalogue's vocabulary (zero when it shares no word)."""
        from .checks import text as check_text

        return unit_rows(self.vectorizer.transform([check_text("text", text, allow_empty=True)]).toarray())[0]

    def served_by(self, users) -> pd.Series:
        """For each user, what their scores come from: ``"history"``, ``"description"`` or ``"popularity"``."""
        self._check_fitted()
        users = list(users)
        known = self.has_history(users)
        out = [self.new_user_source(u) for u in users]
        if known.any():
            rows = [k for k, h in enumerate(known) if h]
            worded = np.any(self._known_profiles([users[k] for k in rows]) != 0, axis=1)
            for k, w in zip(rows, worded):
                out[k] = "history" if w else "popularity"
        return pd.Series(out, index=users, name="served by")


__all__ = ["STOP_WORDS", "TfidfContent", "tfidf_vectorizer"]
