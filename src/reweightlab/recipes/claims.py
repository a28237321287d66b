"""The four claims of the study, each tested on the run's own files with the rule of ``recipes.verdicts``.

Inputs (all in the study folder): the probes' per-prompt rows (``probe-<rule>/probe_prompts.jsonl``:
each model's n and c per prompt, the base's regime, success within a revision episode), their
summaries (``probe.json``: failure kinds), ``curves.json`` (every checkpoint of the curve arms) and
the summary's labels (which model is which arm and seed). Output: ``claims.json``. Nothing is
selected on the numbers it then measures: regimes come from the base's own regime samples, J from
samples drawn for it, and every difference is paired over prompts and seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from reweightlab.math.passk import pass_at_k
from reweightlab.probe.elicitation import CREATION
from reweightlab.probe.intervals import Resamples, SeedPromptResamples
from reweightlab.probe.passk_stats import crossover_k
from reweightlab.recipes import verdicts as V

REWEIGHTING = ("sft", "filtered_sft", "sft_q", "iw_sft", "iw_sft_seq", "dft", "grpo", "rloo", "warmup_sft")
CREATING = {"search_sft": "id", "grpo_revision": "id", "warmup_rl": "id", "sft_ood": "ood"}
CLAIMS_VERSION = 1


class StudyFiles:
    """The probes' per-prompt rows and summaries, by rule, and which label is which arm and seed."""

    def __init__(self, out: Path, labels: dict[str, dict]):
        self.rows, self.probe = {}, {}
        for variant in ("id", "ood"):
            folder = out / f"probe-{variant}"
            if (folder / "probe.json").is_file():
                self.probe[variant] = json.loads((folder / "probe.json").read_text())
                self.rows[variant] = [json.loads(x) for x in (folder / "probe_prompts.jsonl").read_text().splitlines()]
        self.seeds_of: dict[str, list[int]] = {}
        for info in labels.values():
            self.seeds_of.setdefault(info["method"], []).append(info["seed"])

    def has(self, arm: str, variant: str = "id") -> bool:
        return arm in self.seeds_of and variant in self.rows

    def matrix(self, arm: str, variant: str, value) -> torch.Tensor:
        """S x P: ``value(model_row)`` for each seed of ``arm`` ('base': 1 x P) on each prompt."""
        labels = ["base"] if arm == "base" else [f"{arm}-s{s}" for s in self.seeds_of[arm]]
        return torch.tensor([[value(r["models"][lab]) for r in self.rows[variant]] for lab in labels],
                            dtype=torch.float64)

    def base_regimes(self, variant: str) -> list[str]:
        return [r["models"]["base"]["regime"] for r in self.rows[variant]]


def _p1(m: dict) -> float:
    return m["c"] / m["n"]


def _within(m: dict) -> float:
    return m["revision_within_episode"] if m.get("revision_within_episode") is not None else float("nan")


def difference_part(name: str, quantity: str, kind: str, x_SP: torch.Tensor, seeds: list[int], *,
                    resamples: int = V.RESAMPLES, seed: int = 0) -> dict:
    """A part: the mean of ``x_SP`` (per seed and prompt; a difference already) with its two-level interval,
    each seed's own interval over prompts, and the part's verdict."""
    S, P = x_SP.shape
    pooled = SeedPromptResamples(S, P, resamples, seed=seed).mean(x_SP)
    rs = Resamples(P, resamples, seed=seed)
    per_seed = [{"seed": s, **rs.mean(x_SP[i])} for i, s in enumerate(seeds)]
    lo, hi = pooled["ci95"]
    return {"name": name, "quantity": quantity, "kind": kind, "value": pooled["value"], "ci95": [lo, hi],
            "per_seed": per_seed, "verdict": V.part_verdict(kind, lo, hi)}


def _claim(cid: str, parts: list[dict], **text) -> dict:
    """A claim's record: its text, parts, verdict (from the parts alone) and the part that decided it."""
    verdict = V.claim_verdict([p["verdict"] for p in parts])
    return {"id": cid, **text, "verdict": verdict, "why": V.deciding_part(parts, verdict), "parts": parts}


def not_run(cid: str, *, title: str, source: str, statement: str, paper_figure: str, why: str) -> dict:
    return {"id": cid, "title": title, "source": source, "statement": statement, "paper_figure": paper_figure,
            "ours": "not run", "verdict": V.NOT_RUN, "why": why, "how_to_read": ["", ""], "differs": "",
            "parts": [], "figures": []}


