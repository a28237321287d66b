"""Pretrain the embedded default model on a GeneralPoints corpus; ship or cache it.

The default recipe's base is built once by ``reweightlab pretrain --out`` and shipped inside the
package (``assets/embedded``, with its recipe hash, loss curve and quality figures): a fresh machine
skips the pretraining, and every machine starts from the same weights. Any other recipe is pretrained
on first use and cached under its hash; ``reweightlab pretrain --rebuild`` reproduces the default.

The corpus is built so the base model is a useful reference for post-training: it knows the format
and often (not always) solves in-distribution hands, and is weaker under the other rule.
- prompts: `id_fraction` under the in-distribution rule (J=Q=K=10), the rest under the OOD rule;
- completions: `correct_fraction` a solver solution drawn uniformly; `misread_fraction` an expression
  over the values the face cards would have under the *other* rule (a solution for those values when
  one exists: the classic rule confusion); the rest a legal expression over the right values with
  the wrong result;
- revision episodes (`revision_fraction` of the sequences): one or two wrong attempts (drawn as
  above, misread or wrong value), each followed by the verifier's feedback (`GeneralPoints.feedback`,
  e.g. `?used 1 8 11 5:`), then a solver solution. Loss on the final, corrected attempt only: the
  wrong attempts and the feedback are context, so the first-attempt distribution is learned from the
  plain sequences alone and revision is something the base can use, not something it is told to do.
Loss on completion tokens only (the prompts are random cards; there is nothing to learn in them).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from reweightlab.config import setting
from reweightlab.models.embedded import EmbeddedSpec, build_char_tokenizer, build_embedded_model

CORPUS_VERSION = 4  # 4: revision episodes; 3: GeneralPoints splits by value multiset (2: by rank multiset)


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that determines the embedded base model; its hash names the cache folder."""

    arch: EmbeddedSpec = setting(EmbeddedSpec(), "the embedded model's architecture (models/embedded.py)")
    steps: int = setting(1200, "pretraining steps (a fixed count, not a time budget: reproducible)")
    sequences_per_step: int = setting(128, "sequences per step")
    lr: float = setting(2e-3, "peak learning rate (AdamW, cosine after warm-up)")
    warmup_steps: int = setting(50, "linear warm-up steps")
    weight_decay: float = setting(0.1, "AdamW weight decay")
    pool_hands: int = setting(3000, "distinct training problems the corpus draws from")
    id_fraction: float = setting(0.85, "share of prompts under the in-distribution rule (the rest: the other rule)")
    correct_fraction: float = setting(0.70, "share of completions that are a solver solution")
    misread_fraction: float = setting(0.15, "share that read the face cards under the other rule")
    revision_fraction: float = setting(
        0.2, "share of sequences that are revision episodes (wrong attempt, feedback, corrected attempt)")
    second_revision_fraction: float = setting(0.3, "share of the revision episodes with two wrong attempts, not one")
    target: int = setting(24, "the target value of the arithmetic")
    seed: int = setting(0, "seed of the corpus and the initialisation")

    def key(self) -> str:
        blob = json.dumps({"spec": asdict(self), "corpus_version": CORPUS_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Micro-batches of a step, sorted by length: the revision episodes (about 2.5x the plain sequences)
# share the last ones, so the plain sequences are not padded to an episode's length.
PRETRAIN_MICROBATCH = 32

QUICK_SPEC = PretrainSpec(steps=150, pool_hands=600, warmup_steps=15)


def cache_root() -> Path:
    return Path(os.environ.get("REWEIGHTLAB_CACHE", Path.home() / ".cache" / "reweightlab"))


def embedded_path(spec: PretrainSpec) -> Path:
    return cache_root() / f"embedded-{spec.key()}"


def resolve_model_path(path: str, progress: bool = True) -> str:
    """'embedded' means the default model, pretrained here once and cached; any other path is itself."""
    return str(ensure_embedded(progress=progress)) if path == "embedded" else path


PACKAGED_BASE = Path(__file__).resolve().parent.parent / "assets" / "embedded"
"""The default recipe's base, built by `reweightlab pretrain --out` and shipped inside the package (about
3 MB): a fresh machine skips the pretraining, and every machine starts from the same weights."""


def packaged_embedded(spec: PretrainSpec) -> Path | None:
    """The packaged base when it was built from exactly ``spec`` (same recipe hash), else None."""
    meta_file = PACKAGED_BASE / "reweightlab.json"
    if not (meta_file.is_file() and (PACKAGED_BASE / "model.safetensors").is_file()):
        return None
    return PACKAGED_BASE if json.loads(meta_file.read_text()).get("key") == spec.key() else None


def ensure_embedded(spec: PretrainSpec | None = None, *, progress: bool = True, log=print,
                    rebuild: bool = False) -> Path:
    """The embedded model folder: the packaged one when its recipe is ``spec``, else the cached one,
    pretraining it first if it is not there. ``rebuild``: pretrain into the cache even so (replacing an
    earlier cached copy), to reproduce the packaged base from its recipe."""
    spec = spec or PretrainSpec()
    if not rebuild and (packaged := packaged_embedded(spec)) is not None:
        return packaged
    path = embedded_path(spec)
    if not rebuild and (path / "config.json").is_file() and (path / "reweightlab.json").is_file():
        return path
    log(f"pretraining the embedded base model ({spec.steps} steps); cached at {path}")
    pretrain(spec, path, progress=progress, log=log)
    return path


def cpu_name() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def base_quality(model, tok, spec: PretrainSpec, *, prompts: int = 96, samples: int = 32, seed: int = 0) -> dict:
    """What a base can do, per rule: the success rate of ``samples`` samples (temperature 1, 24 new
    tokens) on each of ``prompts`` held-out test prompts, with the standard error over prompts. Recorded
    by `pretrain` (so the packaged base carries its figures); the recipe test compares a fresh base."""
    from reweightlab.rollout import HFRolloutEngine
    from reweightlab.rollout.scored import sample_and_score
    from reweightlab.tasks.generalpoints import GeneralPoints

    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    task = GeneralPoints(target=spec.target)
    out = {"prompts": prompts, "samples": samples, "seed": seed}
    for variant in ("id", "ood"):
        problems = task.problems(variant, "test", prompts, seed)
        scored = sample_and_score(engine, task, problems, tok, samples_per_prompt=samples, max_new_tokens=24,
                                  seed=seed)
        rate_P = scored.success_PG.double().mean(1)
        out[variant] = {"success_rate": round(float(rate_P.mean()), 5),
                        "se": round(float(rate_P.std(unbiased=True) / prompts ** 0.5), 5)}
    return out


def _misread(gp, cards, rule, rng: random.Random) -> str | None:
    """A plausible wrong answer: the face cards valued under the other rule."""
    from reweightlab.tasks.generalpoints import OTHER_RULE, card_values, random_expression, solve

    wrong = card_values(cards, OTHER_RULE[rule])
    if wrong == card_values(cards, rule):
        return None  # no face card: nothing to misread
    sols = solve(wrong, gp.target)
    return rng.choice(sols) if sols else random_expression(wrong, rng)


def _wrong_value(values, target: int, rng: random.Random) -> str:
    from reweightlab.tasks.generalpoints import evaluate, random_expression

    for _ in range(20):
        expr = random_expression(values, rng)
        if evaluate(expr) != target:
            return expr
    return expr


def _wrong_attempt(gp, prob, spec: PretrainSpec, rng: random.Random) -> str:
    """A wrong completion: a misread of the face cards where the hand has one, else a wrong value."""
    from reweightlab.tasks.generalpoints import cards_of, values_of

    text = _misread(gp, cards_of(prob), prob.variant, rng) if rng.random() < 0.5 else None
    if text is None or gp.verify(prob, text).success:
        text = _wrong_value(values_of(prob), spec.target, rng)
    return text


def build_corpus(spec: PretrainSpec, progress: bool = True) -> tuple[list[str], list[list[tuple[str, bool]]], dict]:
    """(prompts, completions, description) for `spec.steps * spec.sequences_per_step` sequences.

    A completion is a list of (text, carries loss) parts: one part for a plain sequence; for a revision
    episode, the wrong attempts and their feedback (no loss) then the corrected attempt. Every attempt
    ends with EOS (added at encoding); feedback parts do not.
    """
    from reweightlab.tasks.generalpoints import GeneralPoints, cards_of, values_of

    gp = GeneralPoints(target=spec.target)
    rng = random.Random(spec.seed)
    n_id = round(spec.pool_hands * spec.id_fraction)
    pool = gp.problems("id", "train", n_id, spec.seed) + gp.problems(
        "ood", "train", spec.pool_hands - n_id, spec.seed
    )
    sols = {p.id: gp.solutions(p) for p in tqdm(pool, desc="solving corpus hands", disable=not progress)}
    n = spec.steps * spec.sequences_per_step
    prompts, completions = [], []
    kinds = {"correct": 0, "misread": 0, "wrong_value": 0, "revision_1": 0, "revision_2": 0}
    ids = [p for p in pool if p.variant == "id"]
    oods = [p for p in pool if p.variant == "ood"]
    for _ in range(n):
        prob = rng.choice(ids) if rng.random() < spec.id_fraction else rng.choice(oods)
        if rng.random() < spec.revision_fraction:
            wrong = 2 if rng.random() < spec.second_revision_fraction else 1
            parts: list[tuple[str, bool]] = []
            for _ in range(wrong):
                attempt = _wrong_attempt(gp, prob, spec, rng)
                parts += [(attempt, False), (gp.feedback(prob, attempt, gp.verify(prob, attempt)), False)]
            parts.append((rng.choice(sols[prob.id]), True))
            kinds[f"revision_{wrong}"] += 1
            prompts.append(prob.prompt)
            completions.append(parts)
            continue
        u = rng.random()
        text, kind = None, "wrong_value"
        if u < spec.correct_fraction:
            text, kind = rng.choice(sols[prob.id]), "correct"
        elif u < spec.correct_fraction + spec.misread_fraction:
            text = _misread(gp, cards_of(prob), prob.variant, rng)
            kind = "misread" if text is not None else "wrong_value"
        if text is None:
            text = _wrong_value(values_of(prob), spec.target, rng)
        kinds[kind] += 1
        prompts.append(prob.prompt)
        completions.append([(text, True)])
    desc = {"sequences": n, "pool_hands": len(pool), "kinds": kinds, "id_fraction": spec.id_fraction,
            "revision_fraction": spec.revision_fraction}
    return prompts, completions, desc


def encode_corpus(tok, prompts: list[str], completions: list[list[tuple[str, bool]]]):
    """The corpus as a SequenceStore: attempts end with EOS, feedback does not; loss where marked."""
    from reweightlab.data.encoding import encode_prompts
    from reweightlab.data.episodes import Segment, episode_store
    from reweightlab.tasks.generalpoints.verify import FEEDBACK_OPEN

    texts = [text for parts in completions for text, _ in parts]
    encoded = iter(tok(texts, add_special_tokens=False)["input_ids"])
    episodes = []
    for parts in completions:  # once per sequence
        segs = []
        for text, loss in parts:
            ids = next(encoded)
            is_feedback = text.startswith(FEEDBACK_OPEN)
            segs.append(Segment(ids if is_feedback else ids + [tok.eos_token_id], loss))
        episodes.append(segs)
    return episode_store(encode_prompts(tok, prompts), episodes, tok.pad_token_id)


def pretrain(spec: PretrainSpec, dest: Path, *, progress: bool = True, log=print) -> dict:
    """Next-token training from scratch on the corpus; saves with save_pretrained, atomically."""
    from reweightlab.data.store import microbatches
    from reweightlab.models.forward import forward_logits_logp
    from reweightlab.models.saving import save_model_atomic
    from reweightlab.train.step import accumulated_step, make_optimizer, make_scheduler

    torch.set_flush_denormal(True)
    torch.manual_seed(spec.seed)
    tok = build_char_tokenizer()
    model = build_embedded_model(tok, spec.arch, seed=spec.seed).train()
    prompts, completions, desc = build_corpus(spec, progress)
    store = encode_corpus(tok, prompts, completions)
    opt = make_optimizer(model, lr=spec.lr, weight_decay=spec.weight_decay)
    sched = make_scheduler(opt, schedule="cosine", warmup_steps=spec.warmup_steps, total_steps=spec.steps)

    def token_loss(mb):
        _, logp = forward_logits_logp(model, mb)
        return -logp, {}

    t0, tokens, losses = time.perf_counter(), 0, []
    bar = tqdm(range(spec.steps), desc="pretraining", disable=not progress)
    for step in bar:
        idx = torch.arange(step * spec.sequences_per_step, (step + 1) * spec.sequences_per_step)
        batch = store.select(idx)
        tokens += int(batch.total_len_N.sum())
        stats = accumulated_step(
            model, opt, sched, microbatches(batch, PRETRAIN_MICROBATCH), token_loss,
            reduction="token_mean", max_grad_norm=1.0, device="cpu", constant_per_sequence=1.0,
        )
        if step % 50 == 0 or step == spec.steps - 1:
            losses.append((step, float(stats["loss"])))
            bar.set_postfix(loss=f"{losses[-1][1]:.3f}")
    seconds = time.perf_counter() - t0
    meta = {
        "spec": asdict(spec), "key": spec.key(), "corpus_version": CORPUS_VERSION, "corpus": desc,
        "train_seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / seconds), "loss_curve": losses,
        "parameters": sum(p.numel() for p in model.parameters()),
        "quality": base_quality(model.eval(), tok, spec),
        "built_with": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "machine": cpu_name()},
    }
    save_model_atomic(model, tok, dest, extra=meta)
    log(f"pretrained in {seconds:.0f} s ({meta['tokens_per_s']} tokens/s, final loss {losses[-1][1]:.3f})")
    return meta
