"""The embedding cache: encoding is the expensive step, so every embedding matrix is kept on disk.

One entry per (encoder identity, dataset identity): a plain float32 ``.npy`` file and a JSON sidecar
that records what it holds. Writes are atomic (temporary file, then ``os.replace``), so a crash
never leaves a readable half-written file; reads are checked (``allow_pickle=False``, shape and
item-ids hash against the sidecar) and a bad entry is re-encoded with a warning, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "ALIGNBENCH_CACHE"
CHUNK = 512  # items encoded per call: the unit of progress


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


def texts_digest(texts: Sequence) -> str | None:
    """Hash of raw texts, which are their own identity; None when the items are not all strings."""
    return items_digest(texts) if all(isinstance(t, str) for t in texts) else None


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


class EmbeddingCache:
    """``get_or_encode`` is the one entry point; ``entries`` and ``remove`` serve ``alignbench cache``."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.encoded_items = 0  # items sent through an encoder by this cache object (tests count this)

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
        meta = {"encoder": encoder_identity, "dataset": dataset_identity, "ids_hash": ids_hash,
                "shape": list(array.shape), "dtype": "float32", "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._write(key, array, meta)
        return array

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.npy", self.directory / f"{key}.json"

    def _read(self, key: str, n_items: int, ids_hash: str) -> np.ndarray | None:
        array_path, meta_path = self._paths(key)
        if not array_path.exists() or not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(array_path, allow_pickle=False)
            problems = []
            if meta.get("ids_hash") != ids_hash:
                problems.append("item ids differ")
            if list(array.shape) != meta.get("shape") or array.shape[0] != n_items:
                problems.append(f"shape {array.shape} does not match {meta.get('shape')} / {n_items} items")
            if array.dtype != np.float32:
                problems.append(f"dtype {array.dtype}")
            if not np.isfinite(array).all():
                problems.append("NaN or inf values")
            if problems:
                raise ValueError("; ".join(problems))
            return array
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is re-encoded
            log.warning("embedding cache entry %s is unusable (%s); encoding again", array_path, exc)
            return None

    def _write(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        array_path, meta_path = self._paths(key)
        _atomic_write(array_path, lambda f: np.save(f, array, allow_pickle=False))
        _atomic_write(meta_path, lambda f: f.write(json.dumps(meta, sort_keys=True, indent=1).encode()))

    def entries(self) -> list[CacheEntry]:
        out = []
        for meta_path in sorted(self.directory.glob("*.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError):
                meta = {}
            out.append(CacheEntry(meta_path.stem, meta_path.with_suffix(".npy"), meta))
        return out

    def remove(self, keys: Sequence[str] | None = None) -> int:
        """Delete the entries whose key starts with one of ``keys`` (all when None); returns how many."""
        removed = 0
        for entry in self.entries():
            if keys is None or any(entry.key.startswith(k) for k in keys):
                for path in (entry.path, entry.path.with_suffix(".json")):
                    path.unlink(missing_ok=True)
                removed += 1
        return removed


def _atomic_write(path: Path, write: Callable[[Any], object]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
