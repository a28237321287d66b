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


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_folder_with_a_missing_tensor_or_another_architecture_is_refused(tiny_model_dir, tmp_path):
    """Root cause: a truncated checkpoint or a foreign config was loaded with random layers. Now strict."""
    import json

    from safetensors.torch import load_file, save_file

    trunc = _copy(tiny_model_dir, tmp_path / "truncated")
    sd = load_file(trunc / "model.safetensors")
    del sd["model.layers.1.self_attn.q_proj.weight"]
    save_file(sd, trunc / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"1 tensor\(s\) missing \(model.layers.1.self_attn.q_proj.weight\)"):
        load_model(trunc)
    grown = _copy(tiny_model_dir, tmp_path / "grown")  # the config asks for a layer the weights lack
    cfg = json.loads((grown / "config.json").read_text())
    cfg["num_hidden_layers"] = 3
    (grown / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"tensor\(s\) missing \(model.layers.2"):
        load_model(grown)
    other = _copy(tiny_model_dir, tmp_path / "qwen")  # another architecture: Qwen2 has q/k/v biases
    cfg = json.loads((other / "config.json").read_text())
    cfg.update(model_type="qwen2", architectures=["Qwen2ForCausalLM"])
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"do not match its Qwen2Config: .* missing \(.*bias"):
        load_model(other)
    shaped = _copy(tiny_model_dir, tmp_path / "shaped")  # same names, another width
    cfg = json.loads((shaped / "config.json").read_text())
    cfg["intermediate_size"] = 48
    (shaped / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="with the wrong shape"):
        load_model(shaped)


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_a_folder_that_names_its_own_code_is_refused_before_anything_loads(where, tiny_model_dir, tmp_path):
    import json

    folder = _copy(tiny_model_dir, tmp_path / "remote")
    raw = json.loads((folder / where).read_text())
    raw["auto_map"] = {"AutoModelForCausalLM": "evil.Model", "AutoTokenizer": ["evil.Tok", None]}
    (folder / where).write_text(json.dumps(raw))
    (folder / "evil.py").write_text("raise SystemExit('this code must never run')\n")
    with pytest.raises(ModelLoadError, match=r"names custom code \(auto_map\); reweightlab never runs code"):
        load_model(folder)
    with pytest.raises(ModelLoadError, match="auto_map"):
        load_tokenizer(folder)


def test_pickle_weights_are_never_loaded(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "pickled")
    model = load_model(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"no .safetensors weights \(pytorch_model.bin are pickle files"):
        load_model(folder)


def test_weights_with_garbage_bytes_are_refused_naming_the_tensor(tiny_model_dir, tmp_path):
    import json
    import struct

    folder = _copy(tiny_model_dir, tmp_path / "garbage")
    raw = bytearray((folder / "model.safetensors").read_bytes())
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    name = sorted(k for k in header if k != "__metadata__")[0]
    start = 8 + header_len + header[name]["data_offsets"][0]
    raw[start:start + 8] = b"\xff" * 8  # two float32 NaNs where the tensor's first values were
    (folder / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match=rf"tensor .*{name.split('.')[-2]}.* holds 2 non-finite value"):
        load_model(folder)


def test_a_non_finite_weight_is_never_saved_by_a_run(tiny_model_dir, tmp_path):
    """The last line of defence behind the step checks: _save refuses a model holding inf or nan."""
    from types import SimpleNamespace

    from reweightlab.train.loop import _save
    from reweightlab.train.step import NonFiniteError

    model = load_model(tiny_model_dir)
    s = SimpleNamespace(policy=model)  # refused before anything else of the run is used
    with torch.no_grad():
        dict(model.named_parameters())["model.norm.weight"][3] = float("nan")
    with pytest.raises(NonFiniteError, match=r"weight model.norm.weight holds 1 non-finite value\(s\); final not"):
        _save(s, tmp_path / "final")
    assert not (tmp_path / "final").exists() and list(tmp_path.iterdir()) == []
