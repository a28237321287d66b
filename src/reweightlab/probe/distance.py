"""Distance from base: how far a trained model T moved from its base B, measured on T's samples.

- exact per-token ``KL(T || B) = sum_v T_v (log T_v - log B_v)`` over the full vocabulary at every
  completion position of T's samples (analysis code: the training losses only ever see estimates);
- next to it the k1 and k3 sample estimates from the sampled tokens' log-probs. Both are unbiased for
  the same per-token KL when the tokens were sampled from T at temperature 1, so on many samples they
  must agree with the exact value within sampling error, a check on the sampler and the estimators;
- the base model's log-likelihood (and perplexity) of T's successful samples: low values mean T
  succeeds with text the base model would rarely write.

Both models see the same token ids, so they must share a tokenizer (``check_same_tokenizer``).
"""

from __future__ import annotations

import math as pymath

import torch

from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.math import exact_kl, kl_estimate, token_logprobs
from reweightlab.models.forward import completion_logits_by_prompt, forward_logits_logp, teacher_forced_logp


def check_same_tokenizer(tok_a, tok_b) -> None:
    """Raise ValueError unless both tokenizers map the same strings to the same ids (and agree on
    EOS, PAD and BOS): the probe compares the two models' distributions token id by token id."""
    if tok_a.get_vocab() != tok_b.get_vocab():
        raise ValueError(
            f"the models use different tokenizers (vocabularies of {len(tok_a.get_vocab())} and "
            f"{len(tok_b.get_vocab())} entries differ); per-token KL needs the same vocabulary"
        )
    for name in ("eos_token_id", "pad_token_id", "bos_token_id"):
        a, b = getattr(tok_a, name, None), getattr(tok_b, name, None)
        if a != b:
            raise ValueError(f"the models use different tokenizers: {name} is {a} vs {b}")


def _check_batching(store: SequenceStore, sequences_per_microbatch: int) -> None:
    if sequences_per_microbatch < 1:
        raise ValueError(f"sequences_per_microbatch must be >= 1, got {sequences_per_microbatch}")
    if store.completion_tokens() == 0:
        raise ValueError("the store holds no completion tokens: nothing to measure")


@torch.no_grad()
def distance_and_base_logp(
    trained, base, store: SequenceStore, *, sequences_per_microbatch: int = 128, device="cpu"
) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """``distance_from_base``'s figures and, from the same forwards, per sequence (float64, shape N):
    ``log B(y | x)`` (the sum over completion tokens, EOS included), which the free-energy gap and
    ``base_loglik_of_successes`` need, and the summed exact KL of each sequence (whose mean over a
    prompt's samples estimates the sequence-level KL(T || B) for that prompt): one pass serves all."""
    _check_batching(store, sequences_per_microbatch)
    modes = (trained.training, base.training)
    trained.eval()
    base.eval()
    sums = {"exact": 0.0, "k1": 0.0, "k3": 0.0}
    tokens = 0.0
    logp_base_N = torch.zeros(len(store), dtype=torch.float64)
    kl_exact_N = torch.zeros(len(store), dtype=torch.float64)
    try:
        for index_B, mask_BT, logits_t, logp_t, logits_b, logp_b in _paired_forwards(
                trained, base, store, sequences_per_microbatch, device):
            if logits_t.shape != logits_b.shape:
                raise ValueError(
                    f"trained and base output {logits_t.shape[-1]} and {logits_b.shape[-1]} logits per "
                    "position: the models do not share a vocabulary"
                )
            kl_BT = exact_kl(logits_t, logits_b)
            del logits_t, logits_b  # only the B x T values are needed from here on
            mask = mask_BT.double()
            kl_B = (kl_BT.double() * mask).sum(1)
            sums["exact"] += float(kl_B.sum())
            kl_exact_N[index_B.cpu()] = kl_B.cpu()
            for est in ("k1", "k3"):
                sums[est] += float((kl_estimate(logp_t, logp_b, est).double() * mask).sum())
            tokens += float(mask.sum())
            logp_base_N[index_B.cpu()] = (logp_b.double() * mask).sum(1).cpu()
    finally:
        trained.train(modes[0])
        base.train(modes[1])
    figures = {
        "kl_exact_per_token": sums["exact"] / tokens,
        "kl_k1_per_token": sums["k1"] / tokens,
        "kl_k3_per_token": sums["k3"] / tokens,
        # every sequence counts, also one with an empty completion (its KL sum is 0)
        "kl_exact_per_sequence": sums["exact"] / len(store),
        "tokens": int(tokens),
    }
    return figures, logp_base_N, kl_exact_N


