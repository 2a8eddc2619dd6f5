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


# ---- the one offline switch, and the hub check through the proxy the HTTP client would use ------------------
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.mark.parametrize("env,default,expected", [
    ({}, False, False), ({}, True, True),  # neither set: the caller's default (headless reports pass True)
    ({"HF_HUB_OFFLINE": "1"}, False, True), ({"TRANSFORMERS_OFFLINE": "yes"}, False, True),
    ({"HF_HUB_OFFLINE": "0"}, True, False),  # said explicitly: downloads allowed
    ({"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "ON"}, False, True),  # either one says offline
])
def test_offline_is_one_switch(env, default, expected, monkeypatch):
    for v in OFFLINE_VARS:
        monkeypatch.delenv(v, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert runtime.offline(default=default) is expected


def test_encode_and_llm_read_the_one_switch():
    from course_lib import encode, llm

    assert encode._offline is runtime.offline and llm.offline is runtime.offline
    assert not hasattr(encode, "_hub_reachable") and not hasattr(llm, "_env_offline")  # no copies left


class ProxyStub:
    """A tiny threaded HTTP proxy on 127.0.0.1 that records what it is asked and answers CONNECT with ``status``."""

    def __init__(self, status: str = "200 Connection established"):
        import socket
        import threading

        self.status, self.requests = status, []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(1024).decode("latin-1")
                self.requests.append(data.split("\r\n", 1)[0])
                conn.sendall(f"HTTP/1.1 {self.status}\r\n\r\n".encode())

    def close(self):
        self.server.close()


@pytest.fixture
def proxy_env(monkeypatch):
    for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
              "no_proxy"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # never resolvable: only the proxy can answer
    return monkeypatch


def test_hub_check_goes_through_https_proxy(proxy_env):
    stub = ProxyStub()
    try:
        proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{stub.port}")
        assert runtime.proxy_for(runtime.hub_endpoint()) == f"http://127.0.0.1:{stub.port}"
        ok, why = runtime.hub_reachable(timeout=3)
        assert ok and why == "", why
        assert stub.requests == ["CONNECT hub.invalid:443 HTTP/1.1"]
    finally:
        stub.close()


def test_a_proxy_that_refuses_makes_the_hub_unreachable_and_says_why(proxy_env):
    stub = ProxyStub("407 Proxy Authentication Required")
    try:
        proxy_env.setenv("https_proxy", f"http://127.0.0.1:{stub.port}")
        ok, why = runtime.hub_reachable(timeout=3)
        assert not ok and f"proxy 127.0.0.1:{stub.port} answered 'HTTP/1.1 407" in why, why
        assert stub.requests == ["CONNECT hub.invalid:443 HTTP/1.1"]
    finally:
        stub.close()


def test_no_proxy_sends_the_hub_check_direct(proxy_env):
    stub = ProxyStub()
    try:
        proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{stub.port}")
        proxy_env.setenv("NO_PROXY", "hub.invalid")
        assert runtime.proxy_for(runtime.hub_endpoint()) is None
        ok, why = runtime.hub_reachable(timeout=3)
        assert not ok and "proxy" not in why, why  # tried direct: hub.invalid does not resolve
        assert stub.requests == []
    finally:
        stub.close()


def test_unknown_model_behind_a_proxy_is_looked_for_through_it(proxy_env):
    from course_lib.encode import ModelNotFoundError, locate_text_model

    stub = ProxyStub("502 Bad Gateway")
    try:
        proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{stub.port}")
        with pytest.raises(ModelNotFoundError, match=r"hub https://hub\.invalid cannot be reached \(proxy .*502"):
            locate_text_model("someone/not-a-real-model-xyz", offline=False)
        assert stub.requests == ["CONNECT hub.invalid:443 HTTP/1.1"]
        stub.status = "200 Connection established"
        assert locate_text_model("someone/not-a-real-model-xyz", offline=False) == ("someone/not-a-real-model-xyz", False)
    finally:
        stub.close()