def _fmt(part: dict, spec: str = "+.3f") -> str:
    lo, hi = part["ci95"]
    if part["value"] is None:
        return "undefined"
    bounds = "" if lo is None else f" [{lo:{spec}}, {hi:{spec}}]"
    return f"{part['value']:{spec}}{bounds}"


def _mean_points(curves: dict, arm: str) -> list[dict]:
    """An arm's curve, each point's figures averaged over its seeds (points matched by position)."""
    runs = [c for c in curves.values() if c["arm"] == arm]
    if not runs:
        return []
    n = min(len(c["points"]) for c in runs)
    out = []
    for j in range(n):
        pts = [c["points"][j] for c in runs]
        keys = [k for k, v in pts[0].items() if isinstance(v, int | float) and k != "step"]
        out.append({"step": pts[0]["step"], **{k: sum(p[k] for p in pts) / len(pts) for k in keys}})
    return out


def _lines(title: str, x_label: str, y_label: str, series: list[dict], *, x_log=False, vlines=()) -> dict:
    return {"kind": "lines", "title": title, "x_label": x_label, "y_label": y_label, "x_log": x_log,
            "series": series, "vlines": list(vlines)}


def _series(name, x, y, dashed=False, marker=True, lo=None, hi=None) -> dict:
    return {"name": name, "x": list(x), "y": list(y), "lo": lo, "hi": hi, "dashed": dashed, "marker": marker}


# ---- (a) SFT maximises a lower bound of RL; iw-SFT tightens it -------------------------------------
A_TEXT = dict(
    title="(a) SFT on curated data maximises a lower bound of RL, and iw-SFT tightens it",
    source="Qin & Springenberg, arXiv 2507.12856",
    statement="iw-SFT >= SFT on curated data, in the RL objective J = E_pi[success] on the training prompts",
    paper_figure="iw-SFT on Qwen2.5-32B-Instruct and s1.1K: AIME24 66.7%, GPQA-Diamond 64.1%; in the paper's toy "
                 "bandit SFT converges to (1/3, 2/3), iw-SFT to the always-right arm",
)


def _setting(ctx: dict) -> str:
    """The study's own setting in a few words: model size and task."""
    params = ctx.get("base_parameters")
    size = f"a {params / 1e6:.1f}M-parameter model" if params else "the base model"
    return f"{size} on {Path(str(ctx['budget']['task'])).name}"


