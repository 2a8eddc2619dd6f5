"""course_lib.scale on a local Ray cluster with tiny data: results equal the single-process functions, in input order;
workers that die are retried or fail clearly; bad input is one line; the cluster shuts down without stray processes.

One local cluster for the whole module (2 CPUs, no dashboard, a 200 MB object store): starting Ray costs seconds,
and so does every worker (it imports torch and loads a model), so the tests on the cluster are marked slow.
They fail (never skip) in CI when Ray is missing; elsewhere they skip, naming the extra.
"""
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from course_lib import scale
from course_lib.rank import recall_vs_exact, top_k

WORDS = ("i like smart watches and fitness tracking devices this has a long battery life is water resistant "
         "the red blue shoes for running camera book tent coffee").split()


@pytest.fixture(scope="module")
def cluster():
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Ray is not installed: {scale.INSTALL_HINT}")
    info = scale.connect(num_cpus=2, object_store_mb=200, dashboard=False)
    yield info
    scale.shutdown()


def _texts(n, seed=0):
    rng = np.random.default_rng(seed)
    out = [" ".join(rng.choice(WORDS, rng.integers(1, 12))) + f" {i}" for i in range(n)]  # all different
    out[3] = ""  # an empty text is encoded like any other
    out[7] = out[5]  # and a repeated one
    return out


def _clustered(n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d)).astype(np.float32)
    return (centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, d))).astype(np.float32)


# ---- without Ray ---------------------------------------------------------------------------------------------
def test_missing_ray_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when Ray is not installed
    for call in (lambda: scale.connect(), lambda: scale.recommend_all(np.ones((2, 3)), np.ones((4, 3)), 2)):
        with pytest.raises(ImportError, match=r'pip install -e "\.\[scale\]"') as err:
            call()
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_build_index_agrees_with_top_k(kind):
    items, users = _clustered(600, 16, 0), _clustered(40, 16, 1)
    seen = [list(range(u, u + 5)) for u in range(40)]
    index = scale.build_index(items, kind)
    s, i = index.search(users, 10, exclude=seen)
    ref_s, ref_i = top_k(users, items, 10, exclude=seen)
    if kind == "exact":
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_allclose(s, ref_s, atol=1e-5)
    else:  # approximate, but on 600 clustered items the graph finds nearly everything
        assert recall_vs_exact(i, ref_i) >= 0.95
    assert not any(set(row) & set(hide) for row, hide in zip(i.tolist(), seen))
    assert len(index) == 600 and index.dim == 16


def test_ivfpq_trades_recall_for_memory():
    items, users = _clustered(2000, 32, 0), _clustered(50, 32, 1)
    exact = scale.build_index(items, "exact")
    ivf = scale.build_index(items, "ivfpq", nlist=16, pq_m=8, pq_bits=4, nprobe=4)
    _, ref = exact.search(users, 10)
    _, few = ivf.search(users, 10, nprobe=1)
    _, all_lists = ivf.search(users, 10, nprobe=16)
    assert ivf.nbytes < exact.nbytes / 4  # 8 four-bit codes + an id per item instead of 32 floats
    assert recall_vs_exact(all_lists, ref) >= recall_vs_exact(few, ref)  # visiting every list can only help
    assert recall_vs_exact(all_lists, ref) > 0.3 and (all_lists >= 0).all()
    assert exact.nbytes == 2000 * 32 * 4
    # re-scoring the best candidates with the exact vectors buys the recall back, and costs their memory
    again = ivf.reranked(items, 8)
    _, rescored = again.search(users, 10, nprobe=16)
    assert recall_vs_exact(rescored, ref) >= max(0.9, recall_vs_exact(all_lists, ref))
    assert again.nbytes >= exact.nbytes + ivf.nbytes - 1
    built = scale.build_index(items, "ivfpq", nlist=16, pq_m=8, pq_bits=4, nprobe=16, rerank=8)
    np.testing.assert_array_equal(built.search(users, 10)[1], rescored)


def test_index_round_trips_through_bytes():
    items = _clustered(300, 8, 0)
    index = scale.build_index(items, "hnsw", ef_search=32)
    again = scale.VectorIndex.from_bytes(index.to_bytes(), index.kind, index.config)
    np.testing.assert_array_equal(again.search(items[:20], 5)[1], index.search(items[:20], 5)[1])


