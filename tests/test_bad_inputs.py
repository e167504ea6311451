"""Bad inputs through the command line: each ends in one line naming the problem and the fix (at most two
lines of error output), a non-zero exit and no traceback, and it is found before any cell runs.

The table covers user files (embeddings), results stores, output directories, seeds and levels,
component parameters, perturbations and encoder options. An unwritable embedding cache is not an
error: the sweep warns once and goes on without caching, and its results are written.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from alignbench.cli import cli
from alignbench.store import CellRecord, ResultStore
from fake_distributions import make_distribution

SWEEP = ["--seeds", "0", "--anchors", "5", "--aligner", "procrustes"]
GMM = ["--dataset", "synthetic-gmm", "--param", "synthetic-gmm.n_items=200"]
X = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)


# ------------------------------------------------------------------ makers: each returns the CLI arguments


def npz(tmp: Path, name: str = "pairs.npz", **arrays) -> str:
    np.savez(tmp / name, **arrays)
    return str(tmp / name)


def npy(tmp: Path, name: str, array: np.ndarray) -> str:
    np.save(tmp / name, array, allow_pickle=array.dtype == object)
    return str(tmp / name)


def raw(tmp: Path, name: str, data: bytes) -> str:
    (tmp / name).write_bytes(data)
    return str(tmp / name)


def embeddings(*assignments: str) -> list[str]:
    """A run over the embeddings dataset with the given ``KEY=VALUE`` parameters."""
    params = [arg for a in assignments for arg in ("--param", f"embeddings.{a}")]
    return ["run", "--dataset", "embeddings", *params, *SWEEP]


def pairs(tmp: Path, **arrays) -> list[str]:
    """A run over one .npz file holding x=X, y=X, with ``arrays`` replacing or adding arrays."""
    return embeddings(f"path={npz(tmp, **{'x': X, 'y': X, **arrays})}")


def separate(tmp: Path, x: np.ndarray | str, y: np.ndarray | str = X) -> list[str]:
    x_path = x if isinstance(x, str) else npy(tmp, "x.npy", x)
    y_path = y if isinstance(y, str) else npy(tmp, "y.npy", y)
    return embeddings(f"x={x_path}", f"y={y_path}")


def with_nan(row: int) -> np.ndarray:
    x = X.copy()
    x[row, 2] = np.nan
    return x


def truncated(tmp: Path, name: str) -> str:
    path = Path(npz(tmp, name, x=X, y=X)) if name.endswith(".npz") else Path(npy(tmp, name, X))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(path)


def store_with_rows(tmp: Path) -> Path:
    path = tmp / "full.sqlite"
    with ResultStore(path) as results:
        for i in range(400):
            results.put(CellRecord(f"k{i}", "d", "a", 5, 0, "ok", {"pad": "x" * 200}, {"m": 1.0}, {}, {}, "", "t"))
    return path


def truncated_store(tmp: Path) -> str:
    path = store_with_rows(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(path)


def damaged_store(tmp: Path) -> str:
    path = store_with_rows(tmp)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return str(path)


def sqlite_file(tmp: Path, statement: str) -> str:
    path = tmp / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(statement)
    return str(path)


def a_file(tmp: Path, name: str = "a-file") -> Path:
    (tmp / name).write_text("not a directory\n")
    return tmp / name


def store(path: str) -> list[str]:
    return ["run", *GMM, *SWEEP, "--store", path]


# (id, arguments from a temporary directory, a phrase the one-line error must contain)
CASES = [
    # embeddings files that cannot be read
    ("pickled-npy", lambda t: separate(t, npy(t, "x.npy", np.array([{"a": 1}] * 40, dtype=object))), "pickle"),
    ("pickled-member-of-npz", lambda t: pairs(t, x=np.array([{"a": 1}] * 40, dtype=object)), "pickle"),
    ("string-array", lambda t: separate(t, X.astype(str)), "dtype <U"),
    ("truncated-npz", lambda t: embeddings(f"path={truncated(t, 'p.npz')}"), "cannot read"),
    ("truncated-npy", lambda t: separate(t, truncated(t, "x.npy")), "cannot read"),
    ("text-as-npz", lambda t: embeddings("path=" + raw(t, "p.npz", b"x,y\n1,2\n")), "is not a zip archive"),
    ("text-as-npy", lambda t: separate(t, raw(t, "x.npy", b"1 2 3")), "is not a .npy file"),
    ("garbage-safetensors", lambda t: embeddings(f"path={raw(t, 'p.safetensors', bytes(range(256)) * 4)}"),
     "not a safetensors file"),
    ("empty-safetensors-file", lambda t: embeddings(f"path={raw(t, 'p.safetensors', b'')}"), "cannot read"),
    ("path-is-a-directory", lambda t: embeddings(f"path={t}"), "is a directory"),
    ("path-missing", lambda t: embeddings(f"path={t / 'missing.npz'}"), "does not exist"),
    ("unknown-suffix", lambda t: embeddings(f"path={raw(t, 'p.txt', b'1 2')}"), "use a .npz, .safetensors or .npy"),
    ("x-without-y", lambda t: embeddings(f"x={npy(t, 'x.npy', X)}"), "embeddings.x is set but embeddings.y is not"),
    ("path-and-x", lambda t: embeddings(f"path={npz(t, x=X, y=X)}", f"x={npy(t, 'x.npy', X)}"),
     "embeddings.x would be ignored"),
    ("npy-with-two-arrays-as-x", lambda t: separate(t, npz(t, "x.npz", a=X, b=X)), "holds 2 arrays"),
    # embeddings files with the wrong content
    ("no-y-array", lambda t: embeddings(f"path={npz(t, x=X)}"), "no array named 'y'"),
    ("one-dimensional-x", lambda t: pairs(t, x=X[:, 0]), "expected a 2-D"),
    ("three-dimensional-x", lambda t: pairs(t, x=X.reshape(40, 3, 2)), "expected a 2-D"),
    ("zero-width-x", lambda t: pairs(t, x=np.zeros((40, 0), np.float32)), "no columns"),
    ("zero-rows", lambda t: pairs(t, x=np.zeros((0, 6), np.float32), y=np.zeros((0, 6), np.float32)), "no rows"),
    ("nan-at-file-row-3", lambda t: pairs(t, x=with_nan(3)), "x in"),
    ("inf-in-y", lambda t: pairs(t, y=np.where(np.arange(40)[:, None] == 7, np.inf, X)), "first: [7]"),
    ("complex-x", lambda t: pairs(t, x=X.astype(np.complex64)), "expected real numbers"),
    ("structured-x", lambda t: pairs(t, x=np.zeros(40, dtype=[("a", "f4"), ("b", "f4")])), "expected a 2-D"),
    ("bool-x", lambda t: pairs(t, x=X > 0), "dtype bool"),
    ("rows-differ-without-text_item", lambda t: pairs(t, y=X[:30]), "no text_item array"),
    ("float-text_item", lambda t: pairs(t, text_item=np.arange(40) + 0.5), "non-integer values at row(s) [0"),
    ("text_item-out-of-range", lambda t: pairs(t, text_item=np.arange(40) + 1), "row 39 is 40"),
    ("text_item-wrong-length", lambda t: pairs(t, text_item=np.arange(10)), "one item index per text"),
    ("test-mask-not-0-or-1", lambda t: pairs(t, test=np.full(40, 2)), "mask of 0/1"),
    ("test-mask-all-test", lambda t: pairs(t, test=np.ones(40, bool)), "both train and test items"),
    ("embeddings-test_fraction-1", lambda t: embeddings(f"path={npz(t, x=X, y=X)}", "test_fraction=1"),
     "embeddings.test_fraction must be > 0 and < 1, got 1.0"),
    # results stores
    ("store-not-sqlite", lambda t: store(raw(t, "s.sqlite", b"key,value\n" * 200)), "not a SQLite database"),
    ("store-a-short-text-file", lambda t: store(raw(t, "s.sqlite", b"x")), "not a SQLite database"),
    ("store-sqlite-header-then-garbage", lambda t: store(raw(t, "s.sqlite", b"SQLite format 3\x00" + bytes(range(256)) * 8)),
     "results store"),
    ("store-truncated", lambda t: store(truncated_store(t)), "results store"),
    ("store-damaged", lambda t: store(damaged_store(t)), "damaged"),
    ("store-other-schema", lambda t: store(sqlite_file(t, "CREATE TABLE results (a, b)")), "another schema"),
    ("store-of-another-program", lambda t: store(sqlite_file(t, "CREATE TABLE users (name)")), "something else"),
    ("store-is-a-directory", lambda t: store(str(t)), "is a directory"),
    ("store-under-a-file", lambda t: store(str(a_file(t) / "results.sqlite")), "is a file, not a directory"),
    # output directories (checked before the sweep: no cell is stored)
    ("out-is-a-file", lambda t: ["run", *GMM, *SWEEP, "--out", str(a_file(t))], "is a file"),
    ("out-under-a-file", lambda t: ["run", *GMM, *SWEEP, "--out", str(a_file(t) / "boards")], "cannot be made"),
    ("robustness-out-is-a-file", lambda t: ["robustness", *GMM, *SWEEP, "--perturbation", "drop:text",
                                            "--fractions", "50", "--out", str(a_file(t))], "is a file"),
    # seeds and supervision levels
    ("negative-seed", lambda t: ["run", *GMM, "--seeds", "-1", "--anchors", "5", "--aligner", "procrustes"],
     "seeds must be integers from 0"),
    ("seed-2**63", lambda t: ["run", *GMM, "--seeds", str(2**63), "--anchors", "5", "--aligner", "procrustes"],
     "2**63 - 1"),
    ("fractional-seed", lambda t: ["run", *GMM, "--seeds", "1.5", "--anchors", "5"], "--seeds must be"),
    ("no-seeds", lambda t: ["run", *GMM, "--seeds", ",", "--anchors", "5"], "--seeds is empty"),
    ("negative-level", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "-5"], "levels must be integers >= 0"),
    ("level-2**63", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", str(2**63), "--aligner", "procrustes"],
     "at most 2**63 - 1"),
    # dataset parameters
    ("gmm-negative-n_items", lambda t: ["run", "--dataset", "synthetic-gmm", "--param", "synthetic-gmm.n_items=-10",
                                        *SWEEP], "synthetic-gmm.n_items must be >= 2, got -10"),
    ("gmm-n_items-1e11", lambda t: ["run", "--dataset", "synthetic-gmm", "--param", "synthetic-gmm.n_items=1e11",
                                    *SWEEP], "must be int"),
    ("gmm-n_items-10**11", lambda t: ["run", "--dataset", "synthetic-gmm", "--param",
                                      f"synthetic-gmm.n_items={10**11}", *SWEEP], "GiB of memory"),
    ("gmm-one-item", lambda t: ["run", "--dataset", "synthetic-gmm", "--param", "synthetic-gmm.n_items=1", *SWEEP],
     "n_items must be >= 2"),
    ("gmm-nan-noise", lambda t: [*["run", *GMM], "--param", "synthetic-gmm.noise=NaN", *SWEEP], "finite"),
    ("gmm-negative-noise", lambda t: [*["run", *GMM], "--param", "synthetic-gmm.noise=-1", *SWEEP], ">= 0"),
    ("gmm-infinite-separation", lambda t: [*["run", *GMM], "--param", "synthetic-gmm.separation=Infinity", *SWEEP],
     "finite"),
    ("gmm-test_fraction-1.5", lambda t: [*["run", *GMM], "--param", "synthetic-gmm.test_fraction=1.5", *SWEEP],
     "test_fraction must be > 0 and < 1"),
    ("gmm-zero-dim_x", lambda t: [*["run", *GMM], "--param", "synthetic-gmm.dim_x=0", *SWEEP], "dim_x must be >= 1"),
    ("correlated-correlation-2", lambda t: ["run", "--dataset", "synthetic-correlated", "--param",
                                            "synthetic-correlated.correlation=2", *SWEEP], "correlation must be"),
    ("correlated-no-captions", lambda t: ["run", "--dataset", "synthetic-correlated", "--param",
                                          "synthetic-correlated.n_captions=0", *SWEEP], "n_captions must be >= 1"),
    ("correlated-no-classes", lambda t: ["run", "--dataset", "synthetic-correlated", "--param",
                                         "synthetic-correlated.n_classes=0", *SWEEP], "n_classes must be >= 1"),
    # aligner and metric parameters (each numeric one declares its range; these once failed cell by cell)
    ("fmap-no-neighbours", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "5", "--aligner", "fmap", "--param",
                                      "fmap.n_neighbors=0"], "fmap.n_neighbors must be >= 1, got 0"),
    ("lstsq-negative-ridge", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "5", "--aligner", "lstsq", "--param",
                                        "lstsq.alpha=-1"], "lstsq.alpha must be >= 0, got -1.0"),
    ("ot-riemannian-zero-temperature", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "5", "--aligner",
                                                  "ot-riemannian", "--param", "ot-riemannian.temperature=0"],
     "ot-riemannian.temperature must be > 0, got 0.0"),
    ("ot-riemannian-sinkhorn-underflow", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "5", "--aligner",
                                                    "ot-riemannian", "--param", "ot-riemannian.sinkhorn_reg=0.01"],
     "ot-riemannian.sinkhorn_reg below 0.05 underflows in float32"),
    ("ot-riemannian-nothing-to-train", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "5", "--aligner",
                                                  "ot-riemannian-contrastive", "--param",
                                                  "ot-riemannian-contrastive.contrastive=0"],
     "ot-riemannian-contrastive: contrastive, ot_weight and riemannian_weight are all 0"),
    ("ot-riemannian-one-neighbour", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "5", "--aligner",
                                               "ot-riemannian-riem", "--param", "ot-riemannian-riem.n_neighbors=1"],
     "ot-riemannian-riem.n_neighbors must be >= 2, got 1"),
    ("retrieval-recall-at-0", lambda t: ["run", *GMM, *SWEEP, "--metric", "retrieval", "--param", "retrieval.ks=[1,0]"],
     "retrieval.ks must be >= 1, got 0"),
    # perturbations and encoders
    ("blur-negative-sigma", lambda t: ["robustness", *GMM, *SWEEP, "--perturbation", "image-blur",
                                       "--param", "image-blur.sigma=-2", "--fractions", "50"],
     "image-blur.sigma must be >= 0, got -2.0"),
    ("perturbation-of-a-missing-modality", lambda t: ["robustness", *GMM, *SWEEP, "--perturbation", "drop:audio",
                                                      "--fractions", "50"], "damages 'audio'"),
    ("fraction-150", lambda t: ["robustness", *GMM, *SWEEP, "--perturbation", "drop:text", "--fractions", "150"],
     "150"),
    ("image-encoder-on-embedded-data", lambda t: ["run", *GMM, *SWEEP, "--image-encoder", "minilm"],
     "would be ignored"),
    ("input-corruption-of-embeddings", lambda t: ["robustness", *GMM, *SWEEP, "--perturbation", "image-noise",
                                                  "--fractions", "50"], "image-noise corrupts raw items"),
    ("two-modalities-for-one-perturbation", lambda t: ["robustness", *GMM, *SWEEP, "--perturbation", "drop:image",
                                                       "--param", "drop.modality=text", "--fractions", "50"],
     "name different modalities"),
    ("too-many-workers", lambda t: ["run", *GMM, *SWEEP, "--workers", "100000"], "--workers 100000 is more than"),
    ("default-encoder-not-named", lambda t: ["run", "--dataset", "skimage-photos", "--param", "minilm.batch_size=8",
                                             *SWEEP], "takes parameters once named: --text-encoder minilm"),
    ("seed-twice", lambda t: ["run", *GMM, "--seeds", "0,1,0", "--anchors", "5"], "seed 0 is given twice"),
    ("level-twice", lambda t: ["run", *GMM, "--seeds", "0", "--anchors", "5,5"], "supervision level 5 is given twice"),
    ("metric-twice", lambda t: ["run", *GMM, *SWEEP, "--metric", "retrieval", "--metric", "retrieval"],
     "metric retrieval is given twice"),
    ("fractions-not-integers", lambda t: ["robustness", *GMM, *SWEEP, "--perturbation", "drop:text", "--fractions",
                                          "half"], "like 20,50,80"),
    # paths that click would quietly turn into other paths
    ("store-with-trailing-slash", lambda t: ["run", *GMM, *SWEEP, "--store", f"{t}/results/"],
     "ends in '/', so it names a folder; name a file in it"),
    ("empty-out", lambda t: ["run", *GMM, *SWEEP, "--out", ""], "--out is empty; name a folder"),
    ("store-ending-in-dot", lambda t: ["run", *GMM, *SWEEP, "--store", f"{t}/results/."],
     "ends in '.', so it names a folder"),
    ("export-out-with-trailing-slash", lambda t: ["export", "--out", f"{t}/submission/"],
     "/submission/NAME.json"),
    ("empty-cache-dir", lambda t: ["run", *GMM, *SWEEP, "--cache-dir", ""], "--cache-dir is empty"),
]

@pytest.fixture
def invoke(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNBENCH_STORE", str(tmp_path / "store.sqlite"))

    def invoke(args):
        if "--out" not in args and args[0] in ("run", "robustness"):
            args = [*args, "--out", str(tmp_path / "boards")]
        return CliRunner().invoke(cli, args)

    return invoke


def stored_cells(path: Path) -> int:
    if not path.is_file():
        return 0
    with ResultStore(path) as results:
        return len(results)


@pytest.mark.parametrize("make, phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_before_any_work(invoke, tmp_path, make, phrase):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = make(inputs)
    user_files = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    result = invoke(args)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{type(result.exception).__name__}: {result.exception}"
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    error = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(error) <= 2, result.stderr
    assert error[0].startswith("Error: "), result.stderr
    assert phrase in result.stderr, result.stderr
    assert stored_cells(tmp_path / "store.sqlite") == 0, "a cell ran before the input was refused"
    assert not (tmp_path / "boards").exists()
    for path, content in user_files.items():  # a bad store or file is reported, never rewritten
        assert path.read_bytes() == content, f"{path} was changed"


def test_a_diagnosis_with_no_finished_cell_says_why_in_one_line(invoke, tmp_path):
    """Every level beyond the train split: the cells are n/a (and stored as such), and the diagnosis
    names the reason instead of failing with an IndexError."""
    result = invoke(["diagnose", "--dataset", "synthetic-gmm", "--param", "synthetic-gmm.n_items=200", "--anchors",
                     "100000", "--seeds", "0", "--out", str(tmp_path / "diagnosis")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert "no cell finished" in line and "100000 anchors asked for; the train split has 100 items" in line


def test_nan_is_reported_at_the_files_row(invoke, tmp_path):
    result = invoke(pairs(tmp_path, x=with_nan(3)))
    assert f"x in {tmp_path / 'pairs.npz'} contains NaN or inf in 1 row(s) (first: [3])" in result.stderr


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_an_unwritable_out_is_refused_before_the_sweep(invoke, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = invoke(["run", *GMM, *SWEEP, "--out", str(locked / "boards")])
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 1 and "is not writable" in result.stderr
    assert stored_cells(tmp_path / "store.sqlite") == 0


def test_a_real_process_prints_no_traceback(tmp_path):
    bad_store = raw(tmp_path, "s.sqlite", b"not sqlite at all\n" * 100)
    pickled = npy(tmp_path, "x.npy", np.array([{"a": 1}] * 40, dtype=object))
    for args in (store(bad_store), separate(tmp_path, pickled)):
        done = subprocess.run([sys.executable, "-m", "alignbench", *args, "--out", str(tmp_path / "boards")],
                              capture_output=True, text=True, cwd=tmp_path, env={**os.environ,
                              "ALIGNBENCH_STORE": str(tmp_path / "store.sqlite")})
        assert done.returncode == 1
        assert "Traceback" not in done.stderr and 1 <= len(done.stderr.strip().splitlines()) <= 2, done.stderr


# ------------------------------------------------------------------ an unwritable embedding cache


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """raw-toy and its toy encoders (tests/support/counting_plugin.py), installed as a distribution."""
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "toy_entry", "from counting_plugin import *\n")
    monkeypatch.syspath_prepend(str(site))


RAW = ["run", "--dataset", "raw-toy", "--image-encoder", "toy-image", "--text-encoder", "toy-text", "--seeds", "0",
       "--anchors", "5", "--aligner", "procrustes"]


def test_an_unwritable_cache_dir_warns_once_and_the_results_are_kept(invoke, tmp_path, toy_plugin):
    result = invoke([*RAW, "--cache-dir", str(a_file(tmp_path, "cache-is-a-file"))])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "is not writable" in warnings[0] and "--cache-dir" in warnings[0], result.stderr
    assert stored_cells(tmp_path / "store.sqlite") == 1
    assert (tmp_path / "boards" / "raw-toy.md").exists()


def test_a_cache_that_fails_while_writing_warns_and_goes_on(invoke, tmp_path, toy_plugin, monkeypatch, caplog):
    from alignbench.cache import EmbeddingCache

    def full_disk(self, key, array, meta):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EmbeddingCache, "_write", full_disk)
    result = invoke([*RAW, "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if "embedding cache" in r.getMessage()]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert stored_cells(tmp_path / "store.sqlite") == 1


def test_a_negative_procrustes_dim_is_refused(invoke):
    result = invoke(["run", *GMM, *SWEEP, "--param", "procrustes.dim=-3"])
    assert result.exit_code == 1 and "procrustes.dim" in result.stderr


def test_a_read_only_store_is_read_and_refused_for_a_run_in_one_line(invoke, tmp_path, monkeypatch):
    """A store on a read-only disk (or without write permission) was taken for a damaged file, and a
    read-only file crashed `run` with SQLite's error. Tests run as root, whom permissions do not
    stop: the store is made read-only to alignbench by its permission check."""
    path = tmp_path / "store.sqlite"
    assert invoke(["run", *GMM, *SWEEP, "--store", str(path)]).exit_code == 0
    stored = path.read_bytes()
    real_access = os.access
    monkeypatch.setattr("alignbench.store.os.access",
                        lambda p, mode: False if mode == os.W_OK and Path(p) in (path, path.parent) else real_access(p, mode))
    boards = invoke(["leaderboard", "--store", str(path), "--out", str(tmp_path / "boards")])
    assert boards.exit_code == 0, boards.stderr
    assert (tmp_path / "boards" / "synthetic-gmm.csv").is_file()
    result = invoke(["run", *GMM, *SWEEP, "--seeds", "0,1", "--store", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert "is read-only" in line and "pass another --store" in line
    assert path.read_bytes() == stored


@pytest.mark.parametrize("field, value", [("metrics", "[1, 2]"), ("config", "{not json"),
                                          ("metrics", '{"mean_R@1": "abc"}')])
def test_a_damaged_stored_cell_is_named_in_one_line(invoke, tmp_path, field, value):
    path = tmp_path / "store.sqlite"
    assert invoke(["run", *GMM, *SWEEP, "--store", str(path)]).exit_code == 0
    with sqlite3.connect(path) as db:
        [key] = db.execute("SELECT key FROM results LIMIT 1").fetchone()
        db.execute(f"UPDATE results SET {field} = ? WHERE key = ?", (value, key))
    db.close()
    for args in (["leaderboard", "--store", str(path), "--out", str(tmp_path / "boards")],
                 ["export", "--store", str(path), "--out", str(tmp_path / "r.json"), "--name", "me"],
                 ["compare", str(path), str(path)]):
        result = invoke(args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        [line] = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert f"the stored cell {key} is damaged" in line and "DELETE FROM results" in line


def test_export_refuses_a_path_that_is_not_a_regular_file_without_reading_it(invoke, tmp_path):
    """To tell an earlier export (which it may overwrite) from anything else, export read the path: a
    pipe blocked it for good, and /dev/full was read without end."""
    store = store_with_rows(tmp_path)
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    for out in (pipe, Path("/dev/full")):
        done = subprocess.run([sys.executable, "-m", "alignbench", "export", "--store", str(store), "--out", str(out),
                               "--name", "me"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"Error: {out} exists and is not a results file") and "pass a new path" in line


def read_only_to_alignbench(monkeypatch, *paths: Path) -> None:
    """Tests run as root, whom permissions do not stop: these paths are unwritable to alignbench's check."""
    real_access = os.access
    monkeypatch.setattr("alignbench.store.os.access",
                        lambda p, mode: False if mode == os.W_OK and Path(p) in paths else real_access(p, mode))


