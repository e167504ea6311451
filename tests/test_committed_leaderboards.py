"""The committed leaderboards are exactly what the default sweep produces today (Fashion-MNIST's
where its Debian package is installed, as in CI)."""

from pathlib import Path

from click.testing import CliRunner

from alignbench.cli import DEFAULT_DATASETS, DEFAULT_REAL_DATASETS, cli
from alignbench.plugins import load_registry

COMMITTED = Path(__file__).parent.parent / "leaderboards"


def test_default_sweep_regenerates_the_committed_leaderboards(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    registry = load_registry()
    real = [name for name in DEFAULT_REAL_DATASETS if registry.create("dataset", name).available()]
    for dataset in DEFAULT_DATASETS + real:
        for suffix in (".md", ".csv", ".json"):
            name = dataset + suffix
            assert (tmp_path / name).read_text() == (COMMITTED / name).read_text(), (
                f"leaderboards/{name} is stale: run `alignbench run` at the repository root and commit the result"
            )
