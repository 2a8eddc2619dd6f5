"""One config style: every config dataclass validates itself in __post_init__ (so a direct construction and a
replace_checked copy are checked alike), and replace_checked is the one way to change one."""
import dataclasses

import pytest

from course_lib.checks import UnknownSetting, replace_checked
from course_lib.data.shop import ShopConfig
from course_lib.encode import TextEncoderConfig
from course_lib.llm import LLMConfig
from course_lib.serving import SlotPolicy
from course_lib.tiers import TierConfig

CASES = [  # (config class, a bad change, what the message says)
    (ShopConfig, {"n_items": 0}, "n_items must be >= 26"),
    (ShopConfig, {"explore_frac": 1.5}, "explore_frac must be"),
    (ShopConfig, {"start": "someday"}, "start must be a date"),
    (TierConfig, {"half_life_days": 0}, "half_life_days must be > 0"),
    (SlotPolicy, {"order": "random"}, "order must be one of"),
    (LLMConfig, {"max_new_tokens": 0}, "max_new_tokens must be >= 1"),
    (LLMConfig, {"dtype": "int8"}, "dtype must be one of"),
    (TextEncoderConfig, {"pooling": "max"}, "pooling must be one of"),
    (TextEncoderConfig, {"batch_size": 0}, "batch_size must be >= 1"),
]


@pytest.mark.parametrize("cls, bad, message", CASES, ids=[f"{c[0].__name__}-{next(iter(c[1]))}" for c in CASES])
def test_configs_validate_themselves(cls, bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        cls(**bad)  # constructed directly
    with pytest.raises((ValueError, TypeError), match=message):
        replace_checked(cls(), **bad)  # or changed


@pytest.mark.parametrize("cls", [ShopConfig, TierConfig, SlotPolicy, LLMConfig, TextEncoderConfig])
def test_replace_checked_changes_known_fields_and_refuses_others(cls):
    cfg = cls()
    name = dataclasses.fields(cfg)[0].name
    assert replace_checked(cfg) == cfg
    with pytest.raises(UnknownSetting, match=rf"{cls.__name__} has no setting 'nope'; the settings are \["):
        replace_checked(cfg, nope=1)
    with pytest.raises(TypeError, match="config dataclass instance"):
        replace_checked(cls, **{name: getattr(cfg, name)})


def test_validated_values_are_stored_coerced():
    assert LLMConfig(max_new_tokens=48.0).max_new_tokens == 48 and type(LLMConfig(batch_size=8.0).batch_size) is int
    assert TextEncoderConfig(max_length=128.0).max_length == 128


def test_index_config_validates_itself():
    pytest.importorskip("faiss")
    from course_lib.scale import IndexConfig

    with pytest.raises(ValueError, match="pq_bits must be <= 16"):
        IndexConfig(pq_bits=17)
    with pytest.raises(ValueError, match="rerank must be >= 0"):
        replace_checked(IndexConfig(), rerank=-1)
