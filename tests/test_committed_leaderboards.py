"""The committed leaderboards are what the default sweep produces today: byte for byte for the
synthetic datasets; for Fashion-MNIST (where its Debian package is installed, as in CI) value by
value within a small tolerance, because fmap's eigensolver on its caption graph (50 distinct
strings, so thousands of duplicate points) is not bit-reproducible from run to run.

The robustness tables take about half an hour to regenerate on 2 cores (ot-riemannian is fitted
~50 times per dataset), too long for every CI run, so CI re-runs a sample of their cells (seed 0,
50% damage, every default aligner, clean and damaged) and checks each against the committed row."""

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from alignbench.cli import DEFAULT_DATASETS, DEFAULT_REAL_DATASETS, cli
from alignbench.plugins import load_registry

COMMITTED = Path(__file__).parent.parent / "leaderboards"
STALE = "leaderboards/{} is stale: run `alignbench run` at the repository root and commit the result"


def test_default_sweep_regenerates_the_committed_leaderboards_and_robustness_samples(tmp_path):
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
    # One test, so that the Fashion-MNIST embeddings encoded above are reused from the cache.
    check_robustness_samples(tmp_path / "robustness")


ROW = ["aligner", "perturbation", "fraction", "anchors", "seed"]
SAMPLES = {"synthetic-gmm": ["drop:text"], "synthetic-correlated": ["drop:image"],
           "fashion-mnist": ["drop:text", "synonyms"]}


def check_robustness_samples(out):
    registry = load_registry()
    datasets = DEFAULT_DATASETS + [n for n in DEFAULT_REAL_DATASETS if registry.create("dataset", n).available()]
    for dataset in datasets:
        committed_path = COMMITTED / f"{dataset}-robustness.csv"
        assert committed_path.exists(), STALE.format(f"{dataset}-robustness.csv") + " (`alignbench robustness`)"
        args = ["robustness", "--dataset", dataset, "--seeds", "0", "--fractions", "50",
                "--store", str(out / "s.sqlite"), "--out", str(out)]
        for perturbation in SAMPLES[dataset]:
            args += ["--perturbation", perturbation]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        fresh = pd.read_csv(out / f"{dataset}-robustness.csv")
        committed = pd.read_csv(committed_path)
        assert list(fresh.columns) == list(committed.columns), STALE.format(f"{dataset}-robustness.csv")
        merged = fresh.merge(committed, on=ROW, how="left", suffixes=("", "_committed"), indicator=True)
        missing = merged[merged["_merge"] != "both"][ROW]
        assert missing.empty, f"committed {dataset}-robustness.csv lacks rows:\n{missing}"
        assert (merged["status"] == merged["status_committed"]).all()
        assert len(fresh) >= 2 * 6, "the sample should hold clean and damaged cells of every default aligner"
        numeric = [c for c in fresh.select_dtypes("number").columns if c not in ROW]
        for column in numeric:
            assert np.allclose(merged[column], merged[column + "_committed"], rtol=0.02, atol=0.005, equal_nan=True), \
                f"{STALE.format(f'{dataset}-robustness.csv')}: {column} differs"
