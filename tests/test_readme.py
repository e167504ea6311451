from pathlib import Path

REPO = Path(__file__).parent.parent


def test_readme_plugin_example_is_the_tested_example_package():
    readme = (REPO / "README.md").read_text()
    example = (REPO / "tests" / "plugin_example" / "alignbench_example" / "__init__.py").read_text()
    assert f"```python\n{example}```" in readme
    pyproject = (REPO / "tests" / "plugin_example" / "pyproject.toml").read_text()
    assert '[project.entry-points.alignbench]\nexample = "alignbench_example"' in pyproject


def test_readme_excerpts_are_rows_of_the_committed_leaderboards():
    """Each table under a ``<!-- from leaderboards/NAME.md -->`` line: its header and every row are
    lines of that generated file, so the README cannot quote numbers the harness no longer makes."""
    readme = (REPO / "README.md").read_text()
    marker = "<!-- from leaderboards/"
    excerpts = readme.split(marker)[1:]
    assert len(excerpts) >= 3
    for excerpt in excerpts:
        name, rest = excerpt.split(" -->\n", 1)
        table = [line for line in rest.lstrip("\n").split("\n\n", 1)[0].splitlines()]
        assert len(table) >= 3 and all(line.startswith("|") for line in table), name
        board = set((REPO / "leaderboards" / name).read_text().splitlines())
        missing = [line for line in table if line not in board]
        assert not missing, f"README quotes rows that leaderboards/{name} does not hold: {missing}"


def test_every_hook_and_builtin_plugin_is_documented():
    from alignbench import hookspecs
    from alignbench.plugins import load_registry

    readme = (REPO / "README.md").read_text()
    hooks = [name for name in vars(hookspecs) if name.startswith("alignbench_register_")]
    assert len(hooks) == 5
    listed = readme.split("alignbench_register_{", 1)[1].split("}", 1)[0].split(",")
    assert sorted("alignbench_register_" + kind for kind in listed) == sorted(hooks)
    undocumented = [s.name for s in load_registry().specs() if s.source.startswith("alignbench ")
                    and f"`{s.name}`" not in readme]
    assert not undocumented, f"README's plugin table lacks {undocumented}"


def test_readme_install_command_brings_what_the_default_sweep_runs():
    """The default sweep includes gw-procrustes, which needs POT (the `ot` extra); without it a
    newcomer's first run fails those cells."""
    from alignbench.cli import DEFAULT_ALIGNERS

    readme = (REPO / "README.md").read_text()
    first = readme.split("```bash\n", 1)[1].split("\n", 1)[0]
    assert first.endswith("&& alignbench run")
    extras = first.split('-e ".[', 1)[1].split("]", 1)[0].split(",")
    assert "gw-procrustes" in DEFAULT_ALIGNERS and "ot" in extras and "encoders" in extras