def claim_a(files: StudyFiles, curves: dict, ctx: dict) -> dict:
    need = ("filtered_sft", "iw_sft")
    runs = {c["arm"] for c in curves.values() if c["kind"] == "bound"}
    if not all(a in runs for a in need):
        return not_run("a", **A_TEXT, why="needs the arms filtered_sft and iw_sft, with their checkpoint curves")

    def final_J(arm):  # S x P: J per training prompt at each seed's final checkpoint
        rs = sorted((c for c in curves.values() if c["arm"] == arm), key=lambda c: c["seed"])
        return torch.tensor([c["points"][-1]["J_P"] for c in rs], dtype=torch.float64), [c["seed"] for c in rs]

    sft_J, seeds = final_J("filtered_sft")
    parts = []
    for arm, what in (("iw_sft", "the authors' preset"), ("iw_sft_seq", "the sequence's own ratio")):
        if arm in runs:
            J, _ = final_J(arm)
            parts.append(difference_part(f"{arm} ({what}) >= filtered_sft", "J(iw-SFT) - J(SFT): success on the "
                                         "training prompts at the end of training", "at_least", J - sft_J, seeds))
    extra = []
    if "grpo" in runs:
        J, _ = final_J("grpo")
        extra.append(difference_part("grpo - filtered_sft (for reference, not a part)", "J(RL) - J(SFT)", "greater",
                                     J - sft_J, seeds))
    arms = [a for a in ("filtered_sft", "iw_sft", "iw_sft_seq", "grpo") if a in runs]
    fig_j = _lines("J = E_pi[success], training prompts", "sequences trained",
                   "J", [_series(a, [p["sequences"] for p in _mean_points(curves, a)],
                                 [p["J"] for p in _mean_points(curves, a)]) for a in arms])
    pts = _mean_points(curves, "filtered_sft")
    xs = [p["sequences"] for p in pts]
    fig_b = _lines("filtered_sft: J and its lower bounds", "sequences trained",
                   "objective", [_series("J (sampled)", xs, [p["J"] for p in pts]),
                                 _series("J (importance-sampled)", xs, [p["J_importance_sampled"] for p in pts], True),
                                 _series("SFT bound (w = 1)", xs, [p["bound_sft"] for p in pts], True),
                                 _series("iw-SFT bound (mean ratio)", xs, [p["bound_iw_mean"] for p in pts], True),
                                 _series("iw-SFT bound (sequence ratio)", xs, [p["bound_iw_sum"] for p in pts], True)])
    slack = []
    for a in arms:
        last = _mean_points(curves, a)[-1]
        J = last["J_importance_sampled"]
        slack.append([a, round(last["J"], 4), round(J, 4), round(J - last["bound_sft"], 4),
                      round(J - last["bound_iw_mean"], 4), round(J - last["bound_iw_sum"], 4)])
    tighter = _tightest(slack)
    table = {"title": "At each arm's final checkpoint (mean over seeds): J and the slack of each bound "
                      "(importance-sampled J minus the bound; smaller is tighter)",
             "columns": ["arm", "J sampled", "J importance-sampled", "slack SFT", "slack iw mean", "slack iw sequence"],
             "rows": slack}
    first = parts[0] if parts else None
    return _claim(
        "a", parts, **A_TEXT,
        ours=(f"J(iw_sft) - J(filtered_sft) = {_fmt(first)}" if first else "-") + f"; the tightest bound: {tighter}",
        how_to_read=["Left: J of each arm over training (mean over seeds). Right: at filtered SFT's checkpoints, J and "
                     "the three lower bounds on a fresh draw of the base's samples (not the curated training data); a "
                     "bound closer to J is tighter.",
                     "The verdict compares final J per training prompt, paired over prompts and seeds; RL is shown for "
                     "reference: it optimises J itself."],
        differs=f"Ours: {_setting(ctx)}, curated from {ctx['budget']['base_samples_per_prompt']} base samples per "
                f"training prompt, {ctx['budget']['sequences_per_method']} sequences trained. The paper: 32B models on "
                "s1.1K for 5 epochs (and offline control policies).",
        figures=[fig_j, fig_b], tables=[table], reference=extra,
    )


def _tightest(rows: list[list]) -> str:
    if not rows:
        return "-"
    mean = [sum(r[k] for r in rows) / len(rows) for k in (3, 4, 5)]
    names = ["SFT's (w = 1)", "iw-SFT's with the mean ratio", "iw-SFT's with the sequence ratio"]
    order = sorted(range(3), key=lambda i: mean[i])
    return f"{names[order[0]]} (mean slack {mean[order[0]]:.4f}; {names[order[1]]} {mean[order[1]]:.4f}, " \
           f"{names[order[2]]} {mean[order[2]]:.4f})"


# ---- (b) SFT memorises, RL generalises ---------------------------------------------------------------
B_TEXT = dict(
    title="(b) SFT memorises, RL generalises",
    source="Chu et al., arXiv 2501.17161",
    statement="from a shared SFT warm-up, RL holds or raises success under the changed rule (within the revision "
              "episode) while more SFT lowers it",
    paper_figure="GP-L, rule OOD, success within the episode (Llama-3.2-Vision-11B): init 11.5%, RL 15.0% (+3.5), "
                 "SFT 3.4% (-8.1)",
)
FAILURE_KINDS = ("other_rule", "wrong_value", "wrong_numbers", "illegal")
EMBEDDED_CORPUS = (" (the embedded base is pretrained on both rules: 15% of its corpus under the changed one, and 15% "
                   "of its completions read the face cards under the other rule)")


