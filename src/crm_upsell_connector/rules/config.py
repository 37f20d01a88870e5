"""Loading the rule sections of ``config.toml``: validate them, then compile them (``load_rules``).

The models live in :mod:`.sections`, the compiled form in :mod:`.compiled`, the compilation in
:mod:`.compiling`; their public names stay importable from here.

Sections: ``[features]``, ``[scoring]``, ``[segments]``, ``[[products]]``, ``[[upgrades]]``,
``[[cross_sell]]``, ``[[retention]]``, ``[guardrails]`` and ``[tasks]``. ``load_rules`` validates
them and compiles every expression and template once; a mistake raises ``ConfigError`` (shape) or
``RuleError`` (expression) naming the file, the key and, for expressions, the position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from crm_upsell_connector.config_errors import describe_errors
from crm_upsell_connector.errors import ConfigError, RuleError
from crm_upsell_connector.features import FeatureSpec
from crm_upsell_connector.rules.compiled import CompiledRule, CompiledRules, Template, template
from crm_upsell_connector.rules.compiling import compile_rules, key_text
from crm_upsell_connector.rules.locale import localise_task_templates
from crm_upsell_connector.rules.sections import (
    KINDS,
    RULE_SECTIONS,
    SCORE_NAMES,
    TAG_NAMES,
    TASK_PLACEHOLDERS,
    Band,
    BlockingGuardrail,
    CrossSellRule,
    FactorConfig,
    GuardrailsConfig,
    Kind,
    PriorityBand,
    ProductConfig,
    RetentionRule,
    RulesConfig,
    ScoringConfig,
    SegmentsConfig,
    TasksConfig,
    UpgradeRule,
)


def _format_location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{key_text(part)}" if text else key_text(part)
    return text


def load_rules(
    data: Mapping[str, Any], source: str, extra_features: Mapping[str, FeatureSpec] | None = None
) -> RulesConfig:
    """Validate and compile the rule sections of a parsed ``config.toml`` (other sections ignored).

    ``extra_features`` are features other sections provide (usage metrics), known to expressions.

    Raises ``ConfigError`` for a wrong shape or reference and ``RuleError`` for an expression,
    each naming ``source``, the key and what is wrong.
    """
    subset = {key: data[key] for key in RULE_SECTIONS if key in data}
    try:
        rules = RulesConfig.model_validate(subset)
    except ValidationError as exc:
        lines = describe_errors(source, exc, RulesConfig)
        raise ConfigError("; ".join(lines), problems=tuple(lines)) from None
    rules._extra_features = dict(extra_features or {})
    localise_task_templates(rules)
    rules._compiled = compile_rules(rules, source)
    return rules


__all__ = [
    "KINDS",
    "RULE_SECTIONS",
    "SCORE_NAMES",
    "TAG_NAMES",
    "TASK_PLACEHOLDERS",
    "Band",
    "BlockingGuardrail",
    "CompiledRule",
    "CompiledRules",
    "ConfigError",
    "CrossSellRule",
    "FactorConfig",
    "GuardrailsConfig",
    "Kind",
    "PriorityBand",
    "ProductConfig",
    "RetentionRule",
    "RuleError",
    "RulesConfig",
    "ScoringConfig",
    "SegmentsConfig",
    "TasksConfig",
    "Template",
    "UpgradeRule",
    "compile_rules",
    "key_text",
    "load_rules",
    "template",
]
