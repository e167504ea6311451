import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from alignbench.cache import EmbeddingCache, items_digest
from alignbench.cli import cli
from alignbench.runner import Runner, Sweep
from counting_plugin import RawToyDataset, ToyImageEncoder, ToyTextEncoder

ENCODER = {"name": "toy", "params": {"scale": 1}}
DATASET = {"dataset": "toy", "split": "train", "side": "image"}


def encode(items):
    return np.asarray(items, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)


def get(cache, items, encoder=ENCODER, dataset=DATASET):
    return cache.get_or_encode(encode, items, encoder_identity=encoder, dataset_identity=dataset,
                               ids_hash=items_digest(map(str, items)))


def test_second_request_is_served_from_disk(tmp_path):
    cache = EmbeddingCache(tmp_path)
    first = get(cache, [1, 2, 3])
    assert cache.encoded_items == 3
    again = EmbeddingCache(tmp_path)
    np.testing.assert_array_equal(get(again, [1, 2, 3]), first)
    assert again.encoded_items == 0


@pytest.mark.parametrize("change", ["encoder", "dataset", "items"])
def test_any_change_to_the_key_encodes_again(tmp_path, change):
    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    if change == "encoder":
        get(cache, [1, 2, 3], encoder={**ENCODER, "params": {"scale": 2}})
    elif change == "dataset":
        get(cache, [1, 2, 3], dataset={**DATASET, "split": "test"})
    else:
        get(cache, [1, 2, 4])
    assert cache.encoded_items == 6
    assert len(cache.entries()) == 2


def test_a_crash_mid_write_leaves_no_readable_file(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)

    def crash(file, array, allow_pickle):
        file.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        get(cache, [1, 2, 3])
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary file remains


@pytest.mark.parametrize("damage", ["truncate", "shape", "ids", "nan"])
def test_a_damaged_entry_is_encoded_again_with_a_warning(tmp_path, caplog, damage):
    cache = EmbeddingCache(tmp_path)
    expected = get(cache, [1, 2, 3])
    [entry] = cache.entries()
    if damage == "truncate":
        entry.path.write_bytes(entry.path.read_bytes()[:40])
    elif damage == "shape":
        np.save(entry.path, np.zeros((2, 3), np.float32))
    elif damage == "ids":
        meta = json.loads(entry.path.with_suffix(".json").read_text())
        entry.path.with_suffix(".json").write_text(json.dumps({**meta, "ids_hash": "other"}))
    else:
        np.save(entry.path, np.full((3, 3), np.nan, np.float32))
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(get(EmbeddingCache(tmp_path), [1, 2, 3]), expected)
    assert "unusable" in caplog.text


def test_a_raw_sweep_run_twice_encodes_nothing_the_second_time(registry, tmp_path):
    from alignbench.store import ResultStore

    sweep = Sweep(aligners=[("lstsq", {})], datasets=[("raw-toy", {})], levels=[10], seeds=[0],
                  encoders={"image": ("toy-image", {}), "text": ("toy-text", {})})
    ToyImageEncoder.calls = 0
    with ResultStore(tmp_path / "a.sqlite") as store:
        Runner(registry, store, cache=EmbeddingCache(tmp_path / "c")).run(sweep)
    assert ToyImageEncoder.calls == 2  # train and test
    cache = EmbeddingCache(tmp_path / "c")
    with ResultStore(tmp_path / "b.sqlite") as store:  # a fresh store: every cell runs again
        summary = Runner(registry, store, cache=cache).run(sweep)
    assert summary.ran == 1 and ToyImageEncoder.calls == 2 and cache.encoded_items == 0


def test_repeated_captions_are_encoded_once_and_get_identical_embeddings(registry, tmp_path):
    from alignbench.store import ResultStore

    sweep = Sweep(aligners=[("lstsq", {})], datasets=[("raw-toy", {"repeated_captions": True})], levels=[10],
                  seeds=[0], encoders={"image": ("toy-image", {}), "text": ("toy-text", {})})
    ToyTextEncoder.batches = []
    with ResultStore(tmp_path / "a.sqlite") as store:
        runner = Runner(registry, store, cache=EmbeddingCache(tmp_path / "c"))
        splits = runner.splits_for(runner.plan(sweep)[0].config)
    encoded = [text for batch in ToyTextEncoder.batches for text in batch]
    assert len(encoded) == len(set(encoded)) == 120  # 60 distinct captions per split, each encoded once
    y, text_item = splits.train.y, splits.train.text_item
    assert y.shape == (120, 4)
    np.testing.assert_array_equal(y[0::2], y[1::2])  # an item's two identical captions: bit for bit
    assert (text_item[0::2] == text_item[1::2]).all()