def test_a_read_only_store_is_read_with_the_rows_still_in_its_write_ahead_log(tmp_path, monkeypatch):
    """A writer killed (or still running) leaves committed rows in the -wal file; reading the store as
    immutable would skip them."""
    path = tmp_path / "store.sqlite"
    with ResultStore(path) as results:
        results.put(CellRecord("k0", "d", "a", 5, 0, "ok", {}, {"m": 1.0}, {}, {}, "", "t"))
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO results SELECT 'k1', dataset, aligner, anchors, seed, status, config, metrics, "
                   "timings, environment, message, finished_at, fitted FROM results")
    writer.commit()
    try:
        assert (tmp_path / "store.sqlite-wal").stat().st_size > 0
        read_only_to_alignbench(monkeypatch, path, tmp_path)
        with ResultStore(path) as results:
            assert results.read_only and [r.key for r in results.records()] == ["k0", "k1"]
    finally:
        writer.close()


def test_a_read_only_store_in_rollback_journal_mode_is_read(tmp_path, monkeypatch):
    """sqlite3 .recover, .backup and VACUUM INTO write rollback-journal files; a read-only connection
    cannot turn them to write-ahead logging, and the store was called damaged."""
    path = tmp_path / "store.sqlite"
    with ResultStore(path) as results:
        results.put(CellRecord("k0", "d", "a", 5, 0, "ok", {}, {"m": 1.0}, {}, {}, "", "t"))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    db.close()
    read_only_to_alignbench(monkeypatch, path)
    with ResultStore(path) as results:
        assert results.read_only and [r.key for r in results.records()] == ["k0"]


