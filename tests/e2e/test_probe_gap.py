"""The probe's free-energy gap (the code `reweightlab probe` ships) against the exact beta * KL(T || pi*).

With max_new_tokens=2 every completion is [EOS] or two tokens [a, b] (b = EOS ends it after one
character; any other b is cut there), so V + 1 forwards per prompt give T and B over the whole
completion space: math.free_energy_gap gives the gap exactly, and the chain rule of KL its
between-class and within-class parts. Two tokens, not one: with one-token completions the per-token
KL would be the whole sequence KL, and the within-class part would have nothing to measure.
"""

import copy
import math

import pytest
import torch

from reweightlab.data.encoding import encode_prompts
from reweightlab.math.freeenergy import boltzmann_target, free_energy, free_energy_gap, optimal_free_energy
from reweightlab.models import load_model, load_tokenizer
from reweightlab.probe.compare import compare
from reweightlab.probe.gap import class_log_masses, reward_classes
from reweightlab.probe.gap import free_energy_gap as gap_from_classes
from reweightlab.probe.regimes import RegimeThresholds
from reweightlab.probe.study import ProbeSettings, probe_model
from reweightlab.tasks import Problem, Verdict

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
    """(logp_T_PY, logp_B_PY, energy_PY) over the completions of at most two tokens, float64."""
    V, eos = model_B.config.vocab_size, tok.eos_token_id
    firsts = [a for a in range(V) if a != eos]
    texts = [""] + [tok.decode([a] if b == eos else [a, b], skip_special_tokens=True) for a in firsts for b in range(V)]
    out = {"T": [], "B": [], "E": []}
    with torch.no_grad():
        for pr in problems:
            prompt = encode_prompts(tok, [pr.prompt])[0]
            ids = torch.tensor([prompt + [a] for a in firsts])
            for key, model in (("T", model_T), ("B", model_B)):
                first_V = torch.log_softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1].double(), -1)
                second_AV = torch.log_softmax(model(input_ids=ids).logits[:, -1].double(), -1)
                pairs = (first_V[firsts].unsqueeze(1) + second_AV).reshape(-1)
                out[key].append(torch.cat([first_V[eos : eos + 1], pairs]))
            out["E"].append(torch.tensor([-TASK.verify(pr, t).score for t in texts], dtype=torch.float64))
    return torch.stack(out["T"]), torch.stack(out["B"]), torch.stack(out["E"])


def _exact_parts(logp_T, logp_B, energy, beta):
    """Exact between-class and within-class parts of beta KL(T || pi*) (classes = energy values)."""
    between, within = [], []
    for p in range(logp_T.shape[0]):
        T, B = logp_T[p].exp(), logp_B[p].exp()
        pi = boltzmann_target(logp_B[p], energy[p], beta).exp()
        b = w = 0.0
        for e in energy[p].unique():
            m = energy[p] == e
            Tc, Bc, pic = T[m].sum(), B[m].sum(), pi[m].sum()
            b += float(Tc * (Tc / pic).log())
            w += float((T[m] * ((T[m] / Tc).log() - (B[m] / Bc).log())).sum())
        between.append(beta * b)
        within.append(beta * w)
    return torch.tensor(between, dtype=torch.float64), torch.tensor(within, dtype=torch.float64)


def test_shipped_gap_matches_the_exact_gap_and_its_parts(models):
    tok, base, trained = models
    problems = TASK.problems("id", "train", 3, seed=0)
    G = 4096
    settings = ProbeSettings(task="one-char", n=G, keep_per_prompt=G, search=None, max_new_tokens=2, beta=BETA,
                             betas=(), ks=(1,), thresholds=RegimeThresholds(budget_K=256), seed=5)
    probes = [probe_model(m, tok, TASK, problems, settings, label=name, index=i, progress=False)
              for i, (name, m) in enumerate((("base", base), ("trained", trained)))]
    classes = reward_classes(*(p.samples.rewards_PN for p in probes))
    out, gap_P = compare(trained, base, probes[0], probes[1], settings, betas=[BETA], success_score=1.0,
                         classes_C=classes)

    logp_T, logp_B, energy = _exact(trained, base, tok, problems)
    exact_gap = free_energy_gap(logp_T, logp_B, energy, BETA)
    torch.testing.assert_close(free_energy(logp_T, logp_B, energy, BETA) - optimal_free_energy(logp_B, energy, BETA),
                               exact_gap, atol=1e-10, rtol=0)
    between, within = _exact_parts(logp_T, logp_B, energy, BETA)
    torch.testing.assert_close(between + within, exact_gap, atol=1e-9, rtol=0)  # the chain rule, exactly
    assert (exact_gap > 0.05).all() and (within > 0.01).all(), (exact_gap, within)  # a real perturbation, both parts

    # Tolerance: 4 standard errors of the estimate's three noisy terms, each from the exact distributions:
    # E_T[r] from n samples, the per-sample summed exact KL (mean of G values), log Z from B's class shares.
    T_PY, B_PY = logp_T.exp(), logp_B.exp()
    r_PY = -energy
    var_r = (T_PY * r_PY**2).sum(1) - (T_PY * r_PY).sum(1) ** 2
    kl_tok_T = (T_PY * (logp_T - logp_B)).sum(1)  # the sequence KL; its per-sample estimate varies with the 1st token
    w_PY = torch.exp(r_PY / BETA)
    var_w = (B_PY * w_PY**2).sum(1) - (B_PY * w_PY).sum(1) ** 2
    se = ((var_r / G).sqrt() + BETA * (kl_tok_T.abs() + 1.0) / math.sqrt(G)
          + BETA * var_w.sqrt() / (B_PY * w_PY).sum(1) / math.sqrt(G))
    tol_P = 4 * se
    print(f"exact {exact_gap.tolist()}\nprobe {gap_P.tolist()}\ntol   {tol_P.tolist()}")
    assert (tol_P < 0.5 * exact_gap).all(), "the tolerance must be tight enough to tell the gap from 0"
    assert ((gap_P - exact_gap).abs() < tol_P).all()

    fe = out.free_energy[f"{BETA:g}"]
    assert fe["gap"]["value"] == pytest.approx(float(gap_P.mean()), abs=1e-12)
    assert fe["between"]["value"] + fe["within"]["value"] == pytest.approx(fe["gap"]["value"], abs=1e-9)
    assert abs(fe["between"]["value"] - float(between.mean())) < float(tol_P.mean())
    assert abs(fe["within"]["value"] - float(within.mean())) < float(tol_P.mean())


