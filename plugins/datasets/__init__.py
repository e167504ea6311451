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
    register("coco", "alignbench_plugins.datasets.karpathy:COCO",
             description="MS-COCO captions: Karpathy split (5k test) or official 2017 annotations")
    register("flickr30k", "alignbench_plugins.datasets.karpathy:Flickr30k",
             description="Flickr30k captions (Karpathy split, 1k test)")
    register("flickr8k", "alignbench_plugins.datasets.karpathy:Flickr8k",
             description="Flickr8k captions (Karpathy split or the original token file)")
    register("image-folder", "alignbench_plugins.datasets.image_folder:ImageFolder",
             description="your images + metadata.jsonl / metadata.csv captions (the HF imagefolder layout)")
    register("hf-dataset", "alignbench_plugins.datasets.hf_dataset:HFDataset",
             description="a Hugging Face dataset saved with save_to_disk, or parquet files (image + caption columns)")
    register("webdataset", "alignbench_plugins.datasets.webdataset:WebDataset",
             description="WebDataset tar shards of jpg/png/webp + txt/json captions (CLIP_benchmark's format)")
    register("fashion-mnist", "alignbench_plugins.datasets.fashion_mnist:FashionMNIST",
             description="Fashion-MNIST images with 5 template captions each: real data that runs offline")
    register("skimage-photos", "alignbench_plugins.datasets.skimage_photos:SkimagePhotos",
             description="scikit-image's bundled photos with their docstring captions (smoke test)")
