"""Verifier-guided search over the model's own distribution: is a success reachable?

The regime classifier calls a prompt a *barrier* when p(x) < p_budget yet a success is reachable with
extra information. This module supplies that information: a likelihood-ordered beam search over the
model's OWN next-token distribution (temperature 1, ``log_softmax`` of the logits, no reshaping),
pruned by the task's partial verifier. Why this procedure:

- Sampling K completions finds successes of probability ~1/K at best; a beam search follows the
  model's most probable continuations systematically, so a success the model ranks highly at every
  step (but whose total probability is small, e.g. spread over many near-misses) is still found.
- Pruning with ``task.prefix_feasible(problem, prefix)`` (optional; False only when no completion of
  the prefix can succeed) spends the beam only on prefixes that can still succeed. It never removes
  a success, so any success it finds is one a plain beam of the same width could reach in principle.
  A task without ``prefix_feasible`` gets plain beam search with verification.
- Every success is verified by ``task.verify``, and its log-likelihood is the exact sum of the
  model's token log-probs of completion + EOS given the prompt, so "reachable" comes with the
  probability the model itself assigns (the search never changes the distribution it explores).

Per prompt: start from the prompt (BOS included, as ``encode_prompts`` gives it). At each step every
live prefix proposes its ``expand_top`` most probable next tokens; a child ending in EOS is a completed
candidate and is verified (the best-logp success is kept); any other child survives only if its
decoded text passes ``prefix_feasible``; the ``beam_width`` children of highest cumulative log-prob
become the next beam. A prompt stops at its first step with a verified success (we only need
reachability, and best-first by likelihood makes the first success a likely one), when no prefix is
left, or at ``max_new_tokens`` (EOS included). Special tokens other than EOS are never expanded: they
decode to nothing, so the decoded text would not be the sequence whose log-prob we report.

Batching follows ``rollout/hf.py``: a chunk of at most ``max_batch_prompts`` prompts is prefilled once
(``models.forward.prefill``: left-padded, explicit position ids, ``logits_to_keep=1``), its cache is
re-selected with ``CachedPrefix.reorder`` whenever the beam changes, and the beams of all prompts of the
chunk (beam_width x max_batch_prompts rows) decode together. Ordering the children is one torch sort
per step; Python touches only the candidates it hands to the verifier or the partial verifier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from reweightlab.config import setting
from reweightlab.data.encoding import encode_prompts
from reweightlab.models.forward import extend, left_pad, prefill
from reweightlab.tasks.hooks import prefix_feasible

NEG_INF = float("-inf")
# A kept child: (parent row, its next token, cumulative log-prob, decoded completion text).
_Child = tuple[int, int, float, str]


@dataclass(frozen=True)
class SearchBudget:
    """How much search each prompt gets."""

    beam_width: int = setting(32, "search: live prefixes kept per prompt after each step", flag="--search-beams")
    expand_top: int = setting(8, "search: children considered per prefix (its most probable next tokens)",
                              flag="--search-expand")
    max_new_tokens: int = setting(24, "search: candidate length cap, EOS included (the probe command: "
                                      "max_new_tokens unless this is set)")

    def __post_init__(self) -> None:
        for name in ("beam_width", "expand_top", "max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SearchBudget.{name} must be an int >= 1, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    """Per prompt (P): whether a verified success was found, the most likely one, and the cost."""

    found_P: torch.Tensor  # bool
    solution_P: list[str | None]  # the most likely verified success found, else None
    logp_P: torch.Tensor  # float64, log pi(solution + EOS | prompt); -inf if none
    candidates_verified_P: torch.Tensor  # long, completed candidates passed to task.verify
    forward_tokens: int  # input positions run through the model, padding included (the cost)
    budget: SearchBudget

    def to_dict(self) -> dict:
        """JSON-ready plain lists; a missing log-likelihood (-inf) is written as None."""
        return {
            "budget": self.budget.to_dict(),
            "found": self.found_P.tolist(),
            "solution": list(self.solution_P),
            "logp": [x if x != NEG_INF else None for x in self.logp_P.tolist()],
            "candidates_verified": self.candidates_verified_P.tolist(),
            "forward_tokens": self.forward_tokens,
        }


def verifier_guided_search(
    model, tokenizer, task, problems, *, budget: SearchBudget = SearchBudget(), device="cpu",
    progress: bool = False, max_batch_prompts: int = 64,
) -> SearchResult:
    """Search each problem's completions for a verified success (see the module docstring)."""
    if not isinstance(budget, SearchBudget):
        raise TypeError(f"budget must be a SearchBudget, got {type(budget).__name__}")
    if isinstance(max_batch_prompts, bool) or not isinstance(max_batch_prompts, int) or max_batch_prompts < 1:
        raise ValueError(f"max_batch_prompts must be an int >= 1, got {max_batch_prompts!r}")
    problems = list(problems)
    prompt_ids = encode_prompts(tokenizer, [p.prompt for p in problems])
    _check_positions(model, prompt_ids, budget.max_new_tokens)
    P = len(problems)
    found_P = torch.zeros(P, dtype=torch.bool)
    logp_P = torch.full((P,), NEG_INF, dtype=torch.float64)
    verified_P = torch.zeros(P, dtype=torch.long)
    solution_P: list[str | None] = [None] * P
    forward_tokens = 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), tqdm(total=P, disable=not progress, desc="search", unit="prompt") as bar:
            for start in range(0, P, max_batch_prompts):
                stop = min(start + max_batch_prompts, P)
                chunk = _ChunkSearch(model, tokenizer, task, problems[start:stop], budget, torch.device(device))
                forward_tokens += chunk.run(prompt_ids[start:stop])
                for c, (text, logp) in enumerate(chunk.best):
                    solution_P[start + c] = text
                    logp_P[start + c] = logp
                found_P[start:stop] = torch.tensor([text is not None for text, _ in chunk.best])
                verified_P[start:stop] = torch.tensor(chunk.verified, dtype=torch.long)
                bar.update(stop - start)
    finally:
        model.train(was_training)
    return SearchResult(found_P, solution_P, logp_P, verified_P, forward_tokens, budget)


