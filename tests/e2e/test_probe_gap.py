"""The sampled free-energy gap against the exact beta * KL(T || pi*) on an enumerable completion space.

With max_new_tokens=1 every completion is one token v of the vocabulary, drawn from the model's
next-token distribution after the prompt, so one forward per prompt gives T and B over the whole
completion space and math.free_energy_gap gives the gap exactly.
"""

import copy
import math

import pytest
import torch

from reweightlab.math.freeenergy import boltzmann_target, free_energy, free_energy_gap, optimal_free_energy
from reweightlab.models import load_model, load_tokenizer
from reweightlab.probe.gap import PromptGaps, free_energy_gap_per_prompt
from reweightlab.tasks import Problem, Verdict
from reweightlab.train.data import encode_prompts

BETA = 1.0
DIGIT_BIAS = 2.0


class OneCharTask:
    """Reward of a one-character completion: 1 for a digit, 0.5 for an uppercase letter, else 0."""

    name = "one-char"
    variants = ("id",)
    success_score = 1.0
    max_completion_chars = 1

    def problems(self, variant, split, n, seed):
        prompts = ["a=", "7+", "Q:"][:n]
        return [Problem(id=f"c-{i}", prompt=p, variant=variant, split=split) for i, p in enumerate(prompts)]

    def verify(self, problem, completion):
        if len(completion) == 1 and completion.isdigit():
            return Verdict(1.0, True, "digit")
        if len(completion) == 1 and completion.isupper():
            return Verdict(0.5, False, "uppercase")
        return Verdict(0.0, False, "other")

    def solutions(self, problem):
        return list("0123456789")


TASK = OneCharTask()


@pytest.fixture(scope="module")
def models(tiny_model_dir):
    """(tokenizer, base, trained): trained = base with +DIGIT_BIAS on the digit logits (a hook on lm_head,
    so the tied input embeddings, hence the prompt's encoding, stay the base's)."""
    tok = load_tokenizer(tiny_model_dir)
    base = load_model(tiny_model_dir).eval()
    trained = copy.deepcopy(base)
    bias_V = torch.zeros(base.config.vocab_size)
    bias_V[tok.convert_tokens_to_ids(list("0123456789"))] = DIGIT_BIAS
    trained.lm_head.register_forward_hook(lambda module, args, out: out + bias_V.to(out.dtype))
    return tok, base, trained


def _exact(model_T, model_B, tok, problems):
    """(logp_T_PV, logp_B_PV, energy_PV) over the one-token completion space, float64."""
    V = model_B.config.vocab_size
    texts = tok.batch_decode([[v] for v in range(V)], skip_special_tokens=True)
    out = {"T": [], "B": [], "E": []}
    with torch.no_grad():
        for pr in problems:
            ids = torch.tensor([encode_prompts(tok, [pr.prompt])[0]])
            out["T"].append(torch.log_softmax(model_T(input_ids=ids).logits[0, -1].double(), -1))
            out["B"].append(torch.log_softmax(model_B(input_ids=ids).logits[0, -1].double(), -1))
            out["E"].append(torch.tensor([-TASK.verify(pr, t).score for t in texts], dtype=torch.float64))
    return torch.stack(out["T"]), torch.stack(out["B"]), torch.stack(out["E"])


