import pytest
import torch
from transformers import AutoTokenizer

from reweightlab.models import ModelLoadError, build_char_tokenizer, load_model, load_tokenizer


def test_char_tokenizer_roundtrip_through_autotokenizer(tmp_path):
    tok = build_char_tokenizer()
    text = "A 8 K 5|JQK=10|24:(10-8)*(5+3)"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1  # one token per character
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids
    assert again.decode(ids, skip_special_tokens=True) == text
    assert again.eos_token_id == tok.eos_token_id and again.pad_token_id == tok.pad_token_id


def test_load_model_roundtrip(tiny_model_dir):
    model = load_model(tiny_model_dir)
    tok = load_tokenizer(tiny_model_dir)
    x = torch.tensor([tok("12+3")["input_ids"]])
    assert model(input_ids=x).logits.shape == (1, 5, len(tok))
    assert (tiny_model_dir / "model.safetensors").is_file()


def test_missing_and_bad_folders(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_model(tmp_path)


def test_not_a_causal_lm(tmp_path):
    from transformers import ViTConfig

    cfg = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    cfg.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="not a causal LM"):
        load_model(tmp_path)
