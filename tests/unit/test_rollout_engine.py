"""The Rollout container and the sampling function, without a model."""

import math

import pytest
import torch

from reweightlab.rollout import Rollout, RolloutEngine, sample_from_logits
from reweightlab.rollout.hf import HFRolloutEngine


def _rollout() -> Rollout:
    pad, eos = 0, 2
    return Rollout(
        prompt_index_N=torch.tensor([0, 0, 1]),
        completion_ids_NT=torch.tensor([[5, 2, pad], [7, 8, 9], [eos, pad, pad]]),
        completion_mask_NT=torch.tensor([[True, True, False], [True, True, True], [True, False, False]]),
        logp_NT=torch.tensor([[-1.0, -0.5, 0.0], [-2.0, -1.0, -0.1], [-0.3, 0.0, 0.0]]),
        finished_N=torch.tensor([True, False, True]),
    )


def test_lengths_and_lists_drop_padding_and_keep_eos():
    rollout = _rollout()
    assert rollout.lengths_N.tolist() == [2, 3, 1]
    assert rollout.completions_as_lists() == [[5, 2], [7, 8, 9], [2]]
    assert rollout.num_sequences == 3


def test_rollout_rejects_inconsistent_shapes():
    good = _rollout()
    with pytest.raises(ValueError, match="prompt_index_N"):
        Rollout(torch.tensor([0, 0]), good.completion_ids_NT, good.completion_mask_NT, good.logp_NT,
                good.finished_N)
    with pytest.raises(ValueError, match="logp_NT"):
        Rollout(good.prompt_index_N, good.completion_ids_NT, good.completion_mask_NT, good.logp_NT[:, :2],
                good.finished_N)


def test_hf_engine_satisfies_protocol():
    assert issubclass(HFRolloutEngine, RolloutEngine)


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.5, 1.0), (1.0, 0.7), (2.0, 0.55)])
def test_sample_frequencies_and_logp_match_the_sampled_distribution(temperature, top_p):
    logits_V = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    q_V = torch.softmax(logits_V / temperature, dim=-1)
    # Reference nucleus: most probable tokens until their mass reaches top_p.
    order = q_V.argsort(descending=True).tolist()
    keep, mass = [], 0.0
    for i in order:
        if mass >= top_p:
            break
        keep.append(i)
        mass += q_V[i].item()
    target_V = torch.zeros_like(q_V)
    target_V[keep] = q_V[keep] / q_V[keep].sum()

    n = 40_000
    generator = torch.Generator().manual_seed(0)
    token_N, logp_N = sample_from_logits(
        logits_V.expand(n, -1), temperature=temperature, top_p=top_p, generator=generator
    )
    freq_V = torch.bincount(token_N, minlength=5).float() / n
    # 4 standard errors of a frequency with p(1-p) <= 1/4: 4 * 0.5 / sqrt(n) = 0.01.
    assert torch.allclose(freq_V, target_V, atol=0.01)
    assert torch.allclose(logp_N, target_V.log()[token_N], atol=1e-6)
    assert logp_N.dtype == torch.float32
    assert math.isclose(freq_V[target_V == 0].sum().item(), 0.0)