def test_cache_commands_list_and_remove(tmp_path):
    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    get(cache, [4, 5])
    listing = CliRunner().invoke(cli, ["cache", "ls", "--cache-dir", str(tmp_path)])
    assert "2 entries" in listing.output and "toy train image" in listing.output and "3x3" in listing.output
    key = cache.entries()[0].key[:8]
    removed = CliRunner().invoke(cli, ["cache", "rm", key, "--cache-dir", str(tmp_path)])
    assert "removed 1 entries" in removed.output and len(cache.entries()) == 1
    nothing = CliRunner().invoke(cli, ["cache", "rm", "--cache-dir", str(tmp_path)])
    assert nothing.exit_code == 1 and "--all" in nothing.output
    CliRunner().invoke(cli, ["cache", "rm", "--all", "--cache-dir", str(tmp_path)])
    assert cache.entries() == []


@pytest.mark.parametrize("keys", [[""], [" "], ["zzz"], ["", "zzz"]])
def test_an_empty_or_unmatched_key_removes_nothing_and_says_so_in_one_line(tmp_path, keys):
    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    get(cache, [4, 5])
    result = CliRunner().invoke(cli, ["cache", "rm", *keys, "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1 and len(cache.entries()) == 2
    message = result.output.strip()
    assert message.startswith("Error: ") and "\n" not in message
    assert ("--all" in message) if any(not k.strip() for k in keys) else ("'zzz'" in message and "cache ls" in message)


def test_a_key_and_all_together_are_refused(tmp_path):
    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    result = CliRunner().invoke(cli, ["cache", "rm", "--all", "", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1 and "not both" in result.output and len(cache.entries()) == 1


def _temporary(directory, key, owner, age_s):
    import os
    import time

    path = directory / f".{key}.npy.{owner}abcd1234.tmp"
    path.write_bytes(b"\x93NUMPY partial")
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_stale_temporary_files_are_listed_and_cleaned_but_live_writes_are_left(tmp_path):
    import os

    from alignbench.cache import _host

    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    key = cache.entries()[0].key
    old = _temporary(tmp_path, key, "", 2 * 3600)  # written before owners were recorded, two hours ago
    dead = _temporary(tmp_path, key, f"{2**22 + 12345}@{_host()}.", 10)  # no such process
    live = _temporary(tmp_path, key, f"{os.getpid()}@{_host()}.", 10)  # this process: a write under way
    elsewhere = _temporary(tmp_path, key, "1@other-host.", 10)  # another machine's write, recent
    assert {t.path: t.stale for t in cache.temporaries()} == {old: True, dead: True, live: False, elsewhere: False}

    listing = CliRunner().invoke(cli, ["cache", "ls", "--cache-dir", str(tmp_path)])
    assert "1 entries" in listing.output and "4 temporary files" in listing.output
    states = [line.split()[-1] for line in listing.output.splitlines() if line.startswith(".")]
    assert sorted(states) == ["stale", "stale", "written", "written"]

    get(cache, [7, 8])  # the next write cleans up
    assert sorted(p.name for p in tmp_path.glob(".*.tmp")) == sorted([live.name, elsewhere.name])
    assert len(cache.entries()) == 2


def test_rm_all_removes_stale_temporary_files_too(tmp_path):
    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    _temporary(tmp_path, cache.entries()[0].key, "", 2 * 3600)
    result = CliRunner().invoke(cli, ["cache", "rm", "--all", "--cache-dir", str(tmp_path)])
    assert "removed 1 entries and 1 stale temporary files" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_entry_without_a_checksum_is_encoded_again_not_trusted(tmp_path, caplog):
    """Taking "format" out of a sidecar made a damaged .npy be served, and blessed with a checksum of
    its damaged bytes: an entry whose bytes cannot be checked is encoded again."""
    cache = EmbeddingCache(tmp_path)
    expected = get(cache, [1, 2, 3])
    [entry] = cache.entries()
    sidecar = entry.path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    legacy = {k: v for k, v in meta.items() if k not in ("format", "key", "sha256")}
    sidecar.write_text(json.dumps(legacy))
    np.save(entry.path, expected + 1)  # damaged: still finite, of the right shape and dtype
    again = EmbeddingCache(tmp_path)
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(get(again, [1, 2, 3]), expected)
    assert again.encoded_items == 3
    [line] = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
    assert "no checksum recorded" in line and "encoding again" in line
    assert json.loads(sidecar.read_text())["sha256"] == meta["sha256"]  # rewritten from the new encoding
    third = EmbeddingCache(tmp_path)
    np.testing.assert_array_equal(get(third, [1, 2, 3]), expected)
    assert third.encoded_items == 0


def test_an_entry_without_its_sidecar_is_listed_and_removable(tmp_path):
    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    [entry] = cache.entries()
    entry.path.with_suffix(".json").unlink()
    assert [e.key for e in cache.entries()] == [entry.key]
    assert cache.remove([entry.key[:6]]) == 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("changed", [ToyImageEncoder, RawToyDataset], ids=["encoder", "dataset"])
def test_a_component_whose_version_changes_is_encoded_and_its_cells_run_again(registry, tmp_path, monkeypatch,
                                                                              changed):
    """Code that gives other embeddings (an encoder) or other splits (a dataset: other captions) for
    the same parameters and files bumps its ``version``: neither the embedding cache (images are keyed
    by their ids, which stay the same) nor the results store may serve the old code's."""
    from alignbench.store import ResultStore

    sweep = Sweep(aligners=[("lstsq", {})], datasets=[("raw-toy", {})], levels=[10], seeds=[0],
                  encoders={"image": ("toy-image", {}), "text": ("toy-text", {})})
    ToyImageEncoder.calls = 0
    with ResultStore(tmp_path / "s.sqlite") as store:
        Runner(registry, store, cache=EmbeddingCache(tmp_path / "c")).run(sweep)
        assert ToyImageEncoder.calls == 2
        same = Runner(registry, store, cache=EmbeddingCache(tmp_path / "c")).run(sweep)
        assert same.ran == 0 and ToyImageEncoder.calls == 2
        monkeypatch.setattr(changed, "version", "2")
        bumped = Runner(registry, store, cache=EmbeddingCache(tmp_path / "c")).run(sweep)
        assert bumped.ran == 1 and ToyImageEncoder.calls == 4  # train and test encoded anew
        keys = [r.key for r in store.records()]
        assert len(keys) == 2 and keys[0] != keys[1]


def test_a_perturbation_whose_version_changes_corrupts_and_runs_its_cells_again(registry, tmp_path, monkeypatch):
    """Code that damages the same items otherwise bumps the perturbation's ``version``: its corrupted
    copies are encoded again and its damaged cells run again; the clean cells are kept."""
    from alignbench.store import ResultStore
    from alignbench_plugins.perturbations.images import ImageNoise

    sweep = Sweep(aligners=[("lstsq", {})], datasets=[("raw-toy", {"n_items": 60})], levels=[10], seeds=[0],
                  encoders={"image": ("toy-image", {}), "text": ("toy-text", {})},
                  perturbations=[("image-noise", {})], fractions=[50])
    ToyImageEncoder.calls = 0
    with ResultStore(tmp_path / "s.sqlite") as store:
        first = Runner(registry, store, cache=EmbeddingCache(tmp_path / "c")).run(sweep)
        assert first.ran == 2 and ToyImageEncoder.calls == 3  # train, test, corrupted train
        monkeypatch.setattr(ImageNoise, "version", "3")
        bumped = Runner(registry, store, cache=EmbeddingCache(tmp_path / "c")).run(sweep)
        assert (bumped.ran, bumped.skipped) == (1, 1) and ToyImageEncoder.calls == 4
        assert len(store.records()) == 3


def test_a_cache_that_is_a_file_is_named_not_listed_as_empty(tmp_path, monkeypatch):
    a_file = tmp_path / "cache"
    a_file.write_text("not a folder")
    monkeypatch.setenv("ALIGNBENCH_CACHE", str(a_file))
    listing = CliRunner().invoke(cli, ["cache", "ls"])
    assert listing.exit_code == 1 and "0 entries" not in listing.output
    [line] = listing.output.strip().splitlines()
    assert f"the embedding cache {a_file} ($ALIGNBENCH_CACHE) is a file; point it at a folder" in line


def test_raw_items_are_keyed_by_their_ids_and_content_signatures(tmp_path):
    """Arrays by their bytes, files by their size (a resized copy of a collection in another folder
    has other sizes; a moved one keeps its key), ids with a content digest by themselves."""
    from alignbench.cache import raw_items_digest

    ids = ("val2014/a.jpg", "val2014/b.jpg")
    for folder, sizes in (("one", (10, 20)), ("moved", (10, 20)), ("resized", (10, 19))):
        (tmp_path / folder).mkdir()
        for name, size in zip("ab", sizes):
            (tmp_path / folder / f"{name}.jpg").write_bytes(b"x" * size)
    key = {folder: raw_items_digest(ids, [str(tmp_path / folder / f"{n}.jpg") for n in "ab"])
           for folder in ("one", "moved", "resized")}
    assert key["one"] == key["moved"] != key["resized"]
    pixels = [np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8)]
    assert raw_items_digest(ids, pixels) != raw_items_digest(ids, pixels[::-1])
    assert raw_items_digest(ids, pixels) != raw_items_digest(ids, [p.astype(np.uint16) for p in pixels])
    pinned = ("a@0123456789abcdef", "b@fedcba9876543210")
    assert raw_items_digest(pinned, pixels) == raw_items_digest(pinned, pixels[::-1])
    at = ("img@2x.png", "user@host/b.png")  # an @ in a name is no content digest
    assert raw_items_digest(at, pixels) != raw_items_digest(at, pixels[::-1])


@pytest.mark.parametrize("out, said", [
    ("none", "encoder 'toy-image-bent' returned None; return an (items, d) array of real numbers, one row per item"),
    ("text", "encoder 'toy-image-bent' returned str, not an array of numbers"),
    ("rows", "encoder 'toy-image-bent' returned 59 rows for 60 items; return an (items, d) array"),
    ("wide", "encoder 'toy-image-bent' returned 5 columns, but its dim is 4"),
    ("nan", "encoder 'toy-image-bent' returned NaN or infinite values in 1 of 60 rows"),
])
@pytest.mark.parametrize("cached", [True, False])
def test_an_encoder_output_of_the_wrong_shape_is_one_line_naming_the_encoder(registry, tmp_path, out, said, cached):
    from alignbench.errors import AlignbenchError
    from alignbench.store import ResultStore

    sweep = Sweep(aligners=[("lstsq", {})], datasets=[("raw-toy", {})], levels=[10], seeds=[0],
                  encoders={"image": ("toy-image-bent", {"out": out}), "text": ("toy-text", {})})
    with ResultStore(tmp_path / "a.sqlite") as store, pytest.raises(AlignbenchError) as caught:
        Runner(registry, store, cache=EmbeddingCache(tmp_path / "c") if cached else None).run(sweep)
    assert said in str(caught.value) and "\n" not in str(caught.value)
    assert not list((tmp_path / "c").glob("*.npy"))  # nothing of it is cached


@pytest.mark.parametrize("sidecar", [{"dataset": [1]}, {"encoder": "x", "dataset": {"split": {}}, "shape": 5,
                                                        "created": [2026]}])
def test_ls_shows_a_question_mark_for_sidecar_fields_of_the_wrong_type(tmp_path, sidecar):
    cache = EmbeddingCache(tmp_path)
    get(cache, [1, 2, 3])
    [entry] = cache.entries()
    entry.path.with_suffix(".json").write_text(json.dumps(sidecar))
    listing = CliRunner().invoke(cli, ["cache", "ls", "--cache-dir", str(tmp_path)])
    assert listing.exit_code == 0 and "Traceback" not in listing.output, listing.output
    [row] = [line for line in listing.output.splitlines() if line.startswith(entry.key[:12])]
    assert row.split()[1:6] == ["?", "?", "?", "?", "?"] and row.split()[-1] == "?"
