"""Models: load any Hugging Face causal LM folder; build and pretrain the embedded default."""

from reweightlab.models.embedded import EmbeddedSpec, build_char_tokenizer, build_embedded_model
from reweightlab.models.loading import ModelLoadError, load_model, load_tokenizer

__all__ = [
    "EmbeddedSpec",
    "ModelLoadError",
    "build_char_tokenizer",
    "build_embedded_model",
    "load_model",
    "load_tokenizer",
]
