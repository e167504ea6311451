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