def test_sampled_gap_matches_exact_beta_kl(models):
    tok, base, trained = models
    problems = TASK.problems("id", "train", 3, seed=0)
    G = 4096
    est = free_energy_gap_per_prompt(
        trained, base, tok, TASK, problems, beta=BETA, samples_per_prompt=G, max_new_tokens=1, seed=0
    )
    assert isinstance(est, PromptGaps) and est.gap_P.dtype == torch.float64 and est.gap_P.shape == (3,)

    logp_T, logp_B, energy = _exact(trained, base, tok, problems)
    exact_gap = free_energy_gap(logp_T, logp_B, energy, BETA)
    exact_F = free_energy(logp_T, logp_B, energy, BETA)
    exact_F_star = optimal_free_energy(logp_B, energy, BETA)
    # the exact side is self-consistent: F - F* = beta KL(T || pi*), and the perturbation is a real one
    torch.testing.assert_close(exact_F - exact_F_star, exact_gap, atol=1e-10, rtol=0)
    assert (exact_gap > 0.05).all(), exact_gap
    assert not torch.allclose(boltzmann_target(logp_B, energy, BETA), logp_T, atol=0.1)

    # Standard errors from the per-sample terms. F is a plain mean of a_n = E_n + beta * log(T/B).
    # F* = -beta log mean(w_n), w_n = exp(-E_n / beta): by the delta method its standard error is
    # beta * std(w) / (mean(w) sqrt(G)). F* is also biased upward by ~beta Var(w) / (2 G mean(w)^2),
    # O(1/G) and far below the O(1/sqrt(G)) standard error at G=4096; the 4-sigma band covers it.
    a_PG = est.energy_PG + BETA * est.log_ratio_PG
    se_F = a_PG.std(1) / math.sqrt(G)
    w_PG = torch.exp(-est.energy_base_PG / BETA)
    se_F_star = BETA * w_PG.std(1) / w_PG.mean(1) / math.sqrt(G)
    tol_P = 4 * (se_F + se_F_star)
    print(f"exact gap {exact_gap.tolist()}\nest gap   {est.gap_P.tolist()}\ntolerance {tol_P.tolist()}")
    assert (tol_P < 0.5 * exact_gap).all(), "the tolerance must be tight enough to tell the gap from 0"
    assert ((est.gap_P - exact_gap).abs() < tol_P).all()
    # both halves separately, each within its own band
    assert ((est.F_P - exact_F).abs() < 4 * se_F).all()
    assert ((est.F_star_P - exact_F_star).abs() < 4 * se_F_star).all()

    d = est.to_dict()
    assert d["gap"] == est.gap_P.tolist() and d["beta"] == BETA and d["samples_per_prompt"] == G
    assert d["mean_gap"] == pytest.approx(float(est.gap_P.mean()))


def test_trained_equal_to_base_has_no_kl_term(models):
    tok, base, _ = models
    problems = TASK.problems("id", "train", 2, seed=0)
    est = free_energy_gap_per_prompt(
        base, base, tok, TASK, problems, beta=BETA, samples_per_prompt=64, max_new_tokens=4, seed=3
    )
    # log T - log B on every sample: sampler (KV cache, fp32) vs teacher-forced pass of the same model,
    # so zero up to fp32 rounding of a ~4-token sum.
    torch.testing.assert_close(est.log_ratio_PG, torch.zeros_like(est.log_ratio_PG), atol=1e-4, rtol=0)
    torch.testing.assert_close(est.F_P, est.energy_PG.mean(1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan")])
def test_beta_must_be_positive(models, beta):
    tok, _, _ = models
    # No models at all: the check must come before any sampling is paid for (a later check would
    # fail here with an AttributeError instead).
    with pytest.raises(ValueError, match="beta"):
        free_energy_gap_per_prompt(
            None, None, tok, TASK, TASK.problems("id", "train", 1, 0), beta=beta, samples_per_prompt=2,
            max_new_tokens=1,
        )


def test_probe_command_path_matches_exact_gap(models):
    """The gap as `reweightlab probe` computes it (kept samples of T for F, all base samples for F*)."""
    from reweightlab.probe.regimes import RegimeThresholds
    from reweightlab.probe.study import ProbeSettings, free_energy, probe_model

    tok, base, trained = models
    problems = TASK.problems("id", "train", 3, seed=0)
    G = 4096
    settings = ProbeSettings(task="one-char", n=G, keep_per_prompt=G, search=None, max_new_tokens=1, beta=BETA,
                             ks=(1,), thresholds=RegimeThresholds(budget_K=256), seed=5)
    probes = [probe_model(m, tok, TASK, problems, settings, label=name, progress=False)
              for name, m in (("base", base), ("trained", trained))]
    gap_P = free_energy(trained, base, probes[0], probes[1], settings)["gap_P"]

    logp_T, logp_B, energy = _exact(trained, base, tok, problems)
    exact_gap = free_energy_gap(logp_T, logp_B, energy, BETA)
    # Exact standard errors: Var_T of the per-sample F term, delta method for F* = -beta log E_B[w].
    a_PV = energy + BETA * (logp_T - logp_B)
    T_PV, B_PV = logp_T.exp(), logp_B.exp()
    var_F = (T_PV * a_PV**2).sum(1) - (T_PV * a_PV).sum(1) ** 2
    w_PV = torch.exp(-energy / BETA)
    mean_w = (B_PV * w_PV).sum(1)
    var_w = (B_PV * w_PV**2).sum(1) - mean_w**2
    tol_P = 4 * (var_F.sqrt() + BETA * var_w.sqrt() / mean_w) / math.sqrt(G)
    print(f"exact {exact_gap.tolist()}\nprobe {gap_P.tolist()}\ntol   {tol_P.tolist()}")
    assert (tol_P < 0.5 * exact_gap).all()
    assert ((gap_P - exact_gap).abs() < tol_P).all()
