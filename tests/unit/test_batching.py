import pytest
import torch

from reweightlab.data.store import SequenceStore, completion_to_targets, microbatches


def _store():
    prompts = [[1, 5, 6], [1, 7], [1, 8, 9, 10]]
    comps = [[20, 21, 2], [22, 2], [23, 24, 25, 26, 2]]
    return SequenceStore.from_lists(prompts, comps, pad_id=0, reward_N=[1.0, 2.0, 3.0])


def test_store_layout_and_masks():
    s = _store()
    assert s.ids_NL.shape == (3, 9)
    assert s.ids_NL[1].tolist() == [1, 7, 22, 2, 0, 0, 0, 0, 0]
    assert s.completion_tokens() == 3 + 2 + 5
    mbs = microbatches(s, 2)
    # sorted by length: sequence 1 (4 tokens), 0 (6), then 2 (9); each trimmed to its longest
    assert [mb.index_B.tolist() for mb in mbs] == [[1, 0], [2]]
    assert mbs[0].input_ids_BL.shape == (2, 6)
    # targets predicted at positions prompt_len-1 .. total_len-2 are the completion tokens
    mb = mbs[0]
    picked = mb.targets_BT[mb.mask_BT.bool()].tolist()
    assert picked == [22, 2, 20, 21, 2]
    assert mb.reward_B.tolist() == [2.0, 1.0]


def test_completion_to_targets_alignment():
    s = _store()
    vals = torch.tensor([[0.1, 0.2, 0.3, 0, 0], [0.4, 0.5, 0, 0, 0], [0.6, 0.7, 0.8, 0.9, 1.0]])
    mask = vals > 0
    out = completion_to_targets(vals, mask, s.prompt_len_N, s.ids_NL.shape[1])
    s = s.replace(logp_ref_NT=out)  # any target-aligned field
    for mb in microbatches(s, 3):
        got = mb.logp_ref_BT[mb.mask_BT.bool()]
        want = vals[mb.index_B][mask[mb.index_B]]
        assert torch.equal(got, want)


def test_from_rollout_joins_prompt_and_completion():
    from reweightlab.rollout import Rollout

    prompts = [[1, 5, 6], [1, 7]]
    comp = torch.tensor([[20, 2, 0], [21, 22, 2], [23, 0, 0], [24, 25, 26]])
    mask = comp != 0
    ro = Rollout(
        prompt_index_N=torch.tensor([0, 0, 1, 1]), completion_ids_NT=comp, completion_mask_NT=mask,
        logp_NT=torch.where(mask, -torch.rand(4, 3), torch.zeros(4, 3)), finished_N=torch.tensor([1, 1, 0, 0]).bool(),
    )
    s = SequenceStore.from_rollout(prompts, ro, pad_id=0)
    assert s.ids_NL[0, :5].tolist() == [1, 5, 6, 20, 2]
    assert s.ids_NL[2, :3].tolist() == [1, 7, 23] and s.total_len_N[2] == 3
    assert s.ids_NL[3].tolist() == [1, 7, 24, 25, 26, 0]
    for mb in microbatches(s, 4):
        got = mb.logp_sampler_BT[mb.mask_BT.bool()]
        want = ro.logp_NT[mb.index_B][mask[mb.index_B]]
        assert torch.equal(got, want)


def test_concat_pads_ids_and_target_fields_and_keeps_rows():
    a = SequenceStore.from_lists([[1, 2]], [[3]], pad_id=0, reward_N=[1.0])
    a = a.replace(logp_ref_NT=torch.tensor([[0.0, -0.5]], dtype=torch.float64))
    b = SequenceStore.from_lists([[4], [5, 6, 7]], [[8, 9, 10], [11]], pad_id=0, reward_N=[2.0, 3.0])
    b = b.replace(logp_ref_NT=torch.tensor([[-0.1, -0.2, -0.3], [0.0, 0.0, -0.4]], dtype=torch.float64))
    c = SequenceStore.concat([a, b], pad_id=0)
    assert c.ids_NL.tolist() == [[1, 2, 3, 0], [4, 8, 9, 10], [5, 6, 7, 11]]
    assert c.prompt_len_N.tolist() == [2, 1, 3] and c.total_len_N.tolist() == [3, 4, 4]
    assert c.reward_N.tolist() == [1.0, 2.0, 3.0]
    assert c.logp_ref_NT.tolist() == [[0.0, -0.5, 0.0], [-0.1, -0.2, -0.3], [0.0, 0.0, -0.4]]
    with pytest.raises(ValueError, match="fields"):
        SequenceStore.concat([a, SequenceStore.from_lists([[1]], [[2]], pad_id=0)], pad_id=0)


