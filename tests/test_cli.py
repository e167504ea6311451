import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from alignbench.cli import cli
from fake_distributions import make_distribution

SMALL = ["--dataset", "synthetic-gmm", "--param", "synthetic-gmm.n_items=200", "--seeds", "0"]


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNBENCH_STORE", str(tmp_path / "store.sqlite"))

    def invoke(*args):
        return CliRunner().invoke(cli, [*args] + (["--out", str(tmp_path / "boards")] if args[0] in ("run", "leaderboard") else []))

    return invoke


def test_tables_built_from_cells_of_other_code_say_so(invoke, tmp_path):
    """A cell's key names its plugins' distributions, not their code: a store keeps an older checkout's
    cells and a re-run reports them as done. The tables then say how many came from other code."""
    import sqlite3

    from alignbench.evaluate import code_digest

    args = ("run", "--aligner", "procrustes", "--anchors", "5,10", *SMALL)
    first = invoke(*args)
    assert first.exit_code == 0 and "other code" not in first.output
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        codes = {row[0] for row in db.execute("SELECT json_extract(environment, '$.code') FROM results")}
        assert codes == {code_digest()}
        db.execute("UPDATE results SET environment = json_set(environment, '$.code', 'an-older-checkout') "
                   "WHERE anchors = 5")
    again = invoke(*args)
    assert "0 cells run, 2 already done" in again.output
    assert "warning: 1 of the 2 cells stored for these datasets were computed by other code" in again.output
    assert "--rerun-other-code" in invoke("leaderboard").output
    rerun = invoke(*args, "--rerun-other-code")
    assert rerun.exit_code == 0 and "1 cells run, 1 already done" in rerun.output and "other code" not in rerun.output
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        codes = {row[0] for row in db.execute("SELECT json_extract(environment, '$.code') FROM results")}
        assert codes == {code_digest()}


def test_the_code_digest_reads_the_core_and_the_plugin_packages_and_follows_every_line(tmp_path):
    import shutil

    import alignbench
    import alignbench_plugins
    from alignbench.evaluate import code_roots, source_digest

    roots = code_roots()
    assert roots["alignbench"] == [Path(alignbench.__file__).parent]
    assert roots["alignbench_plugins"] == [Path(alignbench_plugins.__file__).parent]  # through its entry points
    copy = tmp_path / "plugins"
    shutil.copytree(Path(alignbench_plugins.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    tree = {"alignbench_plugins": [copy]}
    before = source_digest(tree)
    assert source_digest({"alignbench_plugins": [copy]}) == before
    fmap = copy / "aligners" / "fmap.py"
    fmap.write_text(fmap.read_text().replace("n_neighbors: int = 15", "n_neighbors: int = 16", 1))
    assert source_digest(tree) != before
    # A plugin that is one module: the file itself.
    module = tmp_path / "one_module_plugin.py"
    module.write_text("X = 1\n")
    single = source_digest({"one_module_plugin": [module]})
    module.write_text("X = 2\n")
    assert source_digest({"one_module_plugin": [module]}) != single


def test_run_prints_and_writes_the_leaderboard(invoke, tmp_path):
    result = invoke("run", "--aligner", "procrustes", "--aligner", "lstsq", "--anchors", "5,10", *SMALL)
    assert result.exit_code == 0, result.output
    assert "synthetic-gmm — mean R@1" in result.output and "| procrustes" in result.output
    assert (tmp_path / "boards" / "synthetic-gmm.md").exists()
    again = invoke("run", "--aligner", "procrustes", "--aligner", "lstsq", "--anchors", "5,10", *SMALL)
    assert "0 cells run, 4 already done" in again.output


def test_leaderboard_command_rewrites_from_the_store(invoke, tmp_path):
    invoke("run", "--aligner", "relative", "--anchors", "5", *SMALL)
    (tmp_path / "boards" / "synthetic-gmm.md").unlink()
    result = invoke("leaderboard")
    assert result.exit_code == 0 and (tmp_path / "boards" / "synthetic-gmm.md").exists()


@pytest.mark.parametrize("args, message", [
    (["run", "--aligner", "fmapp"], "unknown aligner 'fmapp'. Did you mean 'fmap'? Known aligners: fmap, fmap-spectral, gw-procrustes, identity, lstsq"),
    (["run", "--dataset", "cocoo"], "unknown dataset 'cocoo'. Did you mean 'coco'?"),
    (["run", "--dataset", "coco"], "coco: no data directory given. Pass --param coco.data_dir=/path"),
    (["run", "--anchors", "ten"], "--anchors must be comma-separated integers"),
    (["run", "--param", "procrustes.dimm=3"], "no parameter 'dimm'. Did you mean 'dim'?"),
    (["run", "--param", "ot.k=3"], "names 'ot', which is not in this sweep"),
    (["run", "--param", "procrustes.dim=\"64\""], "parameter 'dim' must be int or null"),
])
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(invoke, args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_leaderboard_without_a_store_says_what_to_do(invoke):
    result = invoke("leaderboard")
    assert result.exit_code == 1 and "run `alignbench run` first" in result.output


def test_list_shows_every_builtin_and_reports_broken_plugins(invoke, tmp_path, monkeypatch):
    make_distribution(tmp_path, "broken_cli_plugin", "raise ImportError('missing dependency xyz')")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0
    for name in ("lstsq", "procrustes", "relative", "nullspace", "synthetic-gmm", "synthetic-correlated",
                 "retrieval", "alignment-error"):
        assert name in result.output
    assert "broken_cli_plugin" in result.output and "missing dependency xyz" in result.output


def test_ctrl_c_reports_what_was_saved(invoke, tmp_path, monkeypatch):
    make_distribution(tmp_path, "counting_entry", "from counting_plugin import *\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import counting_plugin

    counting_plugin.CountingAligner.interrupt_at = 1
    counter = tmp_path / "fits.log"
    result = invoke("run", "--aligner", "counting", "--param", f"counting.counter_path=\"{counter}\"",
                    "--anchors", "5,10", *SMALL)
    assert result.exit_code == 130
    assert "interrupted: 1 finished cells are saved" in result.output


def test_third_party_plugin_installed_by_pip_runs_in_a_sweep(example_plugin_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(example_plugin_site), "ALIGNBENCH_STRICT_PLUGINS": "1"}
    command = [sys.executable, "-m", "alignbench", "run", "--aligner", "example-ridge", "--aligner", "lstsq",
               "--anchors", "50", *SMALL, "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| example-ridge" in result.stdout
    board = (tmp_path / "synthetic-gmm.md").read_text()
    assert "alignbench-example 0.1.0 [example]" in board
    listing = subprocess.run([sys.executable, "-m", "alignbench", "list"], capture_output=True, text=True, env=env)
    assert "example-ridge" in listing.stdout and "alignbench-example 0.1.0" in listing.stdout