def test_index_bad_input_is_one_line():
    items = _clustered(300, 12, 0)
    index = scale.build_index(items, "exact")
    with pytest.raises(ValueError, match="query_vecs have 10 dimensions but the index holds 12-dimensional") as e:
        index.search(np.ones((2, 10)), 3)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="user_vecs have 10 dimensions"):
        scale.recommend_all(np.ones((2, 10)), index, 3)  # refused before any worker starts
    with pytest.raises(ValueError, match="user_vecs have 10 dimensions"):
        scale.recommend_all(np.ones((2, 10)), items, 3)
    with pytest.raises(ValueError, match="kind must be one of"):
        scale.build_index(items, "annoy")
    with pytest.raises(TypeError, match="unknown index setting"):
        scale.build_index(items, "hnsw", efsearch=5)
    with pytest.raises(ValueError, match="pq_m must divide the dimension 12"):
        scale.build_index(items, "ivfpq", pq_m=5)
    with pytest.raises(ValueError, match="NaN"):
        scale.build_index(np.full((3, 4), np.nan), "exact")


def test_shown_info_hides_a_local_clusters_host_but_not_a_typed_address():
    local = scale.ClusterInfo("10.1.2.3:6379", True, 1, 2.0, 0.0, None)
    shown = scale.shown_info(local)
    assert shown["address"] == "this machine:6379" and "10.1.2.3" not in str(shown)
    assert shown["cpus"] == 2.0 and local.address == "10.1.2.3:6379"  # the info itself is unchanged
    remote = scale.ClusterInfo("head-node:6379", False, 3, 48.0, 2.0, None)
    assert scale.shown_info(remote)["address"] == "head-node:6379"
    with pytest.raises(TypeError, match="info must be the ClusterInfo"):
        scale.shown_info({"address": "x"})


def test_native_stderr_is_muted_only_while_ray_starts(capfd):
    os.write(2, b"before\n")
    with scale._native_stderr_muted():
        os.write(2, b"native notice\n")  # what Ray's C++ side prints at start
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "before" in err and "after" in err and "native notice" not in err


def test_synthetic_vectors_are_unit_seeded_and_near_their_base():
    base = _clustered(50, 16, 0)
    a = scale.synthetic_vectors(1000, base, seed=1, chunk=300)
    assert a.shape == (1000, 16) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(a, scale.synthetic_vectors(1000, base, seed=1, chunk=300))
    base_unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    assert (a @ base_unit.T).max(axis=1).mean() > 0.8  # each mixes two base items: close to one of them


def test_unreachable_address_fails_within_seconds_naming_it():
    import socket

    with socket.socket() as s:  # a port on this machine that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import os, time; from course_lib import scale; t = time.perf_counter()\n"
            "try:\n    scale.connect({arg})\nexcept ConnectionError as e:\n"
            "    print(f'{{time.perf_counter() - t:.2f}}'); print(e)\n")
    for arg, env in ((f"'127.0.0.1:{port}'", {}), ("", {"RAY_ADDRESS": f"127.0.0.1:{port}"})):
        out = subprocess.run([sys.executable, "-c", code.format(arg=arg)], capture_output=True, text=True,
                             timeout=60, env={**os.environ, **env})
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 2, out.stdout + out.stderr
        assert float(lines[0]) < scale.CONNECT_TIMEOUT_S + 1
        assert f"127.0.0.1:{port}" in lines[1] and "ray start --head" in lines[1]
        assert f"({'RAY_ADDRESS' if env else 'address'})" in lines[1]  # where the address came from


# ---- on a local cluster ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_encode_dataset_equals_text_encoder_in_order_and_shares_the_cache(cluster, tiny_bert, tmp_path):
    from course_lib.cache import EmbeddingCache
    from course_lib.encode import TextEncoder

    texts = _texts(150)
    table = pd.DataFrame({"item_id": range(150), "text": texts})
    cache = tmp_path / "shared"
    # the fine-tuned model plugs in by path: a saved model folder, as finetune writes it
    got = scale.encode_dataset(table, tiny_bert, num_workers=2, batch_size=32, cache=str(cache))
    enc = TextEncoder(tiny_bert, cache=False)
    np.testing.assert_allclose(got, enc.encode(texts), atol=1e-6)
    # the workers filled the cache folder a single process reads: every distinct text is there
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    assert len(EmbeddingCache(folder, enc.dim)) == len(set(texts))
    assert scale.encode_dataset([], tiny_bert).shape == (0, enc.dim)


@pytest.mark.slow
def test_a_worker_that_dies_once_is_retried(cluster, tiny_bert, tmp_path):
    from course_lib.encode import TextEncoder

    texts = _texts(120, seed=1)
    marker = tmp_path / "died"
    got = scale.encode_dataset(texts, tiny_bert, num_workers=1, batch_size=30, cache=False, _fault=(70, str(marker)))
    assert marker.exists()  # a worker did die mid-job, on the batch holding row 70
    np.testing.assert_allclose(got, TextEncoder(tiny_bert, cache=False).encode(texts), atol=1e-6)


