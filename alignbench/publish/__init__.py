"""The published leaderboards: a static site built from the leaderboard files, a results store's
provenance and validated third-party submissions (``alignbench publish``)."""

from .build import SiteReport, build_site, default_params

__all__ = ["SiteReport", "build_site", "default_params"]
