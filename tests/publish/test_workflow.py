"""The publishing workflow cannot run here; this keeps it from rotting: every `alignbench` command it
runs must parse as a command of this version, and it must do the steps the issue asks for."""

import shlex
from pathlib import Path

import click
import pytest
import yaml

from alignbench.cache import CACHE_ENV, default_cache_dir
from alignbench.cli import cli

WORKFLOW = Path(__file__).parent.parent.parent / ".github" / "workflows" / "leaderboards.yml"


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def alignbench_commands(workflow) -> list[list[str]]:
    lines = [line.strip() for step in steps(workflow) for line in step.get("run", "").splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("alignbench ")]


def parse(args: list[str]) -> tuple[str, dict]:
    """Resolve ``args`` through the CLI's groups and parse them as click would (unknown commands or
    options, missing required ones and bad values raise)."""
    command, path = cli, []
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        if name not in command.commands:
            raise AssertionError(f"`alignbench {' '.join(path + [name])}` is not a command of this version")
        command, path = command.commands[name], path + [name]
    context = command.make_context(" ".join(path), list(args))
    return " ".join(path), context.params


def test_every_alignbench_command_in_the_workflow_parses(workflow):
    commands = alignbench_commands(workflow)
    parsed = [parse(args) for args in commands]
    assert {name for name, _ in parsed} >= {"run", "compare", "publish"}
    published = [params for name, params in parsed if name == "publish"]
    assert published and all(p["store"] and p["results"] for p in published)
    # The default sweep is the canonical one: no option that changes what it runs.
    [sweep] = [params for name, params in parsed if name == "run"]
    assert not (sweep["aligners"] or sweep["datasets"] or sweep["params"] or sweep["metrics"])
    assert all(params["fail_on_change"] for name, params in parsed if name == "compare")


def test_the_check_catches_a_command_that_rotted():
    with pytest.raises(AssertionError, match="is not a command of this version"):
        parse(["rebuild-site", "--out", "site"])
    with pytest.raises(click.UsageError):
        parse(["publish", "--output", "site"])  # an option renamed away


def test_the_workflow_runs_on_push_and_weekly_restores_the_cache_and_deploys(workflow, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)  # the cache CI's sweep uses: the default one
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert triggers["push"]["branches"] == ["main"] and triggers["schedule"][0]["cron"]
    uses = [step.get("uses", "") for step in steps(workflow)]
    cache = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/cache@"))
    assert Path(cache["with"]["path"]).expanduser() == default_cache_dir()
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    runs = "\n".join(step.get("run", "") for step in steps(workflow))
    assert "chromium" in runs and "pytest tests/publish" in runs
    upload = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/upload-pages"))
    [publish] = [args for args in alignbench_commands(workflow) if args[0] == "publish"]
    assert upload["with"]["path"] == publish[publish.index("--out") + 1]


def test_the_readmes_publishing_commands_parse():
    readme = (WORKFLOW.parent.parent.parent / "README.md").read_text()
    section = readme.split("## Publishing the leaderboards\n", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0].replace("\\\n", " ") for block in section.split("```bash\n")[1:]]
    commands = [shlex.split(line, comments=True)[1:] for block in blocks for line in block.splitlines()
                if line.startswith("alignbench ")]
    assert {parse(args)[0] for args in commands} == {"publish", "compare", "run", "export"}