def _paired_forwards(trained, base, store: SequenceStore, sequences_per_microbatch: int, device):
    """Per chunk (index_B, mask_BT, logits and target log-probs of trained, then of base). A store whose
    sequences come in groups sharing a prompt (a probe's samples) runs each prompt once per model
    (``completion_logits_by_prompt``); one with feedback inside its completions, as plain forwards."""
    if store.loss_mask_NT is None:
        for index_B, targets_BT, mask_BT, (logits_t, logits_b) in completion_logits_by_prompt(
                (trained, base), store, sequences_per_chunk=sequences_per_microbatch, device=device):
            yield (index_B, mask_BT, logits_t, token_logprobs(logits_t, targets_BT),
                   logits_b, token_logprobs(logits_b, targets_BT))
        return
    for mb in microbatches(store, sequences_per_microbatch):
        mbd = mb.to(device)
        logits_t, logp_t = forward_logits_logp(trained, mbd)
        logits_b, logp_b = forward_logits_logp(base, mbd)
        yield mb.index_B, mbd.mask_BT, logits_t, logp_t, logits_b, logp_b


def distance_from_base(
    trained, base, store: SequenceStore, *, sequences_per_microbatch: int = 128, device="cpu"
) -> dict:
    """Per-token ``KL(trained || base)`` over the completion tokens of ``store`` (samples of ``trained``).

    Returns ``kl_exact_per_token``, ``kl_k1_per_token``, ``kl_k3_per_token`` (means over all completion
    tokens), ``kl_exact_per_sequence`` (mean over sequences of each sequence's summed exact KL, i.e. the
    KL between the two models' distributions of whole completions when the samples are T's) and
    ``tokens``. One forward of each model per chunk of sequences, each prompt run once for the samples
    that share it; the KL is reduced inside the chunk, so the two B x T x V logit tensors live only
    for that chunk. Sums accumulate in float64.
    """
    return distance_and_base_logp(
        trained, base, store, sequences_per_microbatch=sequences_per_microbatch, device=device
    )[0]


@torch.no_grad()
def base_loglik_of_successes(base, store: SequenceStore, *, sequences_per_microbatch: int = 128, device="cpu",
                             logp_base_N: torch.Tensor | None = None) -> dict:
    """Base log-likelihood of the successful sequences of ``store`` (``success_N == 1``).

    Returns ``n`` (successful sequences), ``tokens``, ``base_logp_per_token`` (mean over their
    completion tokens), ``base_perplexity_per_token = exp(-base_logp_per_token)`` and
    ``base_logp_per_sequence`` (mean over sequences of ``log B(y | x)``); the last three are None when
    there is no success. ``logp_base_N`` (from ``distance_and_base_logp``) saves the base pass.
    """
    if store.success_N is None:
        raise ValueError("the store has no success_N (use sample_and_score, or pass success_N=...)")
    if sequences_per_microbatch < 1:
        raise ValueError(f"sequences_per_microbatch must be >= 1, got {sequences_per_microbatch}")
    success_N = store.success_N
    index = torch.nonzero(success_N == 1).flatten()
    values = ("base_logp_per_token", "base_perplexity_per_token", "base_logp_per_sequence")
    none = {"n": 0, "tokens": 0} | dict.fromkeys(values)
    if index.numel() == 0:
        return none
    wins = store.select(index)
    tokens = wins.completion_tokens()
    if tokens == 0:
        return none | {"n": len(wins)}
    if logp_base_N is not None:
        logp_N = logp_base_N[index].double()
    else:
        mbs = microbatches(wins, sequences_per_microbatch)
        # teacher_forced_logp zeroes prompt and padding positions; sum per sequence in float64
        logp_N = teacher_forced_logp(base, mbs, len(wins), wins.ids_NL.shape[1], device).double().sum(1)
    total = float(logp_N.sum())
    logp_per_token = total / tokens
    return {
        "n": len(wins),
        "tokens": tokens,
        "base_logp_per_token": logp_per_token,
        "base_perplexity_per_token": pymath.exp(-logp_per_token),
        "base_logp_per_sequence": total / len(wins),
    }