def claim_b(files: StudyFiles, curves: dict, ctx: dict) -> dict:
    attempts = ctx["budget"].get("revision_attempts", 1)
    need = ("sft", "warmup_sft", "warmup_rl")
    if not all(files.has(a, "ood") for a in need):
        return not_run("b", **B_TEXT, why="needs a task with a changed-rule variant ('ood') and the arms sft, "
                                          "warmup_sft and warmup_rl")
    rows = files.rows["ood"][0]["models"]
    metric, what = (_within, f"success within {attempts} attempts") if rows["base"].get(
        "revision_within_episode") is not None else (_p1, "single-attempt success")
    init = files.matrix("sft", "ood", metric)
    seeds = files.seeds_of["sft"]
    sft_D = files.matrix("warmup_sft", "ood", metric) - init
    rl_D = files.matrix("warmup_rl", "ood", metric) - init
    parts = [difference_part("more SFT lowers it", f"OOD {what}: warmup_sft - warm-up", "less", sft_D, seeds),
             difference_part("RL holds or raises it", f"OOD {what}: warmup_rl - warm-up", "at_least", rl_D, seeds)]
    figs = []
    pts = {a: _mean_points(curves, a) for a in ("warmup_sft", "warmup_rl")}
    if all(pts.values()):
        figs.append(_lines("Over training: OOD vs ID success", "ID success "
                           "(held-out hands, one attempt)", "OOD success (one attempt)",
                           [_series(a, [p["id_success"] for p in v], [p["ood_success"] for p in v])
                            for a, v in pts.items()]))
        figs.append(_lines("OOD success vs distance moved", "KL(model || warm-up) per token",
                           "OOD success (one attempt)",
                           [_series(a, [p["kl_to_start_per_token"] for p in v], [p["ood_success"] for p in v])
                            for a, v in pts.items()]))
    arms = [a for a in ("base", "sft", "warmup_sft", "warmup_rl", "grpo", "grpo_revision") if a == "base"
            or files.has(a, "ood")]
    kinds = {a: _failure_kinds(files, a) for a in arms}
    figs.append({"kind": "bars", "title": "How OOD samples fail",
                 "y_label": "share of samples", "categories": list(FAILURE_KINDS),
                 "series": [{"name": a, "values": [kinds[a].get(k) for k in FAILURE_KINDS]} for a in arms]})
    table_rows = []
    every = ["base", *[a for a in files.seeds_of if files.has(a, "ood")]]
    kinds |= {a: _failure_kinds(files, a) for a in every if a not in kinds}
    for a in every:
        p1 = files.matrix(a, "ood", _p1).mean().item()
        w = files.matrix(a, "ood", metric).mean().item()
        table_rows.append([a, round(p1, 4), round(w, 4), *[round(kinds[a].get(k, 0.0), 4) for k in FAILURE_KINDS]])
    table = {"title": "Every model under the changed rule (mean over seeds): success and how samples fail",
             "columns": ["model", "pass@1", what, *FAILURE_KINDS], "rows": table_rows}
    return _claim(
        "b", parts, **B_TEXT,
        ours=f"more SFT {_fmt(parts[0])}, RL {_fmt(parts[1])} ({what}, against the warm-up)",
        how_to_read=["Left: each arm's checkpoints from the shared warm-up; a point moving up holds the changed rule, "
                     "moving right gains in distribution. Middle: the same against the KL moved from the warm-up.",
                     "Right: how changed-rule samples fail; 'other_rule' is a face card read as under the trained rule "
                     "(J, Q, K as 10): the memorised reading."],
        differs=f"Ours: {_setting(ctx)}{EMBEDDED_CORPUS if ctx['budget'].get('base') == 'embedded' else ''}; "
                "the warm-up is the sft "
                f"arm ({ctx['budget']['sequences_per_method']} sequences); RL is GRPO on the 0/1 success for as many "
                f"episodes of up to {attempts} attempts as SFT has sequences. The paper: an 11B vision-language "
                "model (text variant here), far more RL, episodes of up to 5 attempts.",
        figures=figs, tables=[table],
    )


def _failure_kinds(files: StudyFiles, arm: str) -> dict[str, float]:
    labels = ["base"] if arm == "base" else [f"{arm}-s{s}" for s in files.seeds_of[arm]]
    per = [files.probe["ood"]["per_model"][lab].get("failure_kinds", {}) for lab in labels]
    keys = {k for p in per for k in p}
    return {k: sum(p.get(k, 0.0) for p in per) / len(per) for k in keys}


# ---- (c) RL wins at pass@1, the base at large k --------------------------------------------------------
C_TEXT = dict(
    title="(c) RL wins at pass@1, the base wins at large k",
    source="Yue et al., arXiv 2504.13837",
    statement="RL (GRPO) is ahead of its base at pass@1 and behind it at large k; the crossover k* is where the "
              "base catches up",
    paper_figure="on math, code and visual-reasoning benchmarks, RL models ahead at small k and the base ahead at "
                 "large k (k up to 256 and more)",
)


