"""The embedding cache: encoding is the expensive step, so every embedding matrix is kept on disk.

One entry per (encoder identity, dataset identity): a plain float32 ``.npy`` file and a JSON sidecar
that records what it holds, the entry's key and the sha256 of the ``.npy`` file's bytes. Writes are
atomic (temporary file, then ``os.replace``), so a crash never leaves a readable half-written file;
reads are checked (the checksum first, then ``allow_pickle=False``, key, shape, dtype, item-ids hash
and finite values against the sidecar) and a bad entry is re-encoded with a warning, never trusted.
Temporary files that a crash left behind are removed once stale (see :meth:`EmbeddingCache.temporaries`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .errors import InvalidParameterError
from .processes import process_gone

log = logging.getLogger(__name__)

CACHE_ENV = "ALIGNBENCH_CACHE"
CHUNK = 512  # items encoded per call: the unit of progress
FORMAT = 2  # 2: sidecars record the entry's key and the sha256 of its .npy file
STALE_AFTER_S = 3600  # a temporary file this old belongs to no live write
KEY = re.compile(r"[0-9a-f]{32}")
# ".<key>.npy.<pid>@<host>.<random>.tmp"; files from before the owner was recorded lack "<pid>@<host>."
TEMPORARY = re.compile(r"\.(?P<key>[0-9a-f]{32})\.(?:npy|json)\.(?:(?P<pid>\d+)@(?P<host>[^.]*)\.)?[^.]*\.tmp")


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "alignbench" / "embeddings"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def items_digest(item_ids: Sequence[str]) -> str:
    """Hash of an ordered list of item identifiers (or of the texts themselves)."""
    h = hashlib.sha256()
    for item in item_ids:
        h.update(str(item).encode())
        h.update(b"\0")
    return h.hexdigest()


_CONTENT_ID = re.compile(r"@[0-9a-f]{16}$")  # NAME@SHA: the first 16 hex digits of the item's sha256


def raw_items_digest(item_ids: Sequence[str], items: Sequence) -> str:
    """Hash of a split's raw items: each id with a signature of its content, so that another copy of a
    collection under the same names (Fashion-MNIST's files swapped for MNIST's, a resized COCO in
    another folder) is not served the first copy's embeddings. The signature: an array's dtype, shape
    and bytes; a file's size (reading every photo of a collection would cost what decoding it does,
    and a resized or re-encoded copy has other sizes); nothing for ids that hold a content digest
    (``NAME@SHA``) or for items of other kinds."""
    h = hashlib.sha256()
    for item_id, item in zip(item_ids, items):
        h.update(str(item_id).encode())
        h.update(b"\0")
        if _CONTENT_ID.search(str(item_id)):
            continue
        if isinstance(item, np.ndarray):
            h.update(f"{item.dtype.str}{item.shape}".encode())
            h.update(np.ascontiguousarray(item).tobytes())
        elif isinstance(item, (str, os.PathLike)):
            try:
                h.update(str(os.stat(item).st_size).encode())
            except OSError:
                h.update(b"missing")
        h.update(b"\0")
    return h.hexdigest()


def texts_digest(texts: Sequence) -> str | None:
    """Hash of raw texts, which are their own identity; None when the items are not all strings."""
    return items_digest(texts) if all(isinstance(t, str) for t in texts) else None


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read once per (path, size, modification time in ns) in a process:
    the content identity of a user's input file (a file rewritten in place gets a new one)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _file_sha256(str(resolved), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return _sha256_of(f)


def _sha256_of(f) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


class CacheWriteError(OSError):
    """An entry could not be written. ``embeddings`` holds what was encoded, so that the caller can go
    on without the cache instead of losing the encoding."""

    def __init__(self, message: str, embeddings: np.ndarray):
        super().__init__(message)
        self.embeddings = embeddings


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.is_file() else 0


@dataclass(frozen=True)
class TemporaryFile:
    """A file an unfinished write left; ``stale``: older than STALE_AFTER_S or its writer has exited."""

    key: str
    path: Path
    size_bytes: int
    age_s: float
    stale: bool


class EmbeddingCache:
    """``get_or_encode`` is the one entry point; ``entries``, ``temporaries`` and ``remove`` serve
    ``alignbench cache``."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.encoded_items = 0  # items sent through an encoder by this cache object (tests count this)
        self.unwritable: str | None = None  # why entries cannot be written; then encoding goes on uncached

    def check_writable(self) -> str | None:
        """Before any encoding: None when entries can be written here, else a one-line warning (and
        no write is tried later). Existing entries are still read from a read-only cache."""
        try:
            if self.directory.exists() and not self.directory.is_dir():
                raise NotADirectoryError(f"{self.directory} is a file")
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as exc:
            self.unwritable = exc.strerror or str(exc)
            return self.unwritable_warning()
        return None

    def unwritable_warning(self) -> str:
        return (f"the embedding cache {self.directory} is not writable ({self.unwritable}); embeddings are not "
                f"cached in this run. Pass a writable --cache-dir (or --no-cache).")

    def key(self, encoder_identity: dict[str, Any], dataset_identity: dict[str, Any]) -> str:
        return digest({"encoder": encoder_identity, "dataset": dataset_identity})[:32]

    def get_or_encode(
        self,
        encode: Callable[[Sequence[Any]], np.ndarray],
        items: Sequence[Any],
        *,
        encoder_identity: dict[str, Any],
        dataset_identity: dict[str, Any],
        ids_hash: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """The cached embeddings of ``items``, or encode them (in chunks) and cache the result."""
        key = self.key(encoder_identity, {**dataset_identity, "ids": ids_hash})
        cached = self._read(key, len(items), ids_hash)
        if cached is not None:
            return cached
        chunks = []
        for start in range(0, len(items), CHUNK):
            chunks.append(np.asarray(encode(items[start:start + CHUNK]), dtype=np.float32))
            self.encoded_items += len(chunks[-1])
            if progress:
                progress(min(start + CHUNK, len(items)), len(items))
        array = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
        meta = _entry_meta(encoder_identity, dataset_identity, ids_hash, array)
        if self.unwritable is None:
            try:
                self._write(key, array, meta)
            except OSError as exc:  # later entries are not tried; the caller may go on with the embeddings
                self.unwritable = exc.strerror or str(exc)
                raise CacheWriteError(self.unwritable_warning(), array) from exc
        return array

    def get_or_encode_in_shards(
        self,
        encode_shards: Callable[[list[tuple[int, int]]], Iterator[tuple[int, int, np.ndarray]]],
        items: Sequence[Any],
        *,
        encoder_identity: dict[str, Any],
        dataset_identity: dict[str, Any],
        ids_hash: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """:meth:`get_or_encode` with the chunks encoded elsewhere, in any order: ``encode_shards(ranges)``
        yields ``(start, stop, embeddings)`` as each ``items[start:stop]`` is done. Each shard is cached
        as it arrives, so a killed job resumes at the shards still missing; the finished entry has the
        same key as a serial run's, and the same values where the encoder gives a chunk the same result
        on every machine (the shards are the serial run's chunks). The shard entries are then removed."""
        key = self.key(encoder_identity, {**dataset_identity, "ids": ids_hash})
        cached = self._read(key, len(items), ids_hash)
        if cached is not None:
            return cached
        ranges = [(start, min(start + CHUNK, len(items))) for start in range(0, len(items), CHUNK)]
        shard_keys = {r: self.key(encoder_identity, {**dataset_identity, "ids": ids_hash, "shard": list(r)})
                      for r in ranges}
        shards = {r: self._read(shard_keys[r], r[1] - r[0], ids_hash) for r in ranges}
        missing = [r for r, array in shards.items() if array is None]
        done = len(items) - sum(r[1] - r[0] for r in missing)
        for start, stop, array in encode_shards(missing) if missing else ():
            array = np.asarray(array, dtype=np.float32)
            shards[(start, stop)] = array
            self.encoded_items += len(array)
            done += len(array)
            if self.unwritable is None:
                meta = _entry_meta(encoder_identity, {**dataset_identity, "shard": [start, stop]}, ids_hash, array)
                try:
                    self._write(shard_keys[(start, stop)], array, meta)
                except OSError as exc:
                    self.unwritable = exc.strerror or str(exc)
            if progress:
                progress(done, len(items))
        array = np.concatenate([shards[r] for r in ranges]) if ranges else np.zeros((0, 0), np.float32)
        meta = _entry_meta(encoder_identity, dataset_identity, ids_hash, array)
        if self.unwritable is not None:
            raise CacheWriteError(self.unwritable_warning(), array)
        try:
            self._write(key, array, meta)
        except OSError as exc:
            self.unwritable = exc.strerror or str(exc)
            raise CacheWriteError(self.unwritable_warning(), array) from exc
        for shard_key in shard_keys.values():
            for path in self._paths(shard_key):
                _remove_path(path)
        return array

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.npy", self.directory / f"{key}.json"

    def _read(self, key: str, n_items: int, ids_hash: str) -> np.ndarray | None:
        array_path, meta_path = self._paths(key)
        present = [os.path.lexists(array_path), os.path.lexists(meta_path)]
        if not any(present):
            return None
        try:
            if not all(present):
                raise ValueError(f"its {'sidecar' if present[0] else '.npy file'} is missing")
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("the sidecar is not a JSON object")
            if "format" not in meta:  # written before checksums, or edited: its bytes cannot be checked
                raise ValueError("no checksum recorded: written by an alignbench from before checksums, or its "
                                 "sidecar was edited, so its bytes cannot be verified")
            if meta.get("key") != key:
                raise ValueError(f"the sidecar is for entry {meta.get('key')!r}")
            with open(array_path, "rb") as f:
                checksum = _sha256_of(f)
                if checksum != meta.get("sha256"):
                    raise ValueError(f"sha256 {checksum[:12]}... does not match the sidecar's "
                                     f"{str(meta.get('sha256'))[:12]}...")
                f.seek(0)
                array = np.load(f, allow_pickle=False)
            if not isinstance(array, np.ndarray):
                raise ValueError(f"holds a {type(array).__name__}, not one array")
            problems = []
            if meta.get("ids_hash") != ids_hash:
                problems.append("item ids differ")
            if list(array.shape) != meta.get("shape") or array.ndim != 2 or array.shape[0] != n_items:
                problems.append(f"shape {array.shape} does not match {meta.get('shape')} / {n_items} items")
            if array.dtype != np.float32:
                problems.append(f"dtype {array.dtype}")
            if not np.isfinite(array).all():
                problems.append("NaN or inf values")
            if problems:
                raise ValueError("; ".join(problems))
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is re-encoded
            log.warning("embedding cache entry %s is unusable (%s); encoding again", array_path, exc)
            return None
        return array

    def _write(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.remove_stale_temporaries()
        array_path = self._paths(key)[0]
        self._write_sidecar(key, meta, _atomic_write(array_path, lambda f: np.save(f, array, allow_pickle=False)))

    def _write_sidecar(self, key: str, meta: dict[str, Any], checksum: str) -> None:
        meta = {**meta, "format": FORMAT, "key": key, "sha256": checksum}
        _atomic_write(self._paths(key)[1], lambda f: f.write(json.dumps(meta, sort_keys=True, indent=1).encode()))

    def entries(self) -> list[CacheEntry]:
        """Every entry, whole or not: an ``.npy`` file or a sidecar named after a key."""
        keys = sorted({p.stem for pattern in ("*.npy", "*.json") for p in self.directory.glob(pattern)
                       if KEY.fullmatch(p.stem)})
        out = []
        for key in keys:
            array_path, meta_path = self._paths(key)
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {}
            out.append(CacheEntry(key, array_path, meta if isinstance(meta, dict) else {}))
        return out

    def temporaries(self) -> list[TemporaryFile]:
        """Temporary files of unfinished writes (a crash or a kill leaves them)."""
        out = []
        now = time.time()
        for path in sorted(self.directory.glob(".*.tmp")):
            match = TEMPORARY.fullmatch(path.name)
            try:
                stat = path.stat()
            except OSError:  # finished (renamed) since the listing
                continue
            if match is None:
                continue
            age = now - stat.st_mtime
            owner_gone = (match["pid"] is not None and match["host"] == _host()
                          and process_gone(int(match["pid"])))
            out.append(TemporaryFile(match["key"], path, stat.st_size, age, age > STALE_AFTER_S or owner_gone))
        return out

    def remove_stale_temporaries(self, keys: Sequence[str] | None = None) -> int:
        """Delete the stale temporary files (of the entries whose key starts with one of ``keys``)."""
        removed = 0
        for temporary in self.temporaries():
            if temporary.stale and (keys is None or any(temporary.key.startswith(k) for k in keys)):
                temporary.path.unlink(missing_ok=True)
                removed += 1
        return removed

    def remove(self, keys: Sequence[str] | None = None) -> int:
        """Delete the entries whose key starts with one of ``keys`` (all when None); returns how many.

        Every key must be a non-empty prefix of some entry's key: an empty one would match them all.
        """
        entries = self.entries()
        if keys is not None:
            keys = list(keys)
            if not keys or any(not k.strip() for k in keys):
                raise InvalidParameterError("an empty key would match every entry; name key prefixes from "
                                            "`alignbench cache ls`, or pass --all to remove everything.")
            unmatched = [k for k in keys if not any(e.key.startswith(k) for e in entries)]
            if unmatched:
                raise InvalidParameterError(f"no cache entry in {self.directory} has a key starting with "
                                            f"{', '.join(map(repr, unmatched))}; `alignbench cache ls` lists them.")
        removed = 0
        for entry in entries:
            if keys is None or any(entry.key.startswith(k) for k in keys):
                for path in self._paths(entry.key):
                    _remove_path(path)
                removed += 1
        return removed


class _HashingWriter:
    """A write-only file that also feeds a sha256 (np.save writes to it in chunks)."""

    def __init__(self, file):
        self.file = file
        self.hash = hashlib.sha256()

    def write(self, data) -> int:
        self.hash.update(data)
        return self.file.write(data)


def _atomic_write(path: Path, write: Callable[[Any], object]) -> str:
    """Write through ``write(file)`` to a temporary file, then rename it to ``path``; the bytes' sha256."""
    _remove_path(path, directories_only=True)  # a directory where the file belongs blocks the rename
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}@{_host()}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            hashing = _HashingWriter(f)
            write(hashing)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return hashing.hash.hexdigest()


def _remove_path(path: Path, directories_only: bool = False) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif not directories_only:
        path.unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _entry_meta(encoder_identity: dict[str, Any], dataset_identity: dict[str, Any], ids_hash: str,
                array: np.ndarray) -> dict[str, Any]:
    """What an entry's sidecar says of it (``_write`` adds its key and checksum)."""
    return {"encoder": encoder_identity, "dataset": dataset_identity, "ids_hash": ids_hash,
            "shape": list(array.shape), "dtype": "float32", "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
