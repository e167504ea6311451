"""The default sweep's numbers do not depend on the CPU.

CI and the committed leaderboards run on whichever machines submissions come from (an AMD EPYC made
the tables, an Intel Xeon failed to reproduce them). Two things differ from CPU to CPU: the BLAS
kernels (OpenBLAS picks one per CPU type; the thread count changes blocking) and therefore the last
bits of every embedding an encoder writes. Both are emulated here on one machine: the same sweep
runs in two processes, one with OpenBLAS's Haswell kernels on 2 threads, the other with its
Sandybridge kernels on 1 thread and embeddings moved by one float32 ulp (identical captions stay
identical, as the runner encodes each distinct text once). The data has Fashion-MNIST's shape: every
item's five captions are its class's five strings, so instance-level ranks are full of exact ties,
and the caption graph is one of duplicates.

The bound: every metric of every cell agrees to within ``CROSS_CPU_TOLERANCE`` (a rate: 1% of the
queries; a rank: 1%), which the committed-leaderboard check uses too (tests/support/cross_cpu.py).
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cross_cpu import CROSS_CPU_TOLERANCE

ALIGNERS = ["lstsq", "procrustes", "relative", "nullspace", "fmap", "fmap-spectral"]


def duplicate_caption_pairs(seed=0, n_items=600, n_classes=10, templates=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_items)
    centres_x = rng.standard_normal((n_classes, 64))
    x = centres_x[labels] + 0.8 * rng.standard_normal((n_items, 64))
    strings = rng.standard_normal((n_classes, 48))[:, None, :] + 0.5 * rng.standard_normal((n_classes, templates, 48))
    strings = strings.reshape(n_classes * templates, 48)
    string_of_text = (labels[:, None] * templates + np.arange(templates)).ravel()
    return x.astype(np.float32), strings.astype(np.float32), string_of_text, np.repeat(np.arange(n_items), templates)


def one_ulp(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    direction = np.where(rng.random(a.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
    return np.nextafter(a, direction).astype(np.float32)


def run_sweep(tmp, name, npz, env):
    out = tmp / name
    args = [sys.executable, "-c", "from alignbench.cli import main; main()", "run", "--dataset", "embeddings",
            "--param", f"embeddings.path={npz}", "--anchors", "0,5,10,25,100", "--seeds", "0",
            "--store", str(out / "s.sqlite"), "--out", str(out), "--no-cache"]
    for aligner in ALIGNERS:
        args += ["--aligner", aligner]
    done = subprocess.run(args, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return pd.read_csv(out / "embeddings.csv").fillna({"status": "n/a"})


def test_cells_agree_across_blas_kernels_threads_and_last_bit_embeddings(tmp_path):
    x, strings, string_of_text, text_item = duplicate_caption_pairs()
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "a.npz", x=x, y=strings[string_of_text], text_item=text_item)
    np.savez(tmp_path / "b.npz", x=one_ulp(x, rng), y=one_ulp(strings, rng)[string_of_text], text_item=text_item)
    a = run_sweep(tmp_path, "a", tmp_path / "a.npz", {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "2",
                                                      "OMP_NUM_THREADS": "2"})
    b = run_sweep(tmp_path, "b", tmp_path / "b.npz", {"OPENBLAS_CORETYPE": "Sandybridge", "OPENBLAS_NUM_THREADS": "1",
                                                      "OMP_NUM_THREADS": "1"})
    keys = ["aligner", "anchors", "seed"]
    a, b = a.drop(columns="setting").set_index(keys).sort_index(), b.drop(columns="setting").set_index(keys).sort_index()
    assert list(a.index) == list(b.index) and (a["status"] == b["status"]).all()
    problems = []
    for column in a.select_dtypes("number").columns:
        allowed = CROSS_CPU_TOLERANCE * np.maximum(1.0, a[column].abs())
        differ = ((a[column] - b[column]).abs() > allowed) | (a[column].isna() != b[column].isna())
        problems += [f"{cell} {column}: {a.at[cell, column]:.6g} vs {b.at[cell, column]:.6g}" for cell in a.index[differ]]
    assert not problems, "\n".join(problems)
