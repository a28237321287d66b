"""Batched sampling from any Hugging Face causal LM with a KV cache, returning sampler log-probs.

Per chunk of at most `max_batch_sequences` sequences, with the cached forwards of models/forward.py:
  1. prefill: each distinct prompt of the chunk runs once, left-padded, with an attention mask and
     explicit position ids (so padding does not shift positions); only the last position's logits
     are projected onto the vocabulary (`logits_to_keep=1`);
  2. the cache and last logits are then copied to the G samples of each prompt (`CachedPrefix.reorder`
     with a repeating index), so a prompt's prefill is paid once rather than G times;
  3. decode: one forward (`extend`) of one token per sequence per step until every sequence has
     produced EOS or `max_new_tokens` is reached.
The only Python loop on the hot path is the one over generated positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from reweightlab.data.episodes import Segment
from reweightlab.models.forward import extend, left_pad, prefill
from reweightlab.rollout.engine import Rollout


def sample_from_logits(
    logits_BV: torch.Tensor,
    *,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    uniform_B: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row; return (token_B, logp_B) with logp under the sampled distribution.

    q = softmax(logits / temperature), in float32; with top_p < 1, q is restricted to the nucleus
    (the smallest set of most probable tokens whose mass reaches top_p; the top token is always in
    it) and renormalised. logp_B = log q(token), the quantity an importance ratio needs.

    With `uniform_B` (one U(0,1) draw per row, made by the caller), the token is drawn by inverse CDF
    instead of from `generator`: a row's sample then depends only on its own draw, not on which
    other rows share the batch (how data-parallel processes reproduce a single process's samples).
    """
    logq_BV = torch.log_softmax(logits_BV.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_logq_BV, order_BV = logq_BV.sort(dim=-1, descending=True)
        sorted_q_BV = sorted_logq_BV.exp()
        # Mass strictly before each token in sorted order; a token is in the nucleus iff that mass
        # has not yet reached top_p. The first token has 0 < top_p, so it is always kept.
        mass_before_BV = sorted_q_BV.cumsum(dim=-1) - sorted_q_BV
        drop_sorted_BV = mass_before_BV >= top_p
        drop_BV = torch.zeros_like(drop_sorted_BV).scatter_(-1, order_BV, drop_sorted_BV)
        logq_BV = torch.log_softmax(logq_BV.masked_fill(drop_BV, float("-inf")), dim=-1)
    if uniform_B is None:
        token_B = torch.multinomial(logq_BV.exp(), num_samples=1, generator=generator).squeeze(-1)
    else:
        cdf_BV = logq_BV.exp().cumsum(dim=-1)
        # scale u to the row's total mass so rounding can never land past the last possible token;
        # right=True skips zero-probability tokens (their cdf equals the previous one)
        u_B1 = (uniform_B.to(cdf_BV.device, cdf_BV.dtype) * cdf_BV[:, -1]).unsqueeze(-1)
        token_B = torch.searchsorted(cdf_BV, u_B1, right=True).squeeze(-1).clamp(max=cdf_BV.shape[-1] - 1)
    logp_B = logq_BV.gather(-1, token_B.unsqueeze(-1)).squeeze(-1)
    return token_B, logp_B


class HFRolloutEngine:
    """Rollout engine for any `AutoModelForCausalLM` (CPU or CUDA); returns CPU tensors.

    `max_batch_sequences` bounds the sequences decoded together, hence the memory of the KV cache
    (layers x 2 x B x heads x (prompt + new tokens) x head_dim) and of the float32 logits (B x V).
    Llama-architecture models decode through models/fast_decode.py (a preallocated buffer, a prompt's
    columns shared by its samples, finished rows skipped outside attention); others through
    transformers' DynamicCache, which appends with torch.cat (copying the whole cache every step, so
    past 512-1024 sequences per chunk it slows down).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        eos_token_id: int,
        pad_token_id: int,
        max_batch_sequences: int = 512,
    ) -> None:
        if max_batch_sequences < 1:
            raise ValueError(f"max_batch_sequences must be >= 1, got {max_batch_sequences}")
        vocab_size = model.get_input_embeddings().num_embeddings
        for name, token in (("eos_token_id", eos_token_id), ("pad_token_id", pad_token_id)):
            if not 0 <= token < vocab_size:
                raise ValueError(f"{name}={token} is outside the model's vocabulary [0, {vocab_size})")
        self.model = model
        self.eos_token_id = int(eos_token_id)
        self.pad_token_id = int(pad_token_id)
        self.max_batch_sequences = int(max_batch_sequences)
        self._vocab_size = vocab_size

    @property
    def device(self) -> torch.device:
        # Inputs go where the embedding lives (the first device under a device_map).
        return self.model.get_input_embeddings().weight.device

    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        *,
        samples_per_prompt: int = 1,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        progress: bool = False,
        prompt_seeds: Sequence[int] | None = None,
    ) -> Rollout:
        """Sample `samples_per_prompt` (G) completions per prompt; sequence n = p * G + g.

        Same seed on the same device and batch plan -> identical Rollout; seed=None -> nondeterministic.
        `prompt_seeds` (one per prompt, instead of `seed`): prompt p's samples depend only on its seed
        (up to float rounding of the logits), whichever prompts share the call or the chunk.
        """
        prompts, generator, uniform_NAT = self._prepare(
            prompt_ids, samples_per_prompt, max_new_tokens, temperature, top_p, seed, prompt_seeds, attempts=1)
        num_sequences = len(prompts) * samples_per_prompt
        uniform_NT = None if uniform_NAT is None else uniform_NAT[:, 0]

        chunks = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), tqdm(
                total=num_sequences, disable=not progress, desc="rollout", unit="seq"
            ) as bar:
                for start in range(0, num_sequences, self.max_batch_sequences):
                    stop = min(start + self.max_batch_sequences, num_sequences)
                    chunks.append(
                        self._generate_chunk(
                            prompts, start, stop, samples_per_prompt,
                            max_new_tokens, temperature, top_p, generator,
                            None if uniform_NT is None else uniform_NT[start:stop],
                        )
                    )
                    bar.update(stop - start)
        finally:
            self.model.train(was_training)
        return self._assemble(chunks, samples_per_prompt)

    def _prepare(self, prompt_ids, samples_per_prompt, max_new_tokens, temperature, top_p, seed, prompt_seeds,
                 attempts: int):
        """Checked prompts, the generator (``seed``) and, with ``prompt_seeds``, each sequence's uniform
        draws for ``attempts`` attempts (N x A x T): a prompt's generator gives attempt 1's first, so
        attempt 1 is the same whatever the number of attempts."""
        self._validate(prompt_ids, samples_per_prompt, max_new_tokens, temperature, top_p)
        prompts = [list(map(int, p)) for p in prompt_ids]
        if min(map(min, prompts)) < 0 or max(map(max, prompts)) >= self._vocab_size:
            raise ValueError(f"prompt token ids must lie in [0, {self._vocab_size})")
        generator = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        if prompt_seeds is None:
            return prompts, generator, None
        if seed is not None or len(prompt_seeds) != len(prompts):
            raise ValueError("prompt_seeds: one per prompt, and not together with seed")
        G, T, per_prompt = samples_per_prompt, max_new_tokens, []
        for ps in prompt_seeds:
            g = torch.Generator().manual_seed(int(ps))
            first = torch.rand(G, 1, T, generator=g)
            per_prompt.append(torch.cat([first, torch.rand(G, attempts - 1, T, generator=g)], 1))
        return prompts, generator, torch.cat(per_prompt)

    def _validate(self, prompt_ids, samples_per_prompt, max_new_tokens, temperature, top_p) -> None:
        if len(prompt_ids) == 0:
            raise ValueError("prompt_ids is empty: need at least one prompt")
        for i, prompt in enumerate(prompt_ids):
            if len(prompt) == 0:
                raise ValueError(f"prompt {i} is empty: every prompt needs at least one token")
        if samples_per_prompt < 1:
            raise ValueError(f"samples_per_prompt must be >= 1, got {samples_per_prompt}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not temperature > 0:  # also rejects NaN
            raise ValueError(f"temperature must be > 0 (greedy decoding is not supported), got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        max_positions = getattr(self.model.config, "max_position_embeddings", None)
        longest = max(len(p) for p in prompt_ids)
        if max_positions is not None and longest + max_new_tokens > max_positions:
            raise ValueError(
                f"longest prompt ({longest}) + max_new_tokens ({max_new_tokens}) exceeds the model's "
                f"max_position_embeddings ({max_positions})"
            )

    def _generate_chunk(
        self, prompts, start, stop, group_size, max_new_tokens, temperature, top_p, generator, uniform_BT=None
    ) -> tuple[torch.Tensor, ...]:
        """Sample sequences [start, stop); returns CPU (tokens_BT, mask_BT, logp_BT, finished_B)."""
        logits_BV, prefix = self._prefill_chunk(prompts, start, stop, group_size, max_new_tokens)
        tokens_BT, mask_BT, logp_BT, finished_B, _last = self._decode(
            prefix, logits_BV, max_new_tokens, temperature, top_p, generator, uniform_BT)
        del prefix
        return tokens_BT.cpu(), mask_BT.cpu(), logp_BT.cpu(), finished_B.cpu()

    def _prefill_chunk(self, prompts, start, stop, group_size, reserve):
        """Prefill the distinct prompts of sequences [start, stop) once and copy each prompt's cache and
        logits to its samples: (logits_BV, CachedPrefix)."""
        device = self.device
        first_prompt = start // group_size
        ids_PL, mask_PL = left_pad(prompts[first_prompt : (stop - 1) // group_size + 1], self.pad_token_id, device)
        logits_PV, prefix = prefill(self.model, ids_PL, mask_PL, reserve=reserve)
        prompt_of_B = torch.arange(start, stop, device=device) // group_size - first_prompt
        prefix.reorder(prompt_of_B)
        return logits_PV[prompt_of_B], prefix

    def _decode(self, prefix, logits_BV, max_new_tokens, temperature, top_p, generator, uniform_BT):
        """Decode one completion per cached row: (tokens_BT, mask_BT, logp_BT, finished_B, last), on the
        model's device. ``last`` = (token_B, real_B): the tokens of the final step, which the cache does
        not hold yet (a revision episode feeds them with its feedback), and which of them are real."""
        batch, device = logits_BV.shape[0], logits_BV.device
        tokens_BT = torch.full((batch, max_new_tokens), self.pad_token_id, dtype=torch.long, device=device)
        logp_BT = torch.zeros(batch, max_new_tokens, dtype=torch.float32, device=device)
        mask_BT = torch.zeros(batch, max_new_tokens, dtype=torch.bool, device=device)
        finished_B = torch.zeros(batch, dtype=torch.bool, device=device)
        steps = 0
        for t in range(max_new_tokens):
            token_B, logp_B = sample_from_logits(
                logits_BV, temperature=temperature, top_p=top_p, generator=generator,
                uniform_B=None if uniform_BT is None else uniform_BT[:, t],
            )
            alive_B = ~finished_B
            token_B = torch.where(alive_B, token_B, self.pad_token_id)
            tokens_BT[:, t] = token_B
            logp_BT[:, t] = torch.where(alive_B, logp_B, 0.0)
            mask_BT[:, t] = alive_B
            finished_B |= token_B == self.eos_token_id
            steps = t + 1
            # One host sync per step; stopping early is what makes EOS-heavy batches cheap.
            if steps == max_new_tokens or bool(finished_B.all()):
                break
            # Finished rows stay in the batch, fed the pad token masked (outputs discarded), so a finished
            # row's cache stays what its text is and a revision episode can extend it. The fast path
            # skips them outside attention (fast_decode.rows_to_compute); the generic one computes them.
            logits_BV = extend(self.model, prefix, token_B.unsqueeze(-1), alive_B.unsqueeze(-1))
        return (tokens_BT[:, :steps], mask_BT[:, :steps], logp_BT[:, :steps], finished_B,
                (token_B, mask_BT[:, steps - 1]))

    def generate_episodes(
        self,
        prompt_ids: Sequence[Sequence[int]],
        feedback: Callable[[int, list[int], list[list[int]]], list[list[int] | None]],
        *,
        attempts: int,
        samples_per_prompt: int = 1,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        progress: bool = False,
        prompt_seeds: Sequence[int] | None = None,
    ) -> list[list[Segment]]:
        """Revision episodes: up to ``attempts`` completions per episode, each after the feedback on the last.

        Episode n = p * G + g (as ``generate``'s sequences) starts from prompt p. After every attempt
        but the last, ``feedback(attempt, episodes, completions)`` (0-based attempt; the chunk's live
        episode indices; their newest completions' token ids, EOS included) returns, per episode, the
        token ids to append (the verifier's reason) or None to end it (a success). The episodes that go
        on keep their KV cache: the feedback is fed after what the cache holds (one forward per block of
        feedback, never a second prefill of the episode so far) and the next attempt decodes from there.
        Returns per episode its segments: attempts (``loss=True``, with the sampler's log-probs) and
        feedback (``loss=False``) in order, for ``data.episodes.episode_store``.

        Attempt 1 draws exactly what ``generate`` draws with the same seed(s): ``prompt_seeds`` make
        every episode's draws depend only on its prompt's seed (later attempts draw after the first's).
        """
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an int >= 1, got {attempts!r}")
        prompts, generator, uniform_NAT = self._prepare(
            prompt_ids, samples_per_prompt, max_new_tokens, temperature, top_p, seed, prompt_seeds, attempts)
        G, num_episodes = samples_per_prompt, len(prompts) * samples_per_prompt
        out: list[list[Segment]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), tqdm(total=num_episodes, disable=not progress, desc="episodes",
                                              unit="episode") as bar:
                for start in range(0, num_episodes, self.max_batch_sequences):
                    stop = min(start + self.max_batch_sequences, num_episodes)
                    out += self._episode_chunk(prompts, start, stop, G, max_new_tokens, attempts, feedback,
                                               temperature, top_p, generator,
                                               None if uniform_NAT is None else uniform_NAT[start:stop])
                    bar.update(stop - start)
        finally:
            self.model.train(was_training)
        return out

    def _episode_chunk(self, prompts, start, stop, G, max_new_tokens, attempts, feedback, temperature, top_p,
                       generator, uniform_BAT) -> list[list[Segment]]:
        logits_BV, prefix = self._prefill_chunk(prompts, start, stop, G, max_new_tokens)
        episodes: list[list[Segment]] = [[] for _ in range(stop - start)]
        live = torch.arange(stop - start)  # chunk-local episode index of each cached row
        max_positions = getattr(self.model.config, "max_position_embeddings", None)
        for a in range(attempts):
            uniform_BT = None if uniform_BAT is None else uniform_BAT[live, a]
            tokens_BT, mask_BT, logp_BT, _finished, (last_B, last_real_B) = self._decode(
                prefix, logits_BV, max_new_tokens, temperature, top_p, generator, uniform_BT)
            lengths = mask_BT.sum(-1).tolist()
            ids = [row[:n] for row, n in zip(tokens_BT.tolist(), lengths, strict=True)]
            logps = [row[:n] for row, n in zip(logp_BT.tolist(), lengths, strict=True)]
            for e, i, lp in zip(live.tolist(), ids, logps, strict=True):
                episodes[e].append(Segment(i, True, lp))
            if a == attempts - 1:
                break
            notes = feedback(a, [start + e for e in live.tolist()], ids)
            keep = [k for k, note in enumerate(notes) if note is not None]
            if not keep:
                break
            if any(len(notes[k]) == 0 for k in keep):
                raise ValueError("feedback for a failed attempt encodes to no tokens; an episode's feedback "
                                 "must be non-empty text")
            for k in keep:
                episodes[int(live[k])].append(Segment(list(notes[k]), False))
            last, real = last_B.tolist(), last_real_B.tolist()
            block = [([last[k]] if real[k] else []) + list(notes[k]) for k in keep]
            index = torch.tensor(keep, device=prefix.mask_BS.device)
            prefix.reorder(index, reserve=max(map(len, block)) + max_new_tokens)  # the feedback, the next attempt
            live = live[torch.tensor(keep)]
            if max_positions is not None:
                longest = int(prefix.next_position_B.max()) + max(map(len, block)) + max_new_tokens
                if longest > max_positions:
                    raise ValueError(f"a revision episode outgrew the model's max_position_embeddings "
                                     f"({max_positions}) at attempt {a + 2}: lower the attempts or max_new_tokens")
            ids_BF, mask_BF = left_pad(block, self.pad_token_id, self.device)
            logits_BV = extend(self.model, prefix, ids_BF, mask_BF)
        del prefix
        return episodes

    def _assemble(self, chunks, group_size) -> Rollout:
        """Right-pad the chunks to the longest completion and concatenate them."""
        length = max(c[0].shape[1] for c in chunks)

        def pad(x, value):
            return torch.nn.functional.pad(x, (0, length - x.shape[1]), value=value)

        ids_NT = torch.cat([pad(c[0], self.pad_token_id) for c in chunks])
        mask_NT = torch.cat([pad(c[1], False) for c in chunks])
        logp_NT = torch.cat([pad(c[2], 0.0) for c in chunks])
        finished_N = torch.cat([c[3] for c in chunks])
        prompt_index_N = torch.arange(ids_NT.shape[0]) // group_size
        return Rollout(
            prompt_index_N=prompt_index_N,
            completion_ids_NT=ids_NT,
            completion_mask_NT=mask_NT,
            logp_NT=logp_NT,
            finished_N=finished_N,
        )