def test_a_store_is_judged_by_its_real_folder_not_by_a_link_to_it(tmp_path, monkeypatch):
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    with ResultStore(real / "store.sqlite"):
        pass
    (links / "store.sqlite").symlink_to(real / "store.sqlite")
    read_only_to_alignbench(monkeypatch, links)
    with ResultStore(links / "store.sqlite") as results:
        assert not results.read_only
        results.put(CellRecord("k0", "d", "a", 5, 0, "ok", {}, {"m": 1.0}, {}, {}, "", "t"))
    read_only_to_alignbench(monkeypatch, real)
    with ResultStore(links / "store.sqlite") as results:
        assert results.read_only and [r.key for r in results.records()] == ["k0"]


def test_an_input_corruption_goes_to_the_default_datasets_of_raw_items_only(invoke, tmp_path, monkeypatch):
    """Without --dataset, image-noise skips the default datasets of embeddings (refusing them, or
    marking their cells n/a, was wrong: the user never named them); with none of raw items left it
    says so in one line."""
    import alignbench.cli

    monkeypatch.setattr(alignbench.cli, "DEFAULT_DATASETS", ["synthetic-gmm"])
    monkeypatch.setattr(alignbench.cli, "available_real_datasets", lambda registry: [])
    result = invoke(["robustness", "--perturbation", "image-noise", *SWEEP, "--fractions", "50"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert "none of the default datasets here holds raw items" in line
    assert stored_cells(tmp_path / "store.sqlite") == 0


def test_a_param_reaches_the_aligner_of_the_default_input_corruptions(invoke, tmp_path):
    """The default input corruptions of a dataset of raw items were planned in a sweep without the
    chosen aligners, so any --param for an aligner was 'not in this sweep'."""
    from alignbench.plugins import load_registry

    if not load_registry().create("dataset", "skimage-photos").available():
        pytest.skip("scikit-image's photos are not installed")
    result = invoke(["robustness", "--dataset", "skimage-photos", "--aligner", "procrustes", "--param",
                     "procrustes.dim=3", "--seeds", "0", "--anchors", "5", "--fractions", "50"])
    assert result.exit_code == 0, result.stderr
    with ResultStore(tmp_path / "store.sqlite") as results:
        assert {r.config["aligner"]["params"]["dim"] for r in results.records()} == {3}


def test_a_run_says_why_its_cells_are_not_applicable(invoke, tmp_path):
    """n/a cells were only counted; their reasons were in the store alone."""
    result = invoke(["run", *GMM, "--seeds", "0", "--anchors", "5,100000", "--aligner", "procrustes"])
    assert result.exit_code == 0, result.stderr
    assert "  n/a (1 cell): 100000 anchors asked for; the train split has 100 items" in result.stderr


def test_a_store_named_by_the_environment_with_a_trailing_slash_is_refused_and_an_empty_one_is_unset(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALIGNBENCH_STORE", f"{tmp_path}/results/")
    result = CliRunner().invoke(cli, ["run", *GMM, *SWEEP, "--out", str(tmp_path / "boards")])
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        f"Error: $ALIGNBENCH_STORE {tmp_path}/results/ ends in '/', so it names a folder; name a file in it, "
        f"e.g. {tmp_path}/results/results.sqlite."]
    assert not (tmp_path / "results").exists()
    monkeypatch.setenv("ALIGNBENCH_STORE", "")
    result = CliRunner().invoke(cli, ["run", *GMM, *SWEEP, "--out", str(tmp_path / "boards")])
    assert result.exit_code == 0, result.output
    assert stored_cells(tmp_path / ".alignbench" / "results.sqlite") == 1
