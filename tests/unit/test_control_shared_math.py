"""The language-model methods and the control methods run the very same reweightlab.math code.

Calls are recorded with a profiler hook on the functions' code objects, so nothing is patched: a copy
of a weight function anywhere else (same name, other module) would not be counted."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import torch

from reweightlab.math import weights as W

SHARED = {f.__code__: f.__name__ for f in (W.threshold_weights, W.quality_levels, W.quality_multiset_indices,
                                             W.importance_weights)}
# iw-SFT's EMA update of q and its "self-normalised, times N" rescale (train/loop.py, algos/iw_sft.py)
TWINS = {f.__code__: f.__name__ for f in (W.ema_update_, W.scale_to_count)}


class _Record:
    def __init__(self, codes=SHARED):
        self.codes = codes
        self.called: set[str] = set()

    def __enter__(self):
        def hook(frame, event, arg):
            if event == "call" and frame.f_code in self.codes:
                self.called.add(self.codes[frame.f_code])
        self._old = sys.getprofile()
        sys.setprofile(hook)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._old)


class _Store:
    """The two things the LM methods' data preparation uses: reward_N and select()."""

    def __init__(self, reward_N):
        self.reward_N = reward_N

    def select(self, idx):
        return _Store(self.reward_N[idx])


def _lm_step():
    from reweightlab.algos import filtered_sft, iw_sft, sft_q

    store = _Store(torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]))
    filtered_sft.keep_filtered(store, 2.0)
    sft_q.apply_quality(store, (1.0, 2.0, 3.0), "multiplicity")
    mb = SimpleNamespace(logp_ref_BT=-torch.rand(2, 4), mask_BT=torch.ones(2, 4), step_weight_B=None, weight_B=None)
    ctx = SimpleNamespace(offline=SimpleNamespace(iw_preset="llm"))
    iw_sft.token_weights(-torch.rand(2, 4), mb, ctx)


def _control_step():
    from reweightlab.control.dataset import Trajectories
    from reweightlab.control.train import EpisodeTable, TrainSettings, all_log_probs, new_policy, train_method

    rng = np.random.default_rng(0)
    n, lengths = 60, [6] * 10
    start = np.zeros(n, bool)
    start[::6] = True
    table = EpisodeTable(Trajectories(rng.standard_normal((n, 3)).astype(np.float32),
                                      rng.uniform(-2, 2, (n, 1)).astype(np.float32),
                                      rng.standard_normal(n).astype(np.float32), np.zeros(n, bool),
                                      np.zeros(n, bool), start))
    assert table.len_E.tolist() == lengths
    s = TrainSettings(steps=1, trajectories_per_step=4, transitions_per_step=8, hidden=8)
    bc, _ = train_method("bc", table, s, 0, new_policy(table, [-2.0], [2.0], 8, 0))
    ref = all_log_probs(bc, table)
    for m in ("sft", "sft_q", "iw_sft_q"):
        train_method(m, table, s, 0, bc, logp_ref_N=ref)


def test_lm_and_control_paths_call_the_same_math_functions():
    with _Record() as lm:
        _lm_step()
    with _Record() as control:
        _control_step()
    assert lm.called == set(SHARED.values())
    assert control.called == set(SHARED.values())


def test_control_iw_sft_q_updates_q_and_rescales_with_the_lm_functions():
    with _Record(TWINS) as control:
        _control_step()
    assert control.called == set(TWINS.values())


def test_control_uses_the_control_preset_of_the_shared_table():
    from reweightlab.control import train

    assert train.TrainSettings().iw_preset == "control"
    assert train.rmath.IW_PRESETS is W.IW_PRESETS
    p = W.IW_PRESETS["control"]
    assert (p.temp, p.clip_min, p.clip_max, p.self_normalise, p.q, p.ema_decay) == (10.0, 0.0, 1000.0, True, "ema", 0.9)
