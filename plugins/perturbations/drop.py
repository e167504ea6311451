"""Missing data: a modality's rows removed from what the aligner sees."""

from __future__ import annotations

from alignbench import Perturbation


class Drop(Perturbation):
    """Removes the damaged rows of one modality. An anchor pair that loses its image or its caption
    is no longer an anchor; the surviving side stays in the unpaired data, so methods that learn
    from unpaired items keep it (seed 001's "masking" experiment)."""

    name = "drop"
    description = "Remove rows of one modality"
    stage = "drop"

    def __init__(self, modality: str = "image"):
        self.modality = modality
