from pathlib import Path

REPO = Path(__file__).parent.parent


def test_readme_plugin_example_is_the_tested_example_package():
    readme = (REPO / "README.md").read_text()
    example = (REPO / "tests" / "plugin_example" / "alignbench_example" / "__init__.py").read_text()
    assert f"```python\n{example}```" in readme
    pyproject = (REPO / "tests" / "plugin_example" / "pyproject.toml").read_text()
    assert '[project.entry-points.alignbench]\nexample = "alignbench_example"' in pyproject


def test_readme_leaderboard_excerpt_matches_the_committed_leaderboard():
    readme = (REPO / "README.md").read_text()
    board = (REPO / "leaderboards" / "synthetic-correlated.md").read_text()
    table = board.split("columns are anchor pairs\n\n", 1)[1].split("\n\n", 1)[0]
    assert table in readme


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
