"""Tests that need an optional extra: skipped where it is not installed, except in CI's tiers that
install it, where ``ALIGNBENCH_REQUIRE_EXTRAS`` (comma-separated extras) turns a missing module into
a failure, so that a broken install cannot pass as a skip."""

from __future__ import annotations

import importlib
import os

import pytest


def required_extras() -> set[str]:
    return {e.strip() for e in os.environ.get("ALIGNBENCH_REQUIRE_EXTRAS", "").split(",") if e.strip()}


def needs_extra(module: str, extra: str):
    """``module`` imported, for a test that needs ``extra``."""
    if extra in required_extras():
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"the {extra} extra: pip install 'alignbench[{extra}]'")
