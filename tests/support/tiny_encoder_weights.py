"""Tiny random CLIP and DINOv2 models saved with save_pretrained, for tests that run the encoders'
real loading code without real weights (which do not ship offline). NOT real-weight runs."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_dinov2(path: Path) -> str:
    """A 2-layer, 32-wide DINOv2 (weights only, no processor saved): 32-d CLS features."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, patch_size=14, image_size=224)
    path.mkdir(parents=True, exist_ok=True)
    transformers.Dinov2Model(config).save_pretrained(path)
    return str(path)


def tiny_clip(path: Path) -> str:
    """A 2-layer CLIP with a letters-only tokenizer and a 16-d shared projection (model + processor)."""
    import torch
    import transformers

    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in list(letters) + [c + "</w>" for c in letters]:
        vocab[token] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    processor = transformers.CLIPProcessor(image_processor=transformers.CLIPImageProcessor(), tokenizer=tokenizer)
    config = transformers.CLIPConfig(
        # The tokenizer's own start/end ids: with CLIP's default 49407 the text tower pools the first
        # token (it looks for the end token to pool), so every caption got the same embedding.
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 224, "patch_size": 32},
        projection_dim=16)
    transformers.CLIPModel(config).save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


def tiny_vision_backbone(path: Path, kind: str = "vit") -> str:
    """A tiny random transformers vision backbone with its image processor, for ``hf-image``:
    ``vit`` (32-d, class token, tanh pooler), ``dinov2`` (32-d, class + 2 register tokens),
    ``convnext`` (16-d feature map), ``siglip`` (SigLIP's vision tower, 32-d, attention-pool head)
    ``mae`` (ViT-MAE, 75% of patches masked at random unless told otherwise), ``deit`` (class and
    distillation tokens), ``clip`` (a two-tower CLIPModel: its vision tower is used, which norms only its
    pooled class token) or ``blip`` (BLIP's, which norms every token and its pooled class token again).
    Layer norms get random scales and shifts."""
    import torch
    import transformers

    torch.manual_seed(0)
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    if kind == "vit":
        model = transformers.ViTModel(transformers.ViTConfig(**small, image_size=32, patch_size=8))
        processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    elif kind == "dinov2":
        model = transformers.Dinov2WithRegistersModel(transformers.Dinov2WithRegistersConfig(
            **small, image_size=32, patch_size=8, num_register_tokens=2))
        processor = transformers.BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    elif kind == "convnext":
        model = transformers.ConvNextModel(transformers.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1],
                                                                       num_stages=2))
        processor = transformers.ConvNextImageProcessor(size={"shortest_edge": 32})
    elif kind == "siglip":
        model = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(**small, image_size=32, patch_size=8))
        processor = transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
    elif kind == "mae":
        model = transformers.ViTMAEModel(transformers.ViTMAEConfig(**small, image_size=32, patch_size=8, mask_ratio=0.75))
        processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    elif kind == "deit":
        model = transformers.DeiTModel(transformers.DeiTConfig(**small, image_size=32, patch_size=8))
        processor = transformers.DeiTImageProcessor(size={"height": 32, "width": 32},
                                                    crop_size={"height": 32, "width": 32})
    elif kind == "clip":
        model = transformers.CLIPModel(transformers.CLIPConfig(
            text_config={**small, "vocab_size": 64, "max_position_embeddings": 16, "bos_token_id": 0,
                         "eos_token_id": 1, "pad_token_id": 1},
            vision_config={**small, "image_size": 32, "patch_size": 8}, projection_dim=16))
        processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    elif kind == "blip":
        model = transformers.BlipModel(transformers.BlipConfig(
            text_config={**small, "vocab_size": 64}, vision_config={**small, "image_size": 32, "patch_size": 8},
            projection_dim=16))
        processor = transformers.BlipImageProcessor(size={"height": 32, "width": 32})
    else:
        raise ValueError(kind)
    for module in model.modules():  # layer norms that are not the identity, as trained ones are not
        if isinstance(module, torch.nn.LayerNorm) and module.elementwise_affine:
            with torch.no_grad():
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


WORDS = ("a an the of on in with and is are man woman dog dogs cat cats bird bus red green small large "
         "photo picture street field table beach park eating food bread piece riding bike two people").split()


def tiny_sentence_transformer(path: Path) -> str:
    """A 2-layer, 32-wide random BERT with a WordPiece vocabulary of common caption words, mean-pooled,
    saved as a sentence-transformers folder (no Normalize layer: rows are not unit length)."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers 6 moved the modules
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    torch.manual_seed(0)
    bert = path.parent / f"{path.name}-bert"
    bert.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz.",
             *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]]
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(str(bert / "vocab.txt")).save_pretrained(bert)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(bert)
    word = models.Transformer(str(bert), max_seq_length=32)
    SentenceTransformer(modules=[word, models.Pooling(32, "mean")], device="cpu").save(str(path))
    return str(path)


TINY_OPEN_CLIP = {"embed_dim": 16,
                  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def tiny_open_clip(path: Path) -> dict[str, str]:
    """A tiny random OpenCLIP model (16-d shared space; CLIP's real BPE tokenizer, which ships inside
    open_clip) in the three forms users keep one in: ``config`` (a model config .json of one's own
    architecture, registered by the encoder), ``checkpoint`` (its state dict as safetensors, for
    ``pretrained=PATH``), ``pt`` (the same as a torch ``.pt`` file, read with weights_only) and
    ``folder`` (an ``open_clip_config.json`` + ``open_clip_model.safetensors`` folder, for
    ``model=local-dir:FOLDER``)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    config = path / "tiny-open-clip.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-open-clip", pretrained=None)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / "tiny-open-clip.safetensors"))
    torch.save(state, path / "tiny-open-clip.pt")
    folder = path / "folder"
    folder.mkdir(exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP, "preprocess_cfg": {}}))
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return {"config": str(config), "checkpoint": str(path / "tiny-open-clip.safetensors"),
            "pt": str(path / "tiny-open-clip.pt"), "folder": str(folder)}
