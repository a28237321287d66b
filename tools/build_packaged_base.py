"""Build the base that ships inside the package (src/reweightlab/assets/embedded) from its recipe.

    python tools/build_packaged_base.py            # pretrain the default recipe and the quick one, then install
    python tools/build_packaged_base.py --from DIR # the default recipe's base: `reweightlab pretrain --out DIR`

The default recipe (recipes.pretrain.PretrainSpec()) is pretrained with `pretrain`, its figures (loss
curve, quality per rule, machine) recorded beside it. The quick recipe is pretrained too and its
figures recorded as `recipe_check`: tests/e2e/test_packaged_base.py pretrains the quick recipe again
and asserts it reaches that quality, so a change that breaks the recipe fails a test even though the
default base is never rebuilt in the test suite. Rebuild after any change to the recipe or the corpus
(the recipe hash changes; a test checks that the packaged base's hash is the current recipe's).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from reweightlab.models import load_model, load_tokenizer
from reweightlab.recipes.pretrain import (
    CORPUS_VERSION,
    PACKAGED_BASE,
    QUICK_SPEC,
    PretrainSpec,
    base_quality,
    cpu_name,
    pretrain,
)

FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
         "reweightlab.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", help="a `reweightlab pretrain --out` folder of the default recipe")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    spec = PretrainSpec()
    with tempfile.TemporaryDirectory() as tmp:
        if args.source:
            src = Path(args.source)
            meta = json.loads((src / "reweightlab.json").read_text())
            if meta["spec"] != json.loads(json.dumps(asdict(spec))):
                raise SystemExit(f"{src} was not built from the default recipe: {meta['spec']}")
            if "quality" not in meta:  # built before `pretrain` recorded these: the same figures, measured now
                meta |= {"key": spec.key(), "corpus_version": CORPUS_VERSION,
                         "quality": base_quality(load_model(str(src)).eval(), load_tokenizer(str(src)), spec)}
                meta.setdefault("built_with", {"torch": torch.__version__, "threads": torch.get_num_threads(),
                                               "machine": cpu_name()})
        else:
            src = Path(tmp) / "default"
            meta = pretrain(spec, src)
        quick = pretrain(QUICK_SPEC, Path(tmp) / "quick")
        meta["recipe_check"] = {"spec": asdict(QUICK_SPEC), "key": QUICK_SPEC.key(),
                                "final_loss": quick["loss_curve"][-1][1], "quality": quick["quality"],
                                "built_with": quick["built_with"]}
        stage = Path(tmp) / "stage"
        stage.mkdir()
        for name in FILES[:-1]:
            shutil.copy2(src / name, stage / name)
        (stage / "reweightlab.json").write_text(json.dumps(meta, indent=2) + "\n")
        if PACKAGED_BASE.exists():
            shutil.rmtree(PACKAGED_BASE)
        shutil.copytree(stage, PACKAGED_BASE)
    check = meta["recipe_check"]
    print(f"installed {PACKAGED_BASE} (recipe {spec.key()}): quality {meta['quality']}; "
          f"quick recipe check: loss {check['final_loss']:.4f}, quality {check['quality']}")


if __name__ == "__main__":
    main()
