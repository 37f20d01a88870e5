"""The compiled form of the rules: checked templates and the expressions the engine evaluates."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.features import FeatureSpec
from crm_upsell_connector.rules.expressions import Expression
from crm_upsell_connector.rules.sections import (
    BlockingGuardrail,
    CrossSellRule,
    FactorConfig,
    Kind,
    ProductConfig,
    RetentionRule,
    UpgradeRule,
)


@dataclass(frozen=True)
class Template:
    """A ``$name`` template (``string.Template``) whose names were checked at load."""

    source: str
    names: tuple[str, ...]

    def render(self, values: Mapping[str, str]) -> str:
        return string.Template(self.source).safe_substitute(values)


@dataclass(frozen=True)
class CompiledRule:
    kind: Kind
    index: int
    key: str  # e.g. "upgrades[0]"
    config: UpgradeRule | CrossSellRule | RetentionRule
    when: Expression
    quantity: Expression | None
    reason: Template | None


@dataclass(frozen=True)
class CompiledRules:
    source: str
    schema: dict[str, FeatureSpec]
    derived: list[tuple[str, Expression]]
    factors: list[tuple[FactorConfig, Expression]]
    utilization: Expression | None
    tags: list[tuple[str, Expression]]
    rules: list[CompiledRule]
    guardrails: list[tuple[BlockingGuardrail, Expression]]
    subject: Template
    body: Template
    products: dict[str, ProductConfig] = field(default_factory=dict)
    families: dict[str, list[ProductConfig]] = field(default_factory=dict)


def template(source: str, *, file: str, key: str, known: Mapping[str, Any], what: str = "name") -> Template:
    template = string.Template(source)
    if not template.is_valid():
        raise ConfigError(f"{file}: {key}: invalid template: a lone '$' (write '$$' for a dollar sign)")
    names = tuple(dict.fromkeys(template.get_identifiers()))
    for name in names:
        if name not in known:
            raise ConfigError(f"{file}: {key}: unknown {what} '${name}'; known: {', '.join(sorted(known))}")
    return Template(source, names)
