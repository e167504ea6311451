"""Datasets read from a user's files: their result cells follow the files' content, not their path."""

from __future__ import annotations

from typing import Any


class ContentPinned:
    """Mixin for a dataset with a ``sha256`` parameter: left out, ``get_params`` reports the digest of
    the files as they are (``content_sha256()``, None while they cannot be read), so a cell's key
    changes when a file is rewritten in place and a re-run never reports the old cells as done."""

    sha256: str | None

    def content_sha256(self) -> str | None:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if params["sha256"] is None:
            params["sha256"] = self.content_sha256()
        return params
