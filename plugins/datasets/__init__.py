"""Built-in datasets. Targets are imported only when a sweep uses them."""

from alignbench import hookimpl


@hookimpl
def alignbench_register_datasets(register):
    register("synthetic-gmm", "alignbench_plugins.datasets.synthetic_gmm:SyntheticGMM",
             description="Two-Gaussian latent linearly projected into two modalities (seed 002)")
    register("synthetic-correlated", "alignbench_plugins.datasets.synthetic_correlated:SyntheticCorrelated",
             description="Shared latent + modality-specific signal, several captions per item (seed 001)")
    register("embeddings", "alignbench_plugins.datasets.embeddings:Embeddings",
             description="Your own paired embeddings (.npz, .safetensors or .npy files)")
