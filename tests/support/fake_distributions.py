"""Installed-looking distributions made on the fly, for plugin discovery tests."""

from pathlib import Path


def make_distribution(site: Path, name: str, module_source: str, entry_point: str | None = None) -> None:
    """A minimal installed distribution (dist-info + module) that importlib.metadata discovers."""
    (site / f"{name}.py").write_text(module_source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[alignbench]\n{entry_point or name} = {name}\n")