def test_success_mass_from_the_likelihood_not_from_few_samples(models):
    """Z is dominated by the rare success: with 8 samples and no sampled success a log-mean-exp misses it,
    the success mass supplied as the probe does (p_known) does not."""
    tok, base, _ = models
    problems = TASK.problems("id", "train", 3, seed=0)
    beta = 0.05  # e^{1/beta} p(7) ~ 5e5 against e^{0.5/beta} p(uppercase) ~ 7e3: the success term dominates Z
    logp_B, energy = _exact(base, base, tok, problems)[1:]
    # rewards: 1 for exactly "7" (the rare success), 0.5 for an uppercase letter, 0 otherwise
    seven = _seven_mask(tok, base)
    r_PY = torch.where(seven, 1.0, torch.where(-energy == 0.5, 0.5, 0.0))
    exact_F_star = optimal_free_energy(logp_B, -r_PY, beta)
    p_seven = (logp_B.exp() * seven).sum(1)
    assert (p_seven < 2e-3).all()
    classes = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    rewards_PN = torch.zeros(3, 8)  # 8 samples, none a success (what a small budget gives)
    rewards_PN[:, 0] = 0.5
    naive = gap_from_classes(classes, class_log_masses(rewards_PN, classes, 1.0), None, None, beta).F_star_P
    with_mass = gap_from_classes(classes, class_log_masses(rewards_PN, classes, 1.0, p_seven), None, None, beta)
    err_naive, err = (naive - exact_F_star).abs(), (with_mass.F_star_P - exact_F_star).abs()
    print(f"exact {exact_F_star.tolist()}\nnaive {naive.tolist()}\nwith p_known {with_mass.F_star_P.tolist()}")
    assert (err_naive > 0.1).all() and (err < err_naive / 4).all()


def _seven_mask(tok, model):
    """Which of the enumerated two-token completions decode to exactly '7'."""
    V, eos = model.config.vocab_size, tok.eos_token_id
    texts = [""] + [tok.decode([a] if b == eos else [a, b], skip_special_tokens=True)
                    for a in range(V) if a != eos for b in range(V)]
    return torch.tensor([t == "7" for t in texts]).unsqueeze(0)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan")])
def test_beta_must_be_positive(beta):
    classes = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="beta"):
        gap_from_classes(classes, torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64)), None, None, beta)


def test_parts_add_up_and_the_base_has_no_within_part():
    classes = torch.tensor([-3.0, -1.0, 5.0], dtype=torch.float64)
    log_b = torch.log(torch.tensor([[0.2, 0.7, 0.1], [0.05, 0.9, 0.05]], dtype=torch.float64))
    T = torch.tensor([[0.1, 0.5, 0.4], [0.0, 0.7, 0.3]], dtype=torch.float64)
    kl_seq = torch.tensor([1.3, 0.9], dtype=torch.float64)
    for beta in (0.1, 1.0, 3.0):
        g = gap_from_classes(classes, log_b, T, kl_seq, beta)
        torch.testing.assert_close(g.between_P + g.within_P, g.gap_P, atol=1e-12, rtol=0)
        torch.testing.assert_close(g.F_P - g.F_star_P, g.gap_P, atol=1e-12, rtol=0)
        base = gap_from_classes(classes, log_b, None, None, beta)
        assert (base.within_P == 0).all() and (base.gap_P >= 0).all()
        # the within part does not depend on beta
        torch.testing.assert_close(g.within_P / beta, gap_from_classes(classes, log_b, T, kl_seq, 1.0).within_P)
