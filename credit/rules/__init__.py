"""The credit rule engine (FEATURES.md C4): a small, safe expression language and rule sets.

Pure Python, no Django: the credit app stores rules and versions and calls these.

- `expr`: compile_condition / compile_expression -> Program; Program.evaluate(features)
- `ruleset`: Rule, RuleSet, compile_ruleset, evaluate_ruleset -> RuleSetResult, replay -> ReplayDiff
- `features`: DEFAULT_SCHEMA (the car-loan feature names and types)
- `functions`: FUNCTIONS, the whitelist registry
- `errors`: RuleError (RuleSyntaxError, RuleTypeError), RuleSetError, RuleDefinitionError
"""

from credit.rules.errors import (
    RuleDefinitionError,
    RuleError,
    RuleSetError,
    RuleSyntaxError,
    RuleTypeError,
)
from credit.rules.expr import Evaluation, Program, compile_condition, compile_expression
from credit.rules.features import DEFAULT_SCHEMA
from credit.rules.ruleset import (
    Rule,
    RuleSet,
    RuleSetResult,
    compile_ruleset,
    evaluate_ruleset,
    replay,
)
from credit.rules.types import FeatureSchema, Field

__all__ = [
    "DEFAULT_SCHEMA",
    "Evaluation",
    "FeatureSchema",
    "Field",
    "Program",
    "Rule",
    "RuleDefinitionError",
    "RuleError",
    "RuleSet",
    "RuleSetError",
    "RuleSetResult",
    "RuleSyntaxError",
    "RuleTypeError",
    "compile_condition",
    "compile_expression",
    "compile_ruleset",
    "evaluate_ruleset",
    "replay",
]
