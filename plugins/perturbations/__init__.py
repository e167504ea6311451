"""Built-in perturbations for the robustness suite."""

import alignbench


@alignbench.hookimpl
def alignbench_register_perturbations(register):
    register("drop", "alignbench_plugins.perturbations.drop:Drop",
             description="Remove rows of one modality: their pairs are lost, the other side stays unpaired")
    register("embedding-noise", "alignbench_plugins.perturbations.embedding_noise:EmbeddingNoise",
             description="Gaussian noise on one modality's embeddings at a given SNR (dB)")
    register("image-noise", "alignbench_plugins.perturbations.images:ImageNoise",
             description="Gaussian pixel noise on raw images before encoding")
    register("image-blur", "alignbench_plugins.perturbations.images:ImageBlur",
             description="Gaussian blur on raw images before encoding")
    register("word-dropout", "alignbench_plugins.perturbations.text:WordDropout",
             description="Delete words from raw captions before encoding")
    register("synonyms", "alignbench_plugins.perturbations.text:Synonyms",
             description="Swap caption words for synonyms from the shipped word list before encoding")
