"""Expert iteration on search (search_sft): SFT on verified successes, some found by search.

The reference is sampled on the training prompts (data.base_samples_per_prompt each); for the prompts
where no sample succeeded, the verifier-guided search (rollout/search.py, budget ``search.*``) looks
for a success in the reference's own distribution; SFT then trains on every sampled success and
every success the search found. Only verified successes enter the data. Unlike the reweightings of
sampled data, the search can add completions that sampling at this budget would not have reached:
the free-energy paper's "SFT on search-generated samples".
"""

from reweightlab.algos.method import Method
from reweightlab.algos.sft import keep_all, token_weights

METHOD = Method(
    name="search_sft",
    summary="expert iteration on search: SFT on sampled successes plus the successes the verifier-guided "
            "search finds on prompts sampling did not solve",
    source="search", needs_scores=True, needs_reference=False, settings=("search",),
    prepare=keep_all, token_weights=token_weights,
)
