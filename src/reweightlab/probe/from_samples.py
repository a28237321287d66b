"""`reweightlab probe --samples`: the probe's figures from completions sampled elsewhere (vLLM, an
lm-evaluation-harness ``--log_samples`` file, another library, or this probe's own ``--keep-samples``).

A samples file is JSONL. Each line is one of:
- one or several samples of one prompt: ``prompt`` (the text) and/or ``prompt_id``; ``completion``
  (or ``text``) or a list ``completions``; optionally ``reward`` (a number, or a list beside
  ``completions``), ``success`` (true/false), ``logprob`` (the sampler's log-probability of the whole
  completion; ``logp`` and vLLM's ``cumulative_logprob`` are read too; a list beside ``completions``),
  ``split`` (train/test); every other field is the row's data, handed to ``--reward`` by name;
- an lm-evaluation-harness sample: ``doc_id``, ``arguments`` (the prompt is the first argument of the
  first request), ``resps`` (every response of every request is one sample: a task with
  ``repeats: n`` gives n), ``doc`` and ``target`` (handed to ``--reward`` by name).

Scores: ``--reward SPEC`` when given (called as in training: keywords, TRL's way; a samples file has
no tokens, so ``completion_ids`` is not passed), else each row's own ``reward``; a sample succeeds when
its row says ``success``, else when its reward is >= ``--success-threshold``.

What the files give: pass@k with intervals, the regimes by sampling, every paired comparison that rests
on successes (Δpass@k, k*, the transition matrix, the elicitation / creation split, support change,
diversity), the base's own free-energy gap, and with log-probs the sampler's mean negative
log-likelihood (an estimate of its sequence entropy). What needs the models' weights is left out and
named in probe.json's ``from_samples.not_measured``: the KL between the models, the trained models'
free-energy gaps, the likelihood estimator, the verifier-guided search (so nothing is barrier) and
revision episodes.

Independence is kept as in a probe that samples: the base's regimes come from the first K samples of
each prompt in its file, its pass@k and gains from the rest (disjoint); a trained model's regimes from
the first K of its samples, its pass@k from all of them. (``cat samples/base.regime.jsonl
samples/base.jsonl`` gives a --keep-samples probe's base in that order.)
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from reweightlab.probe.study import (
    PROBE_VERSION,
    ModelProbe,
    ProbeError,
    ProbeSettings,
    SearchSummary,
    StageSeconds,
)
from reweightlab.tasks.base import SPLITS, Problem

TEXT_KEYS = ("completion", "text")
LOGP_KEYS = ("logprob", "logp", "cumulative_logprob")
OWN_KEYS = frozenset({"prompt", "prompt_id", "completions", "reward", "success", "split", "sample", "reason",
                      *TEXT_KEYS, *LOGP_KEYS})
NOT_MEASURED = {
    "distance": "KL(model || base) and back need both models' log-probs on each other's samples",
    "free_energy (trained models)": "the free energy of a trained model needs its KL to the base",
    "likelihood estimator": "p_known scores the listed solutions with the model",
    "search": "the verifier-guided search runs the model (so no prompt can be shown to be barrier)",
    "revision": "revision episodes run the model",
}
REWARD_BATCH = 512


def parse_samples(specs: list[str]) -> dict[str, str]:
    """``FILE`` or ``LABEL=FILE`` entries to {label: file}; the base is the one labelled 'base', else the first."""
    out: dict[str, str] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = ("base" if not out else Path(spec).stem), spec
        if not label or not path:
            raise ProbeError(f"--samples {spec!r}: expected FILE or LABEL=FILE")
        if label in out:
            raise ProbeError(f"--samples: the label {label!r} is used twice (name the files with LABEL=FILE)")
        out[label] = path
    if "base" not in out:
        raise ProbeError("--samples: one file must be the base's (the first unlabelled one, or base=FILE)")
    return {"base": out.pop("base")} | out


@dataclass
class PromptSamples:
    """Every sample of one prompt in one file, in file order."""

    key: str
    prompt: str
    line: int
    split: str | None = None
    fields: dict = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    rewards: list[float | None] = field(default_factory=list)
    success: list[bool | None] = field(default_factory=list)
    logps: list[float | None] = field(default_factory=list)


def _aligned(row: dict, key: str, n: int, where: str, kind) -> list:
    """A per-sample value: a list beside ``completions`` or one value for a single completion."""
    value = row.get(key)
    if value is None:
        return [None] * n
    values = value if isinstance(value, list) else [value] * (1 if n == 1 else 0)
    if len(values) != n:
        raise ProbeError(f"{where}: '{key}' must give one value per completion ({n}), got {value!r}")
    out = []
    for v in values:
        if kind is bool:
            if not isinstance(v, bool):
                raise ProbeError(f"{where}: '{key}' must be true or false, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ProbeError(f"{where}: '{key}' must be a finite number, got {v!r}")
        out.append(kind(v))
    return out


def _lm_eval_row(row: dict, where: str) -> tuple[str, str, list[str], dict]:
    """(key, prompt, completions, fields) of an lm-evaluation-harness ``--log_samples`` line."""
    args = row.get("arguments")
    if isinstance(args, dict):  # {"gen_args_0": {"arg_0": prompt, "arg_1": kwargs}, ...}
        first = next(iter(args.values()), None)
        prompt = first.get("arg_0") if isinstance(first, dict) else None
    elif isinstance(args, list) and args and isinstance(args[0], list) and args[0]:
        prompt = args[0][0]
    else:
        prompt = None
    if not isinstance(prompt, str):
        raise ProbeError(f"{where}: an lm-eval sample's 'arguments' must hold the prompt as its first argument")
    resps = row.get("resps")
    texts = [r for req in resps for r in req] if isinstance(resps, list) and all(
        isinstance(req, list) for req in resps) else None
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ProbeError(f"{where}: an lm-eval sample's 'resps' must be lists of generated texts (a generate_until "
                         f"task), got {resps!r:.80}")
    doc = row.get("doc") if isinstance(row.get("doc"), dict) else {}
    fields = dict(doc) | ({"target": row["target"]} if "target" in row else {})
    return str(row["doc_id"]), prompt, texts, fields


def _own_row(row: dict, where: str) -> tuple[str, str, list[str], dict]:
    key = row.get("prompt_id", row.get("prompt"))
    if not isinstance(key, str | int) or isinstance(key, bool):
        raise ProbeError(f"{where}: each line needs 'prompt' (the text) or 'prompt_id'")
    prompt = row.get("prompt", str(key))
    if not isinstance(prompt, str):
        raise ProbeError(f"{where}: 'prompt' must be a string, got {type(prompt).__name__}")
    if "completions" in row:
        texts = row["completions"]
        if not isinstance(texts, list) or not texts:
            raise ProbeError(f"{where}: 'completions' must be a non-empty list of strings")
    else:
        name = next((k for k in TEXT_KEYS if k in row), None)
        if name is None:
            raise ProbeError(f"{where}: each line needs 'completion' (or 'text', or a list 'completions')")
        texts = [row[name]]
    if not all(isinstance(t, str) for t in texts):
        raise ProbeError(f"{where}: every completion must be a string")
    return str(key), prompt, texts, {k: v for k, v in row.items() if k not in OWN_KEYS}


def read_samples(path: str | Path) -> list[PromptSamples]:
    """A samples file (module docstring), grouped by prompt in the order prompts first appear."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeError(f"--samples {path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    groups: dict[str, PromptSamples] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ProbeError(f"{where}: not a JSON object ({exc})") from None
        if not isinstance(row, dict):
            raise ProbeError(f"{where}: expected a JSON object, got {type(row).__name__}")
        key, prompt, texts, fields = (_lm_eval_row if "doc_id" in row and "resps" in row else _own_row)(row, where)
        g = groups.get(key)
        if g is None:
            g = groups[key] = PromptSamples(key=key, prompt=prompt, line=line_no, fields=fields)
        elif g.prompt != prompt:
            raise ProbeError(f"{where}: prompt {key!r} has another text than on line {g.line}")
        split = row.get("split")
        if split is not None:
            if split not in SPLITS:
                raise ProbeError(f"{where}: 'split' must be one of {SPLITS}, got {split!r}")
            g.split = split
        n = len(texts)
        logp_key = next((k for k in LOGP_KEYS if k in row), None)
        g.texts += texts
        g.rewards += _aligned(row, "reward", n, where, float)
        g.success += _aligned(row, "success", n, where, bool)
        g.logps += _aligned(row, logp_key, n, where, float) if logp_key else [None] * n
    if not groups:
        raise ProbeError(f"--samples {path}: the file holds no samples")
    return list(groups.values())


def _score(label: str, path: str, groups: list[PromptSamples], runner, threshold: float,
           progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards_PN, success_PN): from the reward function when there is one, else from the rows."""
    P, N = len(groups), len(groups[0].texts)
    if runner is not None:
        flat = [(g, t) for g in groups for t in g.texts]
        scores: list[float] = []
        names = sorted({k for g in groups for k in g.fields})
        with tqdm(total=len(flat), desc=f"scoring {label}", unit="sample", disable=not progress, leave=False) as bar:
            for i in range(0, len(flat), REWARD_BATCH):
                part = flat[i : i + REWARD_BATCH]
                columns = {k: [g.fields.get(k) for g, _ in part] for k in names}
                scores += runner([g.prompt for g, _ in part], [t for _, t in part], columns)
                bar.update(len(part))
        rewards_PN = torch.tensor(scores, dtype=torch.float32).view(P, N)
        return rewards_PN, rewards_PN >= threshold
    missing = next(((g, j) for g in groups for j, r in enumerate(g.rewards) if r is None), None)
    if missing is not None:
        raise ProbeError(f"{path}:{missing[0].line}: prompt {missing[0].key!r} has a sample without 'reward'; give "
                         "every sample a reward, or score them with --reward SPEC")
    rewards_PN = torch.tensor([g.rewards for g in groups], dtype=torch.float32)
    told = torch.tensor([[s is not None for s in g.success] for g in groups])
    said = torch.tensor([[bool(s) for s in g.success] for g in groups])
    return rewards_PN, torch.where(told, said, rewards_PN >= threshold)


def _aligned_groups(label: str, path: str, groups: list[PromptSamples], keys: list[str]) -> list[PromptSamples]:
    """This file's prompts in the base's order; every file holds the same prompts, each the same count."""
    by_key = {g.key: g for g in groups}
    missing = [k for k in keys if k not in by_key]
    extra = [g.key for g in groups if g.key not in set(keys)]
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, which the base's file has not"
        raise ProbeError(f"--samples {label}={path}: the files must hold the same prompts; this one {what} "
                         f"({len(missing)} missing, {len(extra)} extra)")
    ordered = [by_key[k] for k in keys]
    counts = Counter(len(g.texts) for g in ordered)
    if len(counts) > 1:
        n = counts.most_common(1)[0][0]
        odd = next(g for g in ordered if len(g.texts) != n)
        raise ProbeError(f"{path}:{odd.line}: prompt {odd.key!r} has {len(odd.texts)} samples, most prompts {n}; "
                         "every prompt of a file needs the same number of samples")
    return ordered


def _counts(texts_P: list[list[str]], rewards_PN, success_PN):
    """SampledCounts of some samples of every prompt; a success's solution key is its stripped text."""
    from reweightlab.probe.sampling import SampledCounts

    P, N = success_PN.shape
    keys_P = [[t.strip() if s else None for t, s in zip(texts, row, strict=True)]
              for texts, row in zip(texts_P, success_PN.tolist(), strict=True)]
    failures = int((~success_PN).sum())
    return SampledCounts(
        n_P=torch.full((P,), N, dtype=torch.long), c_P=success_PN.sum(1).long(), rewards_PN=rewards_PN,
        success_PN=success_PN, keys_P=keys_P, unlisted_PN=None, kept=None, keep_per_prompt=0,
        failure_kinds={"failed": failures} if failures else {}, completion_tokens=0, seconds=0.0, seed=-1,
    )


def _model_from_file(label: str, groups, rewards_PN, success_PN, settings: ProbeSettings, *, is_base: bool,
                     seconds: float) -> ModelProbe:
    """A ModelProbe built from one file's scored samples (module docstring: which samples make what)."""
    from reweightlab.probe.study import classify_regimes

    K = settings.thresholds.budget_K
    c_K_P = success_PN[:, :K].sum(1).long()
    measure = slice(K, None) if is_base else slice(None)
    regime_counts = _counts([g.texts[:K] for g in groups], rewards_PN[:, :K], success_PN[:, :K])
    s = _counts([g.texts[measure] for g in groups], rewards_PN[:, measure], success_PN[:, measure])
    none_found = torch.zeros(len(groups), dtype=torch.bool)
    sampling, _ = classify_regimes(c_K_P, None, None, none_found, settings)
    return ModelProbe(
        label=label, samples=s, c_K_P=c_K_P, solutions_K=regime_counts.solutions(), regime_seed=-1,
        p_known_P=None, max_logp_P=None, unlisted_success_P=None, search_found_P=none_found,
        search=SearchSummary(enabled=False, budget=None, prompts=int((c_K_P == 0).sum()), found=0,
                             forward_tokens=0, seconds=0.0),
        revision=None, sampling=sampling, likelihood=None,
        seconds=StageSeconds(sampling=round(seconds, 2), likelihood=0.0, search=0.0),
    )


def _nll_P(groups, measure: slice) -> torch.Tensor | None:
    """Per prompt, the mean -log pi(y | x) of its (measuring) samples; None unless every sample has a log-prob."""
    logps = [g.logps[measure] for g in groups]
    if any(v is None for row in logps for v in row):
        return None
    return -torch.tensor(logps, dtype=torch.float64).mean(1)


def _file_settings(settings: ProbeSettings, counts: dict[str, int], files: dict[str, str],
                   user_keys: set[str]) -> ProbeSettings:
    """The settings a samples probe runs with: n from the files, no search nor revision; what cannot be
    done without the models refused by name."""
    K = settings.thresholds.budget_K
    if settings.estimator != "sampling":
        raise ProbeError("--samples: the likelihood estimator scores the listed solutions with the model; "
                         "use --estimator sampling or probe the model folders")
    if settings.revision_attempts > 1:
        raise ProbeError("--samples: revision episodes run the model; probe the model folders for them")
    if "task" in user_keys:
        raise ProbeError("--samples: the samples are scored by --reward SPEC or by their own reward / success "
                         "fields; --task does not apply to them")
    asked = {k for k in user_keys if k in ("n", "keep_samples", "keep_per_prompt", "chunk_sequences") or
             k.startswith("search.") or k == "search" and settings.search is not None}
    if asked:
        raise ProbeError(f"--samples: {', '.join(sorted(asked))} set the sampling or the search, which a samples "
                         "probe does not do (its n is the files')")
    if counts["base"] <= K:
        raise ProbeError(f"--samples base={files['base']}: {counts['base']} samples per prompt; the base needs more "
                         f"than the regime budget K = {K} (its first K make the regimes, the rest measure pass@k): "
                         "lower --budget-k or give more samples")
    for label, m in counts.items():
        if label != "base" and m < K:
            raise ProbeError(f"--samples {label}={files[label]}: {m} samples per prompt, below the regime budget "
                             f"K = {K} (a trained model's regimes come from its first K samples): lower --budget-k")
    n = min([counts["base"] - K, *(m for label, m in counts.items() if label != "base")])
    ks = settings.resolved_ks() if settings.ks else None
    if ks and max(ks) > n:
        raise ProbeError(f"--samples: the largest k = {max(ks)} exceeds the {n} samples per prompt that measure "
                         f"pass@k (the base's are its samples after the first K = {K}); drop k > {n} from --k")
    out = dataclasses.replace(settings, n=n, search=None, keep_samples=False, keep_per_prompt=1)
    out.check_figures()  # the remaining checks (betas, bootstrap, device, ...); K was checked above
    return out


def _problems(groups: list[PromptSamples], settings: ProbeSettings) -> list[Problem]:
    default = settings.split if settings.split in SPLITS else None
    out = []
    for g in groups:
        split = g.split or default
        if split is None:
            raise ProbeError(f"--split both needs a 'split' (train/test) on the samples' lines; line {g.line} "
                             f"(prompt {g.key!r}) has none")
        out.append(Problem(id=g.key, prompt=g.prompt, variant=settings.variant, split=split))
    return out


def probe_samples(files: dict[str, str], settings: ProbeSettings, out_dir: str | Path, *, user_keys=frozenset(),
                  progress: bool = True, log=print) -> dict:
    """The probe's figures from samples files ({label: path}, the base first); writes probe.json and
    probe_prompts.jsonl into ``out_dir`` as the sampling probe does; returns the summary."""
    from reweightlab.probe.command import check_out, format_probe_table, owned_out
    from reweightlab.probe.outputs import as_json, write_outputs
    from reweightlab.tasks.rewards.worker import RewardRunner

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    check_out(out_dir)
    read = {label: read_samples(p) for label, p in files.items()}
    keys = [g.key for g in read["base"]]
    read = {label: _aligned_groups(label, files[label], groups, keys) for label, groups in read.items()}
    counts = {label: len(groups[0].texts) for label, groups in read.items()}
    settings = _file_settings(settings, counts, files, set(user_keys))
    problems = _problems(read["base"], settings)
    runner = None
    with owned_out(out_dir):  # locked while it writes; a failed run leaves no folder it made
        try:
            runner = None if settings.reward is None else RewardRunner(settings.reward,
                                                                       timeout=settings.reward_timeout)
            probes, nll = {}, {}
            for label, groups in read.items():
                t0 = time.perf_counter()
                rewards_PN, success_PN = _score(label, files[label], groups, runner, settings.success_threshold,
                                                progress)
                is_base = label == "base"
                probes[label] = _model_from_file(label, groups, rewards_PN, success_PN, settings, is_base=is_base,
                                                 seconds=time.perf_counter() - t0)
                nll[label] = _nll_P(groups, slice(settings.thresholds.budget_K, None) if is_base else slice(None))
            summary, rows = summarise_samples(files, settings, problems, probes, nll, runner)
            summary = dataclasses.replace(summary, seconds=round(time.perf_counter() - t_start, 1))
            write_outputs(out_dir, summary, rows)
        finally:
            if runner is not None:
                runner.close()
    written = as_json(summary)
    log(format_probe_table(written))
    log(f"wrote {out_dir / 'probe.json'} and {out_dir / 'probe_prompts.jsonl'} (from samples files: no model was "
        "run, so KL, free-energy gaps of trained models, the likelihood estimator and the search are absent)")
    return written


def summarise_samples(files, settings: ProbeSettings, problems, probes: dict[str, ModelProbe], nll: dict,
                      runner) -> tuple:
    """probe.json's content and the per-prompt rows of a samples probe."""
    from reweightlab.probe.command import by_split
    from reweightlab.probe.compare import gap_figures, sample_comparison
    from reweightlab.probe.gap import reward_classes
    from reweightlab.probe.intervals import Resamples
    from reweightlab.probe.outputs import ProbeSummary, model_summary, prompt_rows

    classes_C = reward_classes(*(m.samples.rewards_PN for m in probes.values()))
    rs = Resamples(len(problems), settings.bootstrap, seed=settings.seed)
    K = settings.thresholds.budget_K
    per_model = {}
    for label, m in probes.items():
        fig = model_summary(m, settings)
        source = (f"the first K samples of each prompt in {files[label]}" + (" (the rest measure pass@k)"
                                                                            if label == "base" else ""))
        per_model[label] = dataclasses.replace(
            fig, regime_samples=dataclasses.replace(fig.regime_samples, source=source), seed=None,
            sample_tokens_per_s=None, sampler_nll=None if nll[label] is None else rs.mean(nll[label]))
    base_fe, base_gaps = gap_figures(probes["base"], None, None, settings.resolved_betas(),
                                    settings.success_threshold, rs, classes_C)
    per_model["base"] = dataclasses.replace(per_model["base"], free_energy=base_fe)
    vs_base = {}
    for label, m in probes.items():
        if label == "base":
            continue
        figs = sample_comparison(probes["base"], m, settings, rs)
        if nll[label] is not None and nll["base"] is not None:
            figs["delta_sampler_nll"] = rs.mean(nll[label] - nll["base"])
        vs_base[label] = figs
    errors = {} if runner is None else {"reward_errors": runner.errors, "reward_timeouts": runner.timeouts}
    summary = ProbeSummary(
        version=PROBE_VERSION, task="samples files", variant=settings.variant, split=settings.split,
        prompts_seen_in_training={"train": True, "test": False, "both": "half"}.get(settings.split, False),
        num_prompts=len(problems), estimator="sampling",
        independence=(f"base regimes from the first K = {K} samples of each prompt in its file, its pass@k and "
                      f"gains from the rest ({settings.n} or more); a trained model's regimes from its first K "
                      "samples, its pass@k from all of them"),
        betas=settings.resolved_betas(), reward_classes=classes_C.tolist(), settings=settings.to_dict(),
        models=dict(files), per_model=per_model, vs_base=vs_base, by_split=by_split(problems, probes, settings),
        from_samples={"files": dict(files), "samples_per_prompt": {k: int(m.samples.n_P[0]) + (K if k == "base"
                                                                                              else 0)
                                                                  for k, m in probes.items()},
                      "scored_by": settings.reward or "the files' reward / success fields", **errors,
                      "not_measured": NOT_MEASURED},
    )
    return summary, prompt_rows(problems, probes, {"base": base_gaps[settings.beta]}, "sampling")
