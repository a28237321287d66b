"""Pure tensor functions behind every reweightlab objective. Imports only torch and the
standard library; nothing here knows about configs, models or metric names."""

from .freeenergy import (
    boltzmann_target,
    free_energy,
    free_energy_from_samples,
    free_energy_gap,
    log_partition,
    optimal_free_energy,
    optimal_free_energy_from_samples,
)
from .kl import KL_ESTIMATORS, exact_kl, kl_estimate, sequence_kl_loss
from .logprobs import token_entropy, token_logprobs
from .objectives import clipped_surrogate, weighted_nll
from .passk import mean_pass_at_k, pass_at_k
from .reductions import REDUCTIONS, reduce_loss
from .weights import (
    IW_PRESETS,
    STD_SCALINGS,
    IWPreset,
    batch_baseline_advantages,
    ema_update_,
    group_advantages,
    importance_weights,
    leave_one_out_advantages,
    percentile_thresholds,
    quality_levels,
    quality_multiset_indices,
    rwr_weights,
    scale_to_count,
    threshold_weights,
    token_probability_weights,
    unit_weights,
)

__all__ = [
    "IW_PRESETS",
    "KL_ESTIMATORS",
    "REDUCTIONS",
    "STD_SCALINGS",
    "IWPreset",
    "batch_baseline_advantages",
    "boltzmann_target",
    "clipped_surrogate",
    "ema_update_",
    "exact_kl",
    "free_energy",
    "free_energy_from_samples",
    "free_energy_gap",
    "group_advantages",
    "importance_weights",
    "kl_estimate",
    "leave_one_out_advantages",
    "log_partition",
    "mean_pass_at_k",
    "optimal_free_energy",
    "optimal_free_energy_from_samples",
    "pass_at_k",
    "percentile_thresholds",
    "quality_levels",
    "quality_multiset_indices",
    "reduce_loss",
    "rwr_weights",
    "scale_to_count",
    "sequence_kl_loss",
    "threshold_weights",
    "token_entropy",
    "token_logprobs",
    "token_probability_weights",
    "unit_weights",
    "weighted_nll",
]