def _brute_force_cost(lengths, cap, overhead):
    """The least cost over every split of ascending ``lengths`` into consecutive buckets of <= cap."""
    import itertools

    n, best = len(lengths), float("inf")
    for mask in itertools.product([0, 1], repeat=n - 1):
        ends = [i + 1 for i, m in enumerate(mask) if m] + [n]
        starts = [0, *ends[:-1]]
        if any(e - s > cap for s, e in zip(starts, ends, strict=True)):
            continue
        best = min(best, sum(overhead + (e - s) * lengths[e - 1] for s, e in zip(starts, ends, strict=True)))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_length_buckets_are_the_cheapest_split(seed):
    from reweightlab.data.store import length_buckets

    gen = torch.Generator().manual_seed(seed)
    lengths = sorted(torch.randint(5, 200, (10,), generator=gen).tolist())
    cap, overhead = 4 if seed % 2 else 10, [0, 40, 300][seed % 3]
    ends = length_buckets(lengths, cap, overhead)
    starts = [0, *ends[:-1]]
    assert ends[-1] == len(lengths) and all(0 < e - s <= cap for s, e in zip(starts, ends, strict=True))
    cost = sum(overhead + (e - s) * lengths[e - 1] for s, e in zip(starts, ends, strict=True))
    assert cost == _brute_force_cost(lengths, cap, overhead)


def test_length_buckets_keep_similar_lengths_together():
    from reweightlab.data.store import length_buckets

    # 6 short sequences and 2 long: the long ones alone, unless a bucket costs more than their padding saves
    lengths = [30] * 6 + [140] * 2
    assert length_buckets(lengths, 8, 100) == [6, 8]
    assert length_buckets(lengths, 8, 10_000) == [8]
    assert length_buckets(lengths, 3, 0) in ([3, 6, 8], [2, 4, 6, 8], [1, 3, 6, 8])  # any split into same lengths
    assert length_buckets([7], 8, 100) == [1]


def test_bucketed_microbatches_cover_every_sequence_once_with_its_masks():
    from reweightlab.data.store import MICROBATCH_OVERHEAD_TOKENS

    # 30 short sequences padded to 44 would cost 30 x 40 padded tokens, more than a second micro-batch
    assert 30 * 40 > MICROBATCH_OVERHEAD_TOKENS
    prompts = [[1, 5]] * 30 + [[1, 7, 8]] * 2
    comps = [[20, 2]] * 30 + [[21] * 40 + [2]] * 2
    s = SequenceStore.from_lists(prompts, comps, pad_id=0, reward_N=[float(i) for i in range(32)])
    plain, = microbatches(s, 32)
    mbs = microbatches(s, 32, bucketed=True)
    assert [mb.input_ids_BL.shape for mb in mbs] == [(30, 4), (2, 44)]  # trimmed: no short row padded to 44
    assert sorted(torch.cat([mb.index_B for mb in mbs]).tolist()) == list(range(32))
    assert [mb.input_ids_BL.shape for mb in microbatches(s.select(torch.arange(28, 32)), 32, bucketed=True)] == [
        (4, 44)]  # 2 short ones: their padding costs less than a micro-batch
    for mb in mbs:
        rows = [plain.index_B.tolist().index(i) for i in mb.index_B.tolist()]
        L = mb.input_ids_BL.shape[1]
        assert torch.equal(mb.input_ids_BL, plain.input_ids_BL[rows, :L])
        assert torch.equal(mb.mask_BT, plain.mask_BT[rows, : L - 1]) and plain.mask_BT[rows, L - 1:].sum() == 0
        assert torch.equal(mb.reward_B, plain.reward_B[rows])
