"""The base that ships inside the package: it is the current recipe's, it has the quality recorded with
it, and the recipe (its quick version, pretrained here) still trains a base of the recorded quality."""

import json
from dataclasses import asdict

import pytest
import torch

from reweightlab.models import load_model, load_tokenizer
from reweightlab.models.embedded import EmbeddedSpec, build_char_tokenizer, build_embedded_model
from reweightlab.recipes import pretrain as P


def _meta() -> dict:
    return json.loads((P.PACKAGED_BASE / "reweightlab.json").read_text())


def _within(measured: dict, recorded: dict, sigmas: float = 4.0) -> list[str]:
    """The rules on which two quality records differ by more than ``sigmas`` combined standard errors."""
    off = []
    for rule in ("id", "ood"):
        a, b = measured[rule], recorded[rule]
        tol = sigmas * (a["se"] ** 2 + b["se"] ** 2) ** 0.5
        if abs(a["success_rate"] - b["success_rate"]) > tol:
            off.append(f"{rule}: {a['success_rate']:.4f} vs recorded {b['success_rate']:.4f} (tolerance {tol:.4f})")
    return off


def test_packaged_base_is_the_current_recipe():
    meta = _meta()
    spec = P.PretrainSpec()
    # a changed recipe or corpus changes the hash: the packaged base must then be rebuilt
    # (tools/build_packaged_base.py), never served under the new recipe's name
    assert meta["key"] == spec.key() and meta["corpus_version"] == P.CORPUS_VERSION
    assert meta["spec"] == json.loads(json.dumps(asdict(spec)))
    assert P.packaged_embedded(spec) == P.PACKAGED_BASE
    assert P.packaged_embedded(P.QUICK_SPEC) is None  # another recipe is not served by the package
    assert P.packaged_embedded(P.PretrainSpec(seed=1)) is None


def test_default_base_comes_from_the_package_without_pretraining(tmp_path, monkeypatch):
    monkeypatch.setenv("REWEIGHTLAB_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(P, "pretrain", lambda spec, dest, **kw: calls.append((spec, dest)))
    assert P.ensure_embedded() == P.PACKAGED_BASE and P.resolve_model_path("embedded") == str(P.PACKAGED_BASE)
    assert calls == [] and not (tmp_path / "cache").exists()
    # --rebuild pretrains the default recipe again, into the cache; another recipe is pretrained there too
    assert P.ensure_embedded(rebuild=True) == P.embedded_path(P.PretrainSpec())
    assert P.ensure_embedded(P.QUICK_SPEC) == P.embedded_path(P.QUICK_SPEC)
    assert [c[0] for c in calls] == [P.PretrainSpec(), P.QUICK_SPEC]


def test_pretrain_command_names_the_packaged_base(tmp_path, monkeypatch, capsys):
    from reweightlab.cli import main

    monkeypatch.setenv("REWEIGHTLAB_CACHE", str(tmp_path / "cache"))
    assert main(["pretrain", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert str(P.PACKAGED_BASE) in out and "shipped with the package" in out and "--rebuild" in out
    assert not (tmp_path / "cache").exists()


def test_packaged_base_loads_with_its_recorded_figures():
    meta = _meta()
    model, tok = load_model(str(P.PACKAGED_BASE)), load_tokenizer(str(P.PACKAGED_BASE))
    assert sum(p.numel() for p in model.parameters()) == meta["parameters"]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert meta["loss_curve"][-1][1] < 0.8 * meta["loss_curve"][1][1]  # it was trained, not just initialised
    measured = P.base_quality(model.eval(), tok, P.PretrainSpec(), **{k: meta["quality"][k] for k in
                                                                        ("prompts", "samples", "seed")})
    assert _within(measured, meta["quality"]) == []
    # the comparison can fail: an untrained model of the same shape is far outside the tolerance
    untrained = build_embedded_model(build_char_tokenizer(), EmbeddedSpec(), seed=0).eval()
    control = P.base_quality(untrained, tok, P.PretrainSpec(), prompts=meta["quality"]["prompts"], samples=4)
    assert len(_within(control, meta["quality"])) == 2


@pytest.mark.slow
def test_recipe_still_trains_a_base_of_the_recorded_quality(tmp_path):
    """The quick recipe (150 steps, ~1.5 min on one thread), pretrained here, against the figures the
    same recipe gave when the packaged base was built: final training loss within 0.03 and the success
    rate per rule within 4 standard errors."""
    check = _meta()["recipe_check"]
    assert check["key"] == P.QUICK_SPEC.key(), "the quick recipe changed: rebuild with tools/build_packaged_base.py"
    meta = P.pretrain(P.QUICK_SPEC, tmp_path / "quick", progress=False, log=lambda *_: None)
    assert abs(meta["loss_curve"][-1][1] - check["final_loss"]) <= 0.03, (meta["loss_curve"], check["final_loss"])
    assert _within(meta["quality"], check["quality"]) == []
    # and the packaged base, trained 8x longer from the same recipe, is the stronger one on its own rule
    assert _meta()["quality"]["id"]["success_rate"] > meta["quality"]["id"]["success_rate"]
