"""The embedded default model: a character-level tokenizer and a small Llama.

Both are ordinary transformers objects (a `tokenizers`-backed fast tokenizer and a
`LlamaForCausalLM`), saved with `save_pretrained` and loaded with `from_pretrained`, so the
embedded model goes through exactly the code path of any causal LM folder a user passes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
# Every printable ASCII character is one token: prompts and completions of any task that
# writes ASCII can be encoded, and nothing outside ASCII sneaks in silently (it maps to <unk>).
CHARACTERS = tuple(chr(i) for i in range(32, 127))


@dataclass(frozen=True)
class EmbeddedSpec:
    """Architecture of the embedded model (DESIGN.md: ~0.8M parameters, trains at ~18k tokens/s on 2 cores)."""

    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 512
    max_positions: int = 256  # RoPE: no parameters; room for revision episodes of 3 attempts

    def to_dict(self) -> dict:
        return asdict(self)


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer: one id per printable ASCII character, <bos> prepended."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )


def build_embedded_model(tokenizer, spec: EmbeddedSpec | None = None, seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialised small Llama sized for the character tokenizer."""
    spec = spec or EmbeddedSpec()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rms_norm_eps=1e-5,
        attention_bias=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)