def _check_positions(model, prompt_ids, max_new_tokens: int) -> None:
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("a prompt encodes to no tokens: every prompt needs at least one token")
    max_positions = getattr(model.config, "max_position_embeddings", None)
    longest = max((len(p) for p in prompt_ids), default=0)
    if max_positions is not None and longest + max_new_tokens > max_positions:
        raise ValueError(
            f"longest prompt ({longest}) + max_new_tokens ({max_new_tokens}) exceeds the model's "
            f"max_position_embeddings ({max_positions})"
        )


class _ChunkSearch:
    """The beam search of one chunk of C prompts; rows are prompt-major (row = c * b + j)."""

    def __init__(self, model, tokenizer, task, problems, budget: SearchBudget, device: torch.device) -> None:
        self.model, self.tokenizer, self.task, self.problems = model, tokenizer, task, problems
        self.budget, self.device = budget, device
        self.eos = int(tokenizer.eos_token_id)
        self.pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos)
        # Expanding <pad>/<bos>/<unk> would add a token that decoding drops: the text verified would not
        # be the sequence whose log-prob is reported. They are masked out before choosing children.
        self.banned = sorted(set(tokenizer.all_special_ids) - {self.eos})
        C = len(problems)
        self.best: list[tuple[str | None, float]] = [(None, NEG_INF)] * C
        self.verified = [0] * C

    def run(self, prompt_ids: list[list[int]]) -> int:
        """Search every prompt of the chunk; fills ``best`` and ``verified``; returns forward tokens."""
        C, W, T = len(prompt_ids), self.budget.beam_width, self.budget.max_new_tokens
        ids_CL, mask_CL = left_pad(prompt_ids, self.pad, self.device)
        logits_RV, prefix = prefill(self.model, ids_CL, mask_CL, reserve=T)
        forward_tokens = C * ids_CL.shape[1]
        # The beam starts as one empty prefix per prompt (b = 1), then holds W slots (dead ones at -inf).
        score_CB = torch.zeros(C, 1, dtype=torch.float64)
        ids_R: list[list[int]] = [[] for _ in range(C)]
        texts_R = [""] * C
        for t in range(T):
            kept_C = self._select(t, logits_RV, score_CB, ids_R, texts_R)
            if not any(kept_C):
                break
            src_R, token_R, score_CB, ids_R, texts_R = self._next_beam(kept_C, W, ids_R)
            prefix.reorder(src_R)
            logits_RV = extend(self.model, prefix, token_R.to(self.device).unsqueeze(-1))
            forward_tokens += C * W
        del prefix
        return forward_tokens

    def _select(self, t, logits_RV, score_CB, ids_R, texts_R) -> list[list[_Child]]:
        """Verify this step's EOS children and pick each prompt's next beam (a list of ``_Child``)."""
        C, b = score_CB.shape
        K = min(self.budget.expand_top, logits_RV.shape[-1])
        logp_RV = torch.log_softmax(logits_RV, dim=-1)
        if self.banned:
            logp_RV[:, self.banned] = NEG_INF
        top_logp_RK, top_token_RK = logp_RV.topk(K, dim=-1)
        # Cumulative log-prob in float64: the sum over a completion is compared with teacher forcing.
        child_CN = (score_CB.unsqueeze(-1) + top_logp_RK.double().cpu().view(C, b, K)).view(C, b * K)
        order_score_CN, order_CN = child_CN.sort(dim=-1, descending=True)
        scores, orders, tokens = order_score_CN.tolist(), order_CN.tolist(), top_token_RK.cpu().tolist()
        last = t == self.budget.max_new_tokens - 1  # a child that is not EOS could never finish
        kept_C = []
        for c in range(C):
            kept = self._select_prompt(c, b, K, scores[c], orders[c], tokens, ids_R, texts_R, last)
            kept_C.append(kept)
        return kept_C

    def _select_prompt(self, c, b, K, scores, orders, tokens, ids_R, texts_R, last) -> list[_Child]:
        """Walk one prompt's children best first: verify EOS children until the first success (the
        most likely one of this step), and keep up to W feasible other children."""
        problem, W = self.problems[c], self.budget.beam_width
        kept: list[_Child] = []
        success: tuple[str, float] | None = None
        for score, n in zip(scores, orders, strict=True):
            if score == NEG_INF:  # sorted: the rest are dead rows too
                break
            row = c * b + n // K
            token = tokens[row][n % K]
            if token == self.eos:
                self.verified[c] += 1
                if self.task.verify(problem, texts_R[row]).success:
                    success = (texts_R[row], score)  # the first in sorted order is the most likely
                    break
                continue
            if last or len(kept) == W:
                continue
            text = self.tokenizer.decode(ids_R[row] + [token], skip_special_tokens=True)
            if prefix_feasible(self.task, problem, text):
                kept.append((row, token, score, text))
        if success is not None:
            self.best[c] = success
            return []  # reachability is all we need: stop expanding this prompt
        return kept

    def _next_beam(self, kept_C, W, parent_ids_R):
        """Rows of the next beam: parent row (cache source), fed token, scores, ids and texts."""
        C = len(kept_C)
        b = len(parent_ids_R) // C
        # A dead slot copies its prompt's first row, so its mask and positions stay its prompt's (had it
        # copied another prompt's row, a padded prompt's mask could vanish from the batch and change
        # the attention kernel the live rows get); its -inf score keeps it dead.
        src = [c * b for c in range(C) for _ in range(W)]
        tokens = [self.pad] * (C * W)
        scores = [NEG_INF] * (C * W)
        ids_R: list[list[int]] = [[] for _ in range(C * W)]
        texts_R = [""] * (C * W)
        for c, kept in enumerate(kept_C):
            for j, (row, token, score, text) in enumerate(kept):
                r = c * W + j
                src[r], tokens[r], scores[r] = row, token, score
                ids_R[r], texts_R[r] = parent_ids_R[row] + [token], text
        score_CB = torch.tensor(scores, dtype=torch.float64).view(C, W)
        return torch.tensor(src), torch.tensor(tokens), score_CB, ids_R, texts_R
