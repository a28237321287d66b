"""The two estimators of p(x) agree within sampling error on an embedded model.

The model is built by the real pretraining code (`models.pretrain.pretrain`), scaled down to train in
about 35 s on one thread: hidden 64, 2 layers, 500 steps of 64 sequences over a pool of 100 hands,
95% of the completions correct. The full default takes ~5 minutes, too long for the suite. On the
48 in-distribution training hands (all in the pool) this gave p_known from ~0.001 to ~0.7, mean ~0.2,
38 of 48 in (0.05, 0.95): varied enough that agreement cannot come from both estimators being ~0.

Sampling counts any verified expression, p_known only the solver's canonical strings, so in
expectation c/n >= p_known; the corpus's correct completions are canonical solver strings, so the
model puts (nearly) all of its success mass on them and the two agree within binomial error.
"""

import pytest
import torch

from reweightlab.models import EmbeddedSpec, load_model, load_tokenizer
from reweightlab.probe.likelihood import known_solution_stats
from reweightlab.probe.regimes import agreement
from reweightlab.recipes.pretrain import PretrainSpec, pretrain
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.scored import sample_and_score
from reweightlab.tasks import GeneralPoints

TASK = GeneralPoints()
SPEC = PretrainSpec(
    arch=EmbeddedSpec(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=256, max_positions=64),
    steps=500, sequences_per_step=64, pool_hands=100, warmup_steps=25, lr=5e-3,
    correct_fraction=0.95, misread_fraction=0.025,
)
N_SAMPLES = 256
N_PROMPTS = 48


@pytest.fixture(scope="module")
def estimates(tmp_path_factory):
    """(c/n, p_known) per prompt on ID training hands, for a small pretrained embedded model."""
    path = tmp_path_factory.mktemp("small-embedded") / "model"
    pretrain(SPEC, path, progress=False, log=lambda *_: None)
    tok, model = load_tokenizer(path), load_model(path)
    problems = TASK.problems("id", "train", N_PROMPTS, SPEC.seed)  # hands from the pretraining pool
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    scored = sample_and_score(
        engine, TASK, problems, tok, samples_per_prompt=N_SAMPLES,
        max_new_tokens=TASK.max_completion_chars, seed=0,
    )
    p_sample_P = scored.success_PG.double().mean(1)
    return p_sample_P, known_solution_stats(model, tok, TASK, problems).p_known_P


def test_prompts_have_varied_success_probabilities(estimates):
    _, p_known_P = estimates
    assert int(((p_known_P > 0.05) & (p_known_P < 0.95)).sum()) >= 10, p_known_P
    assert float(p_known_P.mean()) > 0.05


def test_sampling_and_likelihood_agree_within_sampling_error(estimates):
    p_sample_P, p_known_P = estimates
    n_P = torch.full_like(p_sample_P, N_SAMPLES)
    res = agreement(p_sample_P, n_P, p_known_P)
    print(res, "mean |c/n - p_known| =", float((p_sample_P - p_known_P).abs().mean()))
    assert res["within"] >= 0.95, res
    # Per prompt, E|c/n - p| ~ sqrt(2/pi) sqrt(p(1-p)/n) ~ 0.02 at p ~ 0.2, n = 256.
    assert float((p_sample_P - p_known_P).abs().mean()) < 0.035
    # The mean over 48 prompts has a binomial standard error of ~0.004: 0.015 is ~4 sigma.
    assert abs(res["mean_sampling"] - res["mean_known"]) < 0.015, res
    # The check has power: the same numbers paired with the wrong prompts disagree.
    wrong = agreement(p_sample_P, n_P, p_known_P.roll(1))
    assert wrong["within"] < 0.8, wrong
