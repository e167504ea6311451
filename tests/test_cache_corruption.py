"""Every way a cache entry can be damaged is caught: the entry is encoded again with a warning, the
right embeddings come back, and the repaired entry is then served from disk."""

import builtins
import io
import json
import logging
import os

import numpy as np
import pytest

from alignbench.cache import EmbeddingCache, items_digest

ENCODER = {"name": "toy", "params": {"scale": 1}}
OTHER_ENCODER = {"name": "toy", "params": {"scale": 2}}
DATASET = {"dataset": "toy", "split": "train", "side": "image"}
ITEMS = [1, 2, 3]


def encode(items):
    """Row i is ``items[i]`` repeated: rows differ, and no row or matrix is its own transpose's row."""
    return np.asarray(items, dtype=np.float32)[:, None] * np.array([[1.0, 10.0, 100.0]], np.float32)


def get(cache, encoder=ENCODER, scale=1.0):
    return cache.get_or_encode(lambda items: scale * encode(items), ITEMS, encoder_identity=encoder,
                               dataset_identity=DATASET, ids_hash=items_digest(map(str, ITEMS)))


def npy_bytes(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def header_end(data: bytes) -> int:
    return data.index(b"\n") + 1


def flip(data: bytes, at: int, mask: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]


def in_header(old: bytes, new: bytes):
    def damage(entry, sidecar, cache):
        data = entry.read_bytes()
        head = header_end(data)
        assert old in data[:head] and len(old) == len(new)
        entry.write_bytes(data[:head].replace(old, new) + data[head:])
    return damage


def rewrite_sidecar(**changes):
    def damage(entry, sidecar, cache):
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), **changes}))
    return damage


def sidecar_of_another_entry(entry, sidecar, cache):
    get(cache, OTHER_ENCODER, scale=2.0)  # same items, same shape: only the key and the values differ
    [other] = [e for e in cache.entries() if e.path != entry]
    sidecar.write_bytes(other.path.with_suffix(".json").read_bytes())


def swap_rows(entry, sidecar, cache):
    data = entry.read_bytes()
    head, row = header_end(data), 3 * 4
    body = data[head:]
    entry.write_bytes(data[:head] + body[row:2 * row] + body[:row] + body[2 * row:])


def nan_injected(entry, sidecar, cache):
    data = bytearray(entry.read_bytes())
    data[header_end(data):header_end(data) + 4] = np.float32(np.nan).tobytes()
    entry.write_bytes(bytes(data))


def npz_instead(entry, sidecar, cache):
    with open(entry, "wb") as f:
        np.savez(f, x=encode(ITEMS))


def directory_instead(entry, sidecar, cache):
    entry.unlink()
    entry.mkdir()
    (entry / "inside").write_text("not an array")


CORRUPTIONS = {
    # the .npy file
    "data byte flipped": lambda e, s, c: e.write_bytes(flip(e.read_bytes(), header_end(e.read_bytes()) + 4)),
    "header byte flipped": lambda e, s, c: e.write_bytes(flip(e.read_bytes(), e.read_bytes().index(b"<f4"), 0x02)),
    "truncated": lambda e, s, c: e.write_bytes(e.read_bytes()[:-5]),
    "empty file": lambda e, s, c: e.write_bytes(b""),
    "zero-length data": lambda e, s, c: e.write_bytes(e.read_bytes()[:header_end(e.read_bytes())]),
    "two rows swapped": swap_rows,
    "shape changed in header": in_header(b"(3, 3)", b"(1, 9)"),
    "dtype float64 in header": in_header(b"<f4", b"<f8"),
    "dtype float16 in header": in_header(b"<f4", b"<f2"),
    "dtype int32 in header": in_header(b"<f4", b"<i4"),
    "fortran_order flipped": in_header(b"False", b"True "),
    "pickled object array": lambda e, s, c: e.write_bytes(npy_bytes(np.array([{"rows": 3}], dtype=object), True)),
    "extra trailing bytes": lambda e, s, c: e.write_bytes(e.read_bytes() + b"\0" * 16),
    "npz instead of npy": npz_instead,
    "directory instead of npy": directory_instead,
    "NaN injected": nan_injected,
    # the JSON sidecar
    "sidecar missing": lambda e, s, c: s.unlink(),
    "sidecar not JSON": lambda e, s, c: s.write_text("{'shape': [3, 3]"),
    "sidecar with a wrong checksum": rewrite_sidecar(sha256="0" * 64),
    "sidecar with a wrong shape": rewrite_sidecar(shape=[3, 2]),
    "sidecar of another entry": sidecar_of_another_entry,
    "file unreadable": None,  # below: tests run as root, where chmod 000 does not stop a read
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_damaged_entry_is_detected_encoded_again_and_repaired(tmp_path, caplog, monkeypatch, kind):
    cache = EmbeddingCache(tmp_path)
    expected = get(cache)
    [entry] = cache.entries()
    npy, sidecar = entry.path, entry.path.with_suffix(".json")
    if kind == "file unreadable":
        refuse_to_open(monkeypatch, npy)
    else:
        CORRUPTIONS[kind](npy, sidecar, cache)

    fresh = EmbeddingCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="alignbench.cache"):
        got = get(fresh)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.float32
    assert fresh.encoded_items == len(ITEMS), "the damaged entry was trusted"
    assert "unusable" in caplog.text and npy.name in caplog.text

    monkeypatch.undo()
    repaired = EmbeddingCache(tmp_path)
    np.testing.assert_array_equal(get(repaired), expected)
    assert repaired.encoded_items == 0, "the entry was not repaired"


def refuse_to_open(monkeypatch, path):
    """Opening ``path`` fails as an unreadable file does (EACCES); everything else opens normally."""
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(os.fspath(file)) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def test_twenty_kinds_in_twenty_two_cases():
    assert len(CORRUPTIONS) == 22  # 20 kinds; the dtype kind is tried as float64, float16 and int32
