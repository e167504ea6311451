"""Sites built once per session: the committed leaderboards as published, and a small local sweep with
its store and four submitted files (one good, three bad)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from alignbench.cli import DEFAULT_SEEDS, cli
from alignbench.leaderboard import write_leaderboards
from alignbench.plugins import load_registry
from alignbench.publish import build_site, default_params
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
from alignbench.submissions import known_metrics_of

REPO = Path(__file__).parent.parent.parent
COMMITTED = REPO / "leaderboards"
# Small and exact (as tests/test_leaderboard.py): a sweep of it takes a second or two.
TINY = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4,
                                 "correlation": 1.0, "noise": 0.0, "nonlinearity": False})
LEVELS = [0, 5, 20]


@dataclass
class TinySite:
    leaderboards: Path
    store: Path
    results: Path
    site: Path
    output: str  # what `alignbench publish` printed
    exit_code: int


@pytest.fixture(scope="session")
def committed_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("committed") / "site"
    registry = load_registry()
    report = build_site(COMMITTED, out, known_metrics=known_metrics_of(registry), seeds=DEFAULT_SEEDS,
                        defaults=default_params(registry))
    return report


def run_sweep(store_path: Path, aligners: list[str], seeds=DEFAULT_SEEDS) -> None:
    with ResultStore(store_path) as store:
        Runner(load_registry(), store).run(Sweep(aligners=[(a, {}) for a in aligners], datasets=[TINY],
                                                 levels=LEVELS, seeds=list(seeds)))


def export(store: Path, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(cli, ["export", "--store", str(store), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output


def bad_variants(good: dict) -> dict[str, dict]:
    """Files that must be rejected, made from the good one the way mistakes happen."""
    fewer_seeds = {**good, "records": [r for r in good["records"] if r["seed"] != 2]}
    records = json.loads(json.dumps(good["records"]))
    for metric in records[0]["config"]["metrics"]:
        metric["version"] = "99"
    unknown_version = {**good, "records": records}
    twin = json.loads(json.dumps(next(r for r in good["records"] if r["status"] == "ok")))
    twin["metrics"]["i2t_mAP"] = 0.5 if twin["metrics"]["i2t_mAP"] != 0.5 else 0.25  # a score no other bounds
    duplicated = {**good, "records": good["records"] + [twin]}
    return {"fewer-seeds.json": fewer_seeds, "unknown-version.json": unknown_version, "duplicated.json": duplicated}


@pytest.fixture(scope="session")
def tiny_site(tmp_path_factory) -> TinySite:
    root = tmp_path_factory.mktemp("tiny")
    store = root / "local.sqlite"
    run_sweep(store, ["procrustes", "relative"])
    with ResultStore(store) as results:
        write_leaderboards(results, root / "leaderboards")
    theirs = root / "theirs.sqlite"
    run_sweep(theirs, ["lstsq"])
    submitted = root / "results"
    export(theirs, submitted / "good.json", "--name", "Ada Example", "--url", "https://example.org/lstsq",
           "--notes", "a third party's run")
    good = json.loads((submitted / "good.json").read_text())
    for name, payload in bad_variants(good).items():
        (submitted / name).write_text(json.dumps(payload))
    site = root / "site"
    result = CliRunner().invoke(cli, ["publish", "--leaderboards", str(root / "leaderboards"), "--store", str(store),
                                      "--results", str(submitted), "--out", str(site)])
    return TinySite(root / "leaderboards", store, submitted, site, result.output, result.exit_code)


@pytest.fixture(scope="session")
def sweep_into():
    """run_sweep, for tests (conftest modules are not importable under --import-mode=importlib)."""
    return run_sweep
