"""Issue 12, item 6: only the canonical sweeps write the committed leaderboards/; a user's own sweep
writes beside its results store unless --out says otherwise."""

from pathlib import Path

import pytest
from click.testing import CliRunner

import alignbench.cli as cli_module
from alignbench.cli import cli
from alignbench.errors import AlignbenchError


@pytest.fixture
def chosen_out(monkeypatch, tmp_path):
    """The tables folder each invocation chose, stopping it before any cell runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(cli_module.STORE_ENV, raising=False)
    chosen = []

    def stop(path, option):
        chosen.append(path)
        raise AlignbenchError("stopped before the sweep")

    monkeypatch.setattr(cli_module, "check_output_dir", stop)

    def invoke(*args):
        result = CliRunner().invoke(cli, list(args))
        assert "stopped before the sweep" in result.output, result.output
        return chosen[-1]

    return invoke


def test_the_default_sweeps_write_leaderboards(chosen_out):
    assert chosen_out("run") == Path("leaderboards")
    assert chosen_out("run", "--store", "elsewhere/s.sqlite") == Path("leaderboards")  # where results go is no choice of sweep
    assert chosen_out("robustness") == Path("leaderboards")


@pytest.mark.parametrize("args", [
    ["--aligner", "procrustes"], ["--dataset", "synthetic-gmm"], ["--anchors", "0,10"], ["--seeds", "0"],
    ["--param", "procrustes.dim=64"], ["--metric", "retrieval"], ["--anchor-strategy", "fps"],
])
def test_any_other_sweep_writes_beside_its_store(chosen_out, args):
    assert chosen_out("run", *args) == Path(".alignbench") / "leaderboards"
    assert chosen_out("run", *args, "--store", "mine/results.sqlite") == Path("mine") / "leaderboards"
    assert chosen_out("run", *args, "--out", "boards") == Path("boards")


def test_a_robustness_sweep_of_its_own_writes_beside_its_store(chosen_out):
    assert chosen_out("robustness", "--fractions", "50") == Path(".alignbench") / "leaderboards"
    assert chosen_out("robustness", "--perturbation", "drop:text") == Path(".alignbench") / "leaderboards"


def test_the_readmes_second_example_leaves_leaderboards_alone(tmp_path, monkeypatch):
    """The sweep that once appended a procrustes(dim=64) section to the committed tables (shrunk)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(cli_module.STORE_ENV, raising=False)
    (tmp_path / "leaderboards").mkdir()
    result = CliRunner().invoke(cli, ["run", "--aligner", "procrustes", "--dataset", "synthetic-correlated",
                                      "--anchors", "10", "--seeds", "0", "--param", "procrustes.dim=8",
                                      "--param", "synthetic-correlated.n_items=200"])
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "leaderboards").iterdir()) == []
    assert (tmp_path / ".alignbench" / "leaderboards" / "synthetic-correlated.md").exists()
    assert "wrote .alignbench/leaderboards/synthetic-correlated.md" in result.output


def test_diagnose_writes_leaderboards_only_with_its_default_options(chosen_out):
    canonical = ["--protocol", "both", "--seeds", "0,1,2"]  # the README's command for the committed tables
    assert chosen_out("diagnose", "--dataset", "fashion-mnist", *canonical) == Path("leaderboards")
    # One seed or one protocol would overwrite the committed three-seed, two-protocol tables.
    assert chosen_out("diagnose", "--dataset", "synthetic-correlated") == Path(".alignbench") / "leaderboards"
    for args in (["--anchors", "0,10"], ["--seeds", "0"], ["--protocol", "standard"],
                 ["--param", "synthetic-correlated.n_items=200"]):
        replaced = dict(zip(canonical[::2], canonical[1::2])) | dict(zip(args[::2], args[1::2]))
        options = [x for pair in replaced.items() for x in pair]
        assert chosen_out("diagnose", "--dataset", "synthetic-correlated", *options) == \
            Path(".alignbench") / "leaderboards", args
    assert chosen_out("diagnose", "--dataset", "synthetic-correlated", "--seeds", "0,1", "--out", "figs") == Path("figs")


def test_leaderboard_from_a_store_writes_beside_it_unless_out_names_the_committed_folder(chosen_out, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "results.sqlite").write_bytes(b"")
    assert chosen_out("leaderboard", "--store", "mine/results.sqlite") == Path("mine") / "leaderboards"
    assert chosen_out("leaderboard", "--store", "mine/results.sqlite", "--out", "leaderboards") == Path("leaderboards")
