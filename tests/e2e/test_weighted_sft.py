"""Weighted SFT on a data file's `weight` column: weight 1 is SFT, weight 0 is no update, bad rows are named."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from reweightlab.cli import main


def _rows(path, weights):
    rows = [{"prompt": f"{i % 7}+1=", "completion": str(i % 7 + 1), "weight": w, "split": "train"}
            for i, w in enumerate(weights)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train(tmp_path, model, data, name, method="weighted_sft"):
    run = tmp_path / name
    code = main(["train", f"method={method}", f"model.path={model}", f"data.path={data}", f"output_dir={run}",
                 "optim.steps=3", "optim.sequences_per_step=8", "optim.lr=1e-2", "--no-progress"])
    assert code == 0
    return load_file(str(run / "final" / "model.safetensors"))


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_weight_one_is_sft_and_weight_zero_leaves_the_model(tmp_path, tiny_model_dir):
    start = load_file(str(tiny_model_dir / "model.safetensors"))
    sft = _train(tmp_path, tiny_model_dir, _rows(tmp_path / "ones.jsonl", [1.0] * 16), "sft", method="sft")
    ones = _train(tmp_path, tiny_model_dir, tmp_path / "ones.jsonl", "ones")
    assert _same(ones, sft)  # the same draws, the same weights: SFT to the bit
    zeros = _train(tmp_path, tiny_model_dir, _rows(tmp_path / "zeros.jsonl", [0.0] * 16), "zeros")
    assert _same(zeros, start)  # no gradient: AdamW without weight decay does not move
    mixed = _train(tmp_path, tiny_model_dir, _rows(tmp_path / "mixed.jsonl", [0.0, 3.0] * 8), "mixed")
    assert not _same(mixed, sft) and not _same(mixed, start)


@pytest.mark.parametrize("bad", ["heavy", -1.0, None])
def test_a_bad_weight_names_the_file_row_and_field(tmp_path, tiny_model_dir, capsys, bad):
    data = _rows(tmp_path / "w.jsonl", [1.0, 1.0, bad])
    code = main(["train", "method=weighted_sft", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"output_dir={tmp_path / 'r'}", "--no-progress"])
    assert code == 2
    assert f"{data}:row 3: field 'weight' must be a finite number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_weighted_sft_needs_a_data_file():
    from reweightlab.config import ConfigError
    from reweightlab.train.config import config_from_dict

    with pytest.raises(ConfigError, match="method 'weighted_sft' trains on a data file's rows: set data.path"):
        config_from_dict({"method": "weighted_sft"})
