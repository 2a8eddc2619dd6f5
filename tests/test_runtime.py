import random

import numpy as np
import pytest
import torch

from course_lib import runtime


def test_get_device_cpu_and_auto():
    assert runtime.get_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.get_device("auto").type == expected
    assert runtime.get_device(None).type == expected


def test_get_device_env_override(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert runtime.get_device("auto").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a machine without CUDA")
def test_cuda_falls_back_to_cpu_with_a_clear_warning():
    with pytest.warns(RuntimeWarning, match="CUDA is not available.*using the CPU"):
        dev = runtime.get_device("cuda")
    assert dev.type == "cpu"


def test_bad_device_lists_choices():
    with pytest.raises(ValueError, match=r"one of \('auto', 'cpu', 'cuda'\).*'tpu'"):
        runtime.get_device("tpu")


def test_set_seed_makes_every_generator_repeat():
    runtime.set_seed(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.set_seed(7)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.set_seed(8)
    c = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    assert all(x != y for x, y in zip(a, c))


def test_set_seed_rejects_non_int():
    with pytest.raises(TypeError, match="seed must be an int"):
        runtime.set_seed("42")


def test_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "c"))
    assert runtime.cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()


def test_environment_check_reports_bundled_models(tmp_path):
    df = runtime.environment_check(tmp_path)
    assert df.loc["text model (all-MiniLM-L6-v2)", "ok"] == "yes"
    assert df.loc["image model (EfficientNet-Lite0)", "ok"] == "yes"
    assert df.loc["dataset folder", "ok"] == "yes"
    assert runtime.environment_check(tmp_path / "nope").loc["dataset folder", "ok"] == "NO"
