"""The cached-forward primitive (models/forward.py): left-padded prefill, reorder, extend, each equal
to a plain forward of every row's own unpadded sequence."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from reweightlab.models.forward import extend, left_pad, prefill

PAD = 0
PROMPTS = [[1, 5, 6, 7, 8], [1, 9], [1, 10, 11]]  # different lengths: padding and positions matter


def _model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=30, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # large weights: a wrong position or mask changes the logits visibly
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(4.0)
    return model.eval()


def _plain(model, ids: list[int]) -> torch.Tensor:
    """Float32 logits of every position of one unpadded sequence, no cache."""
    return model(input_ids=torch.tensor([ids])).logits[0].float()


@torch.inference_mode()
def test_prefill_reorder_extend_equal_plain_forwards():
    model = _model()
    ids_PL, mask_PL = left_pad(PROMPTS, PAD, "cpu")
    assert mask_PL.dtype == torch.bool and mask_PL.sum(-1).tolist() == [5, 2, 3]
    assert (ids_PL[~mask_PL] == PAD).all() and ids_PL[1, -2:].tolist() == [1, 9]
    logits_PV, prefix = prefill(model, ids_PL, mask_PL)
    assert logits_PV.shape == (3, 30) and logits_PV.dtype == torch.float32
    for p, prompt in enumerate(PROMPTS):
        torch.testing.assert_close(logits_PV[p], _plain(model, prompt)[-1], atol=1e-4, rtol=0)
    assert prefix.next_position_B.tolist() == [5, 2, 3]

    # Rows: prompt 2 twice, then prompt 0 (a repeating, reordering index that changes B).
    index_B = torch.tensor([2, 2, 0])
    prefix.reorder(index_B)
    assert prefix.next_position_B.tolist() == [3, 3, 5]
    fed = [[12, 13], [14, 15], [16, 17]]
    logits_BV = extend(model, prefix, torch.tensor(fed)[:, :1])  # a decode step, T = 1
    logits_BTV = extend(model, prefix, torch.tensor(fed)[:, 1:], last_only=False)  # T = 1, every position
    assert logits_BV.shape == (3, 30) and logits_BTV.shape == (3, 1, 30)
    assert prefix.next_position_B.tolist() == [5, 5, 7] and prefix.mask_BS.shape == (3, 7)
    for b, (p, toks) in enumerate(zip(index_B.tolist(), fed, strict=True)):
        want = _plain(model, PROMPTS[p] + toks)
        torch.testing.assert_close(logits_BV[b], want[-2], atol=1e-4, rtol=0)
        torch.testing.assert_close(logits_BTV[b, 0], want[-1], atol=1e-4, rtol=0)


@torch.inference_mode()
def test_extend_several_tokens_right_padded():
    """T > 1 at once (the likelihood estimator's completions): each real position equals the plain
    forward, and the padding's mask is kept (a later column would not attend to it)."""
    model = _model()
    _, prefix = prefill(model, *left_pad(PROMPTS[:2], PAD, "cpu"))
    ids_BT = torch.tensor([[20, 21, 22], [23, PAD, PAD]])
    mask_BT = torch.tensor([[True, True, True], [True, False, False]])
    logits_BTV = extend(model, prefix, ids_BT, mask_BT, last_only=False)
    assert logits_BTV.shape == (2, 3, 30)
    torch.testing.assert_close(logits_BTV[0], _plain(model, PROMPTS[0] + [20, 21, 22])[-3:], atol=1e-4, rtol=0)
    torch.testing.assert_close(logits_BTV[1, 0], _plain(model, PROMPTS[1] + [23])[-1], atol=1e-4, rtol=0)
    assert prefix.mask_BS.tolist() == [[1] * 8, [0, 0, 0, 1, 1, 1, 0, 0]]
    assert prefix.next_position_B.tolist() == [8, 3]  # positions count the real tokens only


@torch.inference_mode()
def test_extend_a_left_padded_block_after_masked_steps():
    """A revision episode's feed: decode steps where a row was already done (masked pad), then a
    left-padded block of feedback; every real position equals the plain forward of the real tokens."""
    model = _model()
    _, prefix = prefill(model, *left_pad(PROMPTS[:2], PAD, "cpu"))
    extend(model, prefix, torch.tensor([[20], [21]]), torch.tensor([[True], [True]]))
    extend(model, prefix, torch.tensor([[22], [PAD]]), torch.tensor([[True], [False]]))  # row 1 is done
    block = torch.tensor([[24, 25, 26], [PAD, PAD, 27]])
    logits_BV = extend(model, prefix, block, block != PAD)
    torch.testing.assert_close(logits_BV[0], _plain(model, PROMPTS[0] + [20, 22, 24, 25, 26])[-1], atol=1e-4, rtol=0)
    torch.testing.assert_close(logits_BV[1], _plain(model, PROMPTS[1] + [21, 27])[-1], atol=1e-4, rtol=0)
    assert prefix.next_position_B.tolist() == [len(PROMPTS[0]) + 5, len(PROMPTS[1]) + 2]
