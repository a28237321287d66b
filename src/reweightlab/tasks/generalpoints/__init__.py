"""GeneralPoints: the card task and everything only it needs.

- ``task``: cards and rules, prompts, dealing and splits, the ``GeneralPoints`` task, and the
  accessors of a problem's hand (``cards_of``, ``values_of``, ``target_of``);
- ``verify``: the reward table's verifier and the prefix check (its partial form, for the probe's
  search), both on ``arith``'s grammar;
- ``arith``: exact arithmetic over card expressions (scanner, parser, evaluator, canonical form,
  solver).

The names below are the package's public surface: ``from reweightlab.tasks.generalpoints import X``.
"""

from reweightlab.tasks.generalpoints import arith
from reweightlab.tasks.generalpoints.arith import canonical, evaluate, random_expression, solvable, solve
from reweightlab.tasks.generalpoints.task import (
    FACES,
    OTHER_RULE,
    RANKS,
    RULE_TEXT,
    RULES,
    GeneralPoints,
    card_values,
    cards_of,
    hand_split,
    render_prompt,
    target_of,
    value_split,
    values_of,
)
from reweightlab.tasks.generalpoints.verify import (
    REWARD_CORRECT,
    REWARD_ILLEGAL,
    REWARD_WRONG_NUMBERS,
    REWARD_WRONG_VALUE,
    expression_prefix_feasible,
    verify_expression,
)

__all__ = [
    "FACES",
    "OTHER_RULE",
    "RANKS",
    "REWARD_CORRECT",
    "REWARD_ILLEGAL",
    "REWARD_WRONG_NUMBERS",
    "REWARD_WRONG_VALUE",
    "RULES",
    "RULE_TEXT",
    "GeneralPoints",
    "arith",
    "canonical",
    "card_values",
    "cards_of",
    "evaluate",
    "expression_prefix_feasible",
    "hand_split",
    "random_expression",
    "render_prompt",
    "solvable",
    "solve",
    "target_of",
    "value_split",
    "values_of",
    "verify_expression",
]