def claim_c(files: StudyFiles, ctx: dict, arm: str = "grpo") -> dict:
    if not files.has(arm, "id"):
        return not_run("c", **C_TEXT, why=f"needs the arm {arm}")
    rows = files.rows["id"]
    n = min(min(r["models"]["base"]["n"] for r in rows), min(m["n"] for r in rows for m in r["models"].values()))
    k_max = max(1, n // 2)  # pass@k from n samples: at k = n it is one indicator per prompt; n/2 averages many
    ks = [k for k in (2 ** i for i in range(20)) if k <= k_max]
    base_PK = torch.stack([files.matrix("base", "id", lambda m, k=k: pass_at_k(m["n"], m["c"], k))[0] for k in ks], 1)
    rl_SPK = torch.stack([files.matrix(arm, "id", lambda m, k=k: pass_at_k(m["n"], m["c"], k)) for k in ks], 2)
    seeds = files.seeds_of[arm]
    S, P = rl_SPK.shape[:2]
    parts = [difference_part(f"{arm} ahead at pass@1", "pass@1: RL - base (ID, held-out)", "greater",
                             rl_SPK[:, :, 0] - base_PK[None, :, 0], seeds),
             difference_part(f"base ahead at pass@{ks[-1]}", f"pass@{ks[-1]}: base - RL (ID, held-out)", "greater",
                             base_PK[None, :, -1] - rl_SPK[:, :, -1], seeds)]
    two = SeedPromptResamples(S, P, V.RESAMPLES, seed=0)

    def kstar(ws, wp):
        b = wp @ base_PK / P
        r = (ws[:, None] * torch.einsum("p,spk->sk", wp, rl_SPK)).sum(0) / (ws.sum() * P)
        return crossover_k(dict(zip(ks, b.tolist(), strict=True)), dict(zip(ks, r.tolist(), strict=True)))

    base_curve, rl_curve = base_PK.mean(0), rl_SPK.mean((0, 1))
    value = crossover_k(dict(zip(ks, base_curve.tolist(), strict=True)), dict(zip(ks, rl_curve.tolist(), strict=True)))
    ks_fig = two.statistic(kstar, value)
    fig = _lines("pass@k, held-out ID prompts", "k", "pass@k",
                 [_series("base", ks, base_curve.tolist()), _series(arm, ks, rl_curve.tolist())], x_log=True,
                 vlines=[{"x": value, "label": "k*"}] if value is not None else [])
    kstar_text = "none" if value is None else f"{value:.1f} [{_bound(ks_fig['ci95'][0])}, {_bound(ks_fig['ci95'][1])}]"
    return _claim(
        "c", parts, **C_TEXT,
        ours=f"pass@1 {_fmt(parts[0])}, pass@{ks[-1]} {_fmt(parts[1])} (base - RL); k* = {kstar_text}, defined in "
             f"{ks_fig['defined']:.0%} of resamples",
        how_to_read=[f"pass@k of the base and of {arm} on the same held-out hands, from n = {n} samples each; k* "
                     "(dotted) is where the base catches up.",
                     f"k stops at n/2 = {ks[-1]}: beyond it the estimate rests on too few subsets of the n samples."],
        differs=f"Ours: {_setting(ctx)}, n = {n} samples per prompt. The paper probes 7B-32B models on math, code "
                "and visual reasoning with k up to 256 or 1024.",
        figures=[fig], kstar={"value": value, "ci95": ks_fig["ci95"], "defined": ks_fig["defined"], "ks": ks},
    )


def _bound(x) -> str:
    return "-" if x is None else f"{x:.1f}"


# ---- (d) reweighting elicits; creation needs search, interaction or new information ------------------
D_TEXT = dict(
    title="(d) KL-close updates elicit; creation needs search, interaction or new information",
    source="free-energy paper, arXiv 2605.08368",
    statement="the pass@1 gain on prompts the base did not reach within its sampling budget (creation) is about 0 "
              "for the reweighting arms and above 0 for the arms that add search, feedback or new information",
    paper_figure="a thesis, no figure: the optimum of reward minus beta KL is the base reweighted, inside its support",
)


def claim_d(files: StudyFiles) -> dict:
    if "id" not in files.rows:
        return not_run("d", **D_TEXT, why="needs a probe")
    parts, rows = [], []
    arms = [(a, "id", "at_most") for a in REWEIGHTING if files.has(a, "id")]
    arms += [(a, v, "greater") for a, v in CREATING.items() if files.has(a, v)]
    if files.has("base_copy", "id"):
        arms.append(("base_copy", "id", "at_most"))
    for arm, variant, kind in arms:
        reg = files.base_regimes(variant)
        creates = torch.tensor([r in CREATION for r in reg], dtype=torch.float64)
        x = (files.matrix(arm, variant, _p1) - files.matrix("base", variant, _p1)) * creates
        role = ("negative control" if arm == "base_copy" else "positive control" if arm == "sft_ood"
                else "can create" if kind == "greater" else "reweighting")
        parts.append(difference_part(f"{arm} ({role}, {variant.upper()} prompts)", f"creation: pass@1 gain on the "
                                     f"{int(creates.sum())} prompts the base did not reach", kind, x,
                                     files.seeds_of[arm]))
        rows.append({"name": f"{arm} ({variant.upper()})", "value": parts[-1]["value"], "lo": parts[-1]["ci95"][0],
                     "hi": parts[-1]["ci95"][1]})
    fig = {"kind": "intervals", "title": "Creation per arm, 95% interval",
           "x_label": "pass@1 gain on prompts the base did not reach, over all prompts", "rows": rows,
           "band": [-V.MARGIN, V.MARGIN]}
    rew = [p for p in parts if p["kind"] == "at_most"]
    cre = [p for p in parts if p["kind"] == "greater"]
    claim = _claim(
        "d", parts, **D_TEXT,
        ours=f"reweighting arms: {sum(p['verdict'] == V.SUPPORTED for p in rew)} of {len(rew)} at most 0 within m; "
             f"creating arms: {sum(p['verdict'] == V.SUPPORTED for p in cre)} of {len(cre)} clearly above 0",
        how_to_read=["Each row: an arm's pass@1 gain on the prompts its base never solved in K samples nor reached by "
                     "search or revision (barrier and singularity), averaged over all prompts; shaded: +-m.",
                     "Reweighting arms should sit at or below 0; the creating arms and the positive control above it; "
                     "the negative control (the base, re-sampled) at 0."],
        differs="Regimes are relative to the probe's budgets (K samples, the search, R attempts): a prompt whose "
                "success probability is just below 1/K can show 'creation' under any arm. The paper states the "
                "thesis in the limit of infinite budgets.",
        figures=[fig],
    )
    if not cre and claim["verdict"] == V.SUPPORTED:  # half a claim tested is not the claim supported
        claim["verdict"] = V.INCONCLUSIVE
        claim["why"] = ("only the reweighting half was tested: no arm that can move the support (search_sft, "
                        "grpo_revision, warmup_rl, sft_ood) ran")
    return claim


def compute_claims(out: Path, summary: dict, curves: dict) -> dict:
    """claims.json's content for a study folder (module docstring)."""
    files = StudyFiles(out, summary["labels"])
    runs = curves.get("runs", {})
    ctx = {"budget": summary["budget"], "base_parameters": summary.get("base_parameters")}
    claims = [claim_a(files, runs, ctx), claim_b(files, runs, ctx), claim_c(files, ctx), claim_d(files)]
    return {"version": CLAIMS_VERSION,
            "rule": {"text": V.RULE_TEXT, "confidence": V.CONFIDENCE, "margin": V.MARGIN, "resamples": V.RESAMPLES,
                     "interval": "two-level bootstrap: training seeds, then prompts (paired across models)"},
            "budget": {"unit": budget_unit(summary["budget"])}, "claims": claims}


def budget_unit(b: dict) -> str:
    return (f"sequences trained per arm: {b['sequences_per_method']} (offline: {b['offline_steps']} steps x "
            f"{b['offline_sequences_per_step']}; RL: {b['rl_steps']} batches x {b['rl_prompts_per_step']} prompts x "
            f"{b['rl_samples_per_prompt']}, a revision episode of up to {b['revision_attempts']} attempts counting as "
            "one sequence); generation is not counted")