def test_encode_dataset_bad_input_is_refused_before_any_worker_starts(tiny_bert):
    from course_lib.encode import ModelNotFoundError

    with pytest.raises(ValueError, match=r"max_length must be <= 64 for model"):
        scale.encode_dataset(["a text"], tiny_bert, max_length=100)
    with pytest.raises(ValueError, match=r"column 'description' is not in the table; its columns are \['text'\]"):
        scale.encode_dataset(pd.DataFrame({"text": ["a"]}), tiny_bert, column="description")
    with pytest.raises(TypeError, match="text at index 1 is NaN"):
        scale.encode_dataset(["a", float("nan")], tiny_bert)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        scale.encode_dataset(["a"], "/no/such/model-folder")


@pytest.mark.slow
def test_an_encoder_that_keeps_dying_fails_clearly(cluster, tiny_bert):
    with pytest.raises(scale.WorkerDiedError, match=r"died while encoding .* after 0 restart\(s\); nothing was returned"):
        scale.encode_dataset(_texts(40), tiny_bert, num_workers=1, cache=False, max_retries=0, _fault=(10, None))


@pytest.mark.slow
def test_recommend_all_equals_top_k_in_user_order(cluster):
    from course_lib.catalogue import Catalogue

    items, users = _clustered(800, 24, 0), _clustered(90, 24, 1)
    seen = [np.random.default_rng(u).choice(800, 6, replace=False).tolist() for u in range(90)]
    ref_s, ref_i = top_k(users, items, 10, exclude=seen)
    order = np.random.default_rng(2).permutation(90)  # a shuffled user order comes back in that order
    s, i = scale.recommend_all(users[order], Catalogue(np.arange(800), items), 10,
                               exclude=[seen[u] for u in order], chunk_size=16)
    np.testing.assert_array_equal(i, ref_i[order])
    np.testing.assert_allclose(s, ref_s[order], atol=1e-6)
    index = scale.build_index(items, "hnsw")  # an ANN index travels to the workers too
    s2, i2 = scale.recommend_all(users, index, 10, exclude=seen, chunk_size=16)
    np.testing.assert_array_equal(i2, index.search(users, 10, exclude=seen)[1])


@pytest.mark.slow
def test_a_worker_that_keeps_dying_fails_clearly(cluster):
    items, users = _clustered(200, 8, 0), _clustered(50, 8, 1)
    with pytest.raises(scale.WorkerDiedError, match=r"died while ranking .* nothing was returned") as e:
        scale.recommend_all(users, items, 5, chunk_size=10, max_retries=1, _fault=(25, None))
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_workers_the_cluster_cannot_hold_are_refused(cluster):
    with pytest.raises(ValueError, match=r"num_workers=3 workers need 3 CPUs but the cluster has 2"):
        scale.recommend_all(np.ones((2, 3)), np.ones((4, 3)), 2, num_workers=3)
    with pytest.raises(ValueError, match="already connected"):
        scale.connect("127.0.0.1:1")


@pytest.mark.slow
def test_scaling_solutions_pass(cluster):
    import importlib.util
    from pathlib import Path

    from course_lib import exercises
    from course_lib.catalogue import Catalogue

    path = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "s10_scaling.py"
    spec = importlib.util.spec_from_file_location("s10_scaling", path)
    s = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(s)
    table = pd.DataFrame({"index": ["exact", "HNSW", "HNSW", "IVF-PQ"], "MiB": [100.0, 110.0, 110.0, 8.0],
                          "recall@10": [1.0, 0.8, 0.95, 0.5]})
    assert exercises.check("1", s.memory_ratio(table), 12.5)
    assert exercises.check("2", s.recall_gain(table), 0.15, tol=1e-9)
    items, users = _clustered(300, 8, 0), _clustered(5, 8, 1)
    cat = Catalogue(np.array([f"i{j}" for j in range(300)]), items)
    seen = [[0, 1], [], [2], [], [3]]
    expected = cat.ids[top_k(users[:1], items, 3, exclude=seen[:1])[1][0]].tolist()
    assert exercises.check("3", s.first_user_items(users, cat, seen), expected)


@pytest.mark.slow
def test_shutdown_leaves_no_process_behind(cluster):
    """Kept last in the module: it stops the module's cluster (the fixture's own shutdown is then a no-op)."""
    import psutil

    procs = psutil.Process().children(recursive=True)  # gcs_server, raylet, workers: every process Ray started
    assert procs, "a running local cluster has processes"
    scale.shutdown()
    deadline = time.time() + 15
    alive = procs
    while alive and time.time() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    assert not alive, f"still running after shutdown: {[p.name() for p in alive]}"
