"""Datasets read from a user's files: their result cells follow the files' content, not their path."""

from __future__ import annotations

from typing import Any

from alignbench.errors import InvalidInputError


class ContentPinned:
    """Mixin for a dataset with a ``sha256`` parameter: left out, ``get_params`` reports the digest of
    the files as they are (``content_sha256()``, None while they cannot be read), so a cell's key
    changes when a file is rewritten in place and a re-run never reports the old cells as done.
    ``load`` calls :meth:`check_pinned` first."""

    sha256: str | None
    name: str

    def content_sha256(self) -> str | None:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if params["sha256"] is None:
            params["sha256"] = self.content_sha256()
        return params

    def check_pinned(self, where: Any, what: str = "files") -> None:
        """A one-line error where a pinned ``sha256`` is not the files' digest now (``where``, the
        folder the message names; ``what`` it holds)."""
        if self.sha256 is not None and (now := self.content_sha256()) != self.sha256:
            raise InvalidInputError(f"{self.name}: {where} holds other {what} than sha256 {self.sha256} (now: {now}): "
                                    f"it changed since this run was planned. Run again without {self.name}.sha256 to "
                                    f"use it as it is.")
