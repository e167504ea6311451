"""The committed leaderboards are what the default sweep produces today: byte for byte for the
synthetic datasets; for Fashion-MNIST (where its Debian package is installed, as in CI) value by
value within a small tolerance, because fmap's eigensolver on its caption graph (50 distinct
strings, so thousands of duplicate points) is not bit-reproducible from run to run."""

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from alignbench.cli import DEFAULT_DATASETS, DEFAULT_REAL_DATASETS, cli
from alignbench.plugins import load_registry

COMMITTED = Path(__file__).parent.parent / "leaderboards"
STALE = "leaderboards/{} is stale: run `alignbench run` at the repository root and commit the result"


def test_default_sweep_regenerates_the_committed_leaderboards(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for dataset in DEFAULT_DATASETS:
        for suffix in (".md", ".csv", ".json"):
            name = dataset + suffix
            assert (tmp_path / name).read_text() == (COMMITTED / name).read_text(), STALE.format(name)
    registry = load_registry()
    for dataset in [n for n in DEFAULT_REAL_DATASETS if registry.create("dataset", n).available()]:
        fresh, committed = pd.read_csv(tmp_path / f"{dataset}.csv"), pd.read_csv(COMMITTED / f"{dataset}.csv")
        assert list(fresh.columns) == list(committed.columns), STALE.format(f"{dataset}.csv")
        numeric = fresh.select_dtypes("number").columns
        pd.testing.assert_frame_equal(fresh.drop(columns=numeric), committed.drop(columns=numeric))
        assert np.allclose(fresh[numeric], committed[numeric], rtol=0.02, atol=0.005, equal_nan=True), \
            STALE.format(f"{dataset}.csv")
