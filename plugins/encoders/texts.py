"""Text inputs: strings only; anything else handed to a text encoder is a clear error."""

from __future__ import annotations

from typing import Any, Sequence

from alignbench.errors import InvalidInputError


def check_text_items(items: Sequence[Any], encoder: str) -> None:
    """InvalidInputError, naming the modality, for items that are not strings (images handed to a
    text encoder)."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidInputError(
                f"{encoder} encodes text, but item {i} is a {type(item).__name__}; pass strings, or choose an "
                f"image encoder for images.")
