"""The rule sections of ``config.toml`` as pydantic models, and their load-time compilation.

Sections: ``[features]``, ``[scoring]``, ``[segments]``, ``[[products]]``, ``[[upgrades]]``,
``[[cross_sell]]``, ``[[retention]]``, ``[guardrails]`` and ``[tasks]``. ``load_rules`` validates
them and compiles every expression and template once; a mistake raises ``ConfigError`` (shape) or
``RuleError`` (expression) naming the file, the key and, for expressions, the position.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from crm_upsell_connector.config_errors import describe_errors
from crm_upsell_connector.errors import ConfigError, RuleError
from crm_upsell_connector.features import FeaturesConfig, FeatureSpec, feature_schema
from crm_upsell_connector.rules.expressions import Expression, ResultType, compile_expression, sample_context
from crm_upsell_connector.rules.locale import TASK_BODY, TASK_SUBJECT, LocaleConfig, localise_task_templates

Kind = Literal["upgrade", "cross_sell", "retention"]
KINDS: tuple[Kind, ...] = ("upgrade", "cross_sell", "retention")
RULE_SECTIONS: tuple[str, ...] = (
    "features",
    "scoring",
    "segments",
    "products",
    "upgrades",
    "cross_sell",
    "retention",
    "guardrails",
    "tasks",
    "locale",
)

# Names the engine adds to the context as it goes: scoring first, then segment, then tags.
SCORE_NAMES: dict[str, FeatureSpec] = {
    "score": FeatureSpec("number", "the loyalty score, 0-100"),
    "utilization": FeatureSpec("number", "the utilization axis of the segment matrix"),
    "segment": FeatureSpec("string", "the cell of the loyalty x utilization matrix"),
    "loyalty_band": FeatureSpec("string", "the loyalty band (row of the matrix)"),
    "utilization_band": FeatureSpec("string", "the utilization band (column of the matrix)"),
}
TAG_NAMES: dict[str, FeatureSpec] = {"tags": FeatureSpec("list", "the account's tags")}
# Placeholders a task template can use (besides none other: templates never reach features).
TASK_PLACEHOLDERS: dict[str, str] = {
    "account_id": "the account's CRM id",
    "account_name": "the account's name",
    "owner_id": "the owner's CRM id",
    "owner_name": "the owner's name (the id where the store has no name)",
    "kind": "upgrade, cross_sell or retention",
    "kind_label": "Upgrade, Cross-sell or Retention",
    "product_sku": "the proposed product's SKU",
    "product_name": "the proposed product's name",
    "offer": "the rule's offer hint, or nothing",
    "uplift": "expected yearly revenue uplift, formatted with the currency",
    "score": "the loyalty score",
    "segment": "the segment's label ([locale.segments])",
    "tags": "the tags, comma-separated",
    "reason": "the reason in plain words",
    "facts": "the facts behind the reason in words, one per line",
    "rule": "the rule that produced the proposal",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- [[products]] -----------------------------------------------------------------------------


class ProductConfig(_Section):
    """One catalogue product; the catalogue is the truth for family, tier and price."""

    sku: str = Field(min_length=1)
    name: str = Field(min_length=1)
    family: str = Field(min_length=1)
    tier: int = Field(ge=1)
    unit_price: float = Field(ge=0)
    period: Literal["month", "year", "once"] = "month"
    per_seat: bool = False
    pitch: str = ""

    @property
    def periods_per_year(self) -> int:
        return 12 if self.period == "month" else 1


# ---- [scoring] --------------------------------------------------------------------------------


class Band(_Section):
    at_least: float
    score: float = Field(ge=0, le=1)


class FactorConfig(_Section):
    """A loyalty factor: an expression, how to bring it to 0..1, and its weight."""

    name: str = Field(min_length=1)
    expr: str = Field(min_length=1)
    weight: float = Field(gt=0)
    normalise: Literal["percentile", "minmax", "bands"] = "minmax"
    min: float | None = None
    max: float | None = None
    bands: list[Band] = Field(default_factory=list)
    invert: bool = False
    missing: float = Field(default=0.0, ge=0, le=1)
    description: str = ""

    @model_validator(mode="after")
    def _normalisation(self) -> FactorConfig:
        if self.normalise == "bands":
            if not self.bands:
                raise ValueError("normalise = 'bands' needs a non-empty bands list")
            bounds = [b.at_least for b in self.bands]
            if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
                raise ValueError("bands must be in ascending order of at_least, without repeats")
        elif self.bands:
            raise ValueError("bands only apply with normalise = 'bands'")
        if self.normalise == "minmax" and self.min is not None and self.max is not None:
            if self.min >= self.max:
                raise ValueError("min must be below max")
        elif self.normalise != "minmax" and (self.min is not None or self.max is not None):
            raise ValueError("min and max only apply with normalise = 'minmax'")
        return self


class ScoringConfig(_Section):
    factors: list[FactorConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ScoringConfig:
        names = [f.name for f in self.factors]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"factor name {name!r} is used twice")
        return self


# ---- [segments] -------------------------------------------------------------------------------


class SegmentsConfig(_Section):
    """The loyalty x utilization matrix and the tag conditions."""

    utilization: str | None = None
    loyalty_thresholds: list[float] = Field(default_factory=lambda: [40.0, 70.0])
    utilization_thresholds: list[float] = Field(default_factory=lambda: [0.5, 0.85])
    loyalty_bands: list[str] = Field(default_factory=lambda: ["low", "mid", "high"])
    utilization_bands: list[str] = Field(default_factory=lambda: ["low", "mid", "high"])
    cells: list[list[str]] = Field(
        default_factory=lambda: [
            ["at_risk", "nurture", "nurture"],
            ["activate", "develop", "expand"],
            ["activate", "loyal", "champion"],
        ]
    )
    missing_utilization: str = "unmeasured"
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self) -> SegmentsConfig:
        for key in ("loyalty_thresholds", "utilization_thresholds"):
            values: list[float] = getattr(self, key)
            if values != sorted(values) or len(set(values)) != len(values):
                raise ValueError(f"{key} must be strictly ascending")
        rows, columns = len(self.loyalty_thresholds) + 1, len(self.utilization_thresholds) + 1
        if len(self.loyalty_bands) != rows:
            raise ValueError(f"loyalty_bands needs {rows} names (one more than loyalty_thresholds)")
        if len(self.utilization_bands) != columns:
            raise ValueError(
                f"utilization_bands needs {columns} names (one more than utilization_thresholds)"
            )
        if len(self.cells) != rows or any(len(row) != columns for row in self.cells):
            raise ValueError(
                f"cells must be {rows} rows (loyalty, low to high) of {columns} names "
                "(utilization, low to high)"
            )
        return self


# ---- [[upgrades]], [[cross_sell]], [[retention]] ------------------------------------------------


class _Rule(_Section):
    name: str = Field(min_length=1)
    when: str = Field(min_length=1)
    priority: int = 100
    quantity: str | None = None
    offer: str | None = None
    reason: str | None = None


class UpgradeRule(_Rule):
    """A higher tier in a family the account owns: a named ``product`` or the next tier of ``family``."""

    family: str | None = None
    product: str | None = None

    @model_validator(mode="after")
    def _target(self) -> UpgradeRule:
        if (self.family is None) == (self.product is None):
            raise ValueError("give exactly one of family (next tier up) or product")
        return self


class CrossSellRule(_Rule):
    """A product of a family the account does not own yet."""

    product: str = Field(min_length=1)


class RetentionRule(_Rule):
    """A save or a downsell; ``product`` is optional (a lower tier of an owned family is a downsell)."""

    product: str | None = None


# ---- [guardrails] -----------------------------------------------------------------------------


class BlockingGuardrail(_Section):
    name: str = Field(min_length=1)
    when: str = Field(min_length=1)
    reason: str = ""
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS))


class GuardrailsConfig(_Section):
    block: list[BlockingGuardrail] = Field(default_factory=list)
    cooldown_days: float = Field(default=90.0, ge=0)
    max_open_upsell_tasks: int = Field(default=1, ge=1)
    open_deal_blocks: Literal["family", "account", "off"] = "family"
    max_new_tasks_per_owner_per_week: int | None = Field(default=10, ge=0)


# ---- [tasks] ----------------------------------------------------------------------------------


class PriorityBand(_Section):
    min_score: float
    priority: Literal["high", "medium", "low"]


class TasksConfig(_Section):
    subject: str = TASK_SUBJECT["en"]
    body: str = TASK_BODY["en"]
    due_in_days: int = Field(default=7, ge=0)
    priority: list[PriorityBand] = Field(
        default_factory=lambda: [
            PriorityBand(min_score=80, priority="high"),
            PriorityBand(min_score=60, priority="medium"),
        ]
    )
    default_priority: Literal["high", "medium", "low"] = "low"
    #: ISO 4217 code shown with amounts (uplift); unset = the org's home currency as the CRM reports
    #: it (``crm_upsell_connector.currency``). Set it only to override what the CRM says.
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")


# ---- the whole --------------------------------------------------------------------------------


class RulesConfig(_Section):
    """Every rule section of ``config.toml``; ``load_rules`` also compiles it."""

    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    segments: SegmentsConfig = Field(default_factory=SegmentsConfig)
    products: list[ProductConfig] = Field(default_factory=list)
    upgrades: list[UpgradeRule] = Field(default_factory=list)
    cross_sell: list[CrossSellRule] = Field(default_factory=list)
    retention: list[RetentionRule] = Field(default_factory=list)
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    tasks: TasksConfig = Field(default_factory=TasksConfig)
    locale: LocaleConfig = Field(default_factory=LocaleConfig)

    _compiled: CompiledRules | None = PrivateAttr(default=None)
    #: features other sections add (``[[usage.sources]]`` metrics), set by ``load_rules``.
    _extra_features: dict[str, FeatureSpec] = PrivateAttr(default_factory=dict)

    @property
    def compiled(self) -> CompiledRules:
        """The compiled expressions (compiling on first use with ``<config>`` as the file name)."""
        if self._compiled is None:
            self._compiled = compile_rules(self, "<config>")
        return self._compiled

    def product(self, sku: str) -> ProductConfig | None:
        return next((p for p in self.products if p.sku == sku), None)


# ---- compiled form ----------------------------------------------------------------------------


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


def compile_rules(rules: RulesConfig, source: str) -> CompiledRules:
    """Compile and cross-check every expression, reference and template of ``rules``."""
    reserved = set(SCORE_NAMES) | set(TAG_NAMES)
    for section in ("fields", "derived"):
        for name in getattr(rules.features, section):
            if name in reserved:
                raise ConfigError(f"{source}: features.{section}.{name}: {name!r} is a name the engine sets")

    products: dict[str, ProductConfig] = {}
    families: dict[str, list[ProductConfig]] = {}
    for i, product in enumerate(rules.products):
        if product.sku in products:
            raise ConfigError(f"{source}: products[{i}].sku: {product.sku!r} is listed twice")
        products[product.sku] = product
        families.setdefault(product.family, []).append(product)
    for members in families.values():
        members.sort(key=lambda p: (p.tier, p.sku))
    map_keys = list(families) or ["x"]

    def compile_in(text: str, key: str, names: Mapping[str, FeatureSpec], result: ResultType) -> Expression:
        return compile_expression(
            text,
            file=source,
            key=key,
            schema=names,
            sample=sample_context(names, map_keys),
            result=result,
        )

    for name in rules._extra_features:
        if name in reserved:
            raise ConfigError(
                f"{source}: usage.sources: {name!r} is a name the engine sets; rename the metric"
            )
        if name in rules.features.fields or name in rules.features.derived:
            raise ConfigError(f"{source}: features: {name!r} is also a usage metric or trend; rename one")
    schema = {**feature_schema(rules.features), **rules._extra_features}
    base = {n: s for n, s in schema.items() if n not in rules.features.derived}
    derived: list[tuple[str, Expression]] = []
    names = dict(base)
    for name, spec in rules.features.derived.items():
        result: ResultType = "bool" if spec.type == "bool" else ("number" if spec.type == "number" else "any")
        derived.append((name, compile_in(spec.expr, f"features.derived.{name}.expr", names, result)))
        names[name] = FeatureSpec(spec.type, spec.description or f"computed: {spec.expr}")
    features = dict(names)

    factors = [
        (f, compile_in(f.expr, f"scoring.factors[{i}].expr", features, "number"))
        for i, f in enumerate(rules.scoring.factors)
    ]
    utilization = (
        compile_in(rules.segments.utilization, "segments.utilization", features, "number")
        if rules.segments.utilization
        else None
    )
    scored = {**features, **SCORE_NAMES}
    tags = [
        (name, compile_in(text, f"segments.tags.{key_text(name)}", scored, "bool"))
        for name, text in rules.segments.tags.items()
    ]
    full = {**scored, **TAG_NAMES}

    compiled_rules: list[CompiledRule] = []
    seen: dict[str, str] = {}
    sections: list[tuple[Kind, str, list[Any]]] = [
        ("upgrade", "upgrades", list(rules.upgrades)),
        ("cross_sell", "cross_sell", list(rules.cross_sell)),
        ("retention", "retention", list(rules.retention)),
    ]
    for kind, section, items in sections:
        for i, rule in enumerate(items):
            key = f"{section}[{i}]"
            if rule.name in seen:
                raise ConfigError(f"{source}: {key}.name: {rule.name!r} is already used by {seen[rule.name]}")
            seen[rule.name] = key
            _check_target(rule, kind, key, source, products, families)
            compiled_rules.append(
                CompiledRule(
                    kind=kind,
                    index=i,
                    key=key,
                    config=rule,
                    when=compile_in(rule.when, f"{key}.when", full, "bool"),
                    quantity=(
                        compile_in(rule.quantity, f"{key}.quantity", full, "number")
                        if rule.quantity
                        else None
                    ),
                    reason=(
                        template(rule.reason, file=source, key=f"{key}.reason", known=full, what="feature")
                        if rule.reason
                        else None
                    ),
                )
            )

    guardrails: list[tuple[BlockingGuardrail, Expression]] = []
    for i, guard in enumerate(rules.guardrails.block):
        key = f"guardrails.block[{i}]"
        if guard.name in seen or guard.name in _BUILTIN_GUARDRAILS:
            raise ConfigError(f"{source}: {key}.name: {guard.name!r} is already used")
        seen[guard.name] = key
        guardrails.append((guard, compile_in(guard.when, f"{key}.when", full, "bool")))

    return CompiledRules(
        source=source,
        schema=full,
        derived=derived,
        factors=factors,
        utilization=utilization,
        tags=tags,
        rules=compiled_rules,
        guardrails=guardrails,
        subject=template(rules.tasks.subject, file=source, key="tasks.subject", known=TASK_PLACEHOLDERS),
        body=template(rules.tasks.body, file=source, key="tasks.body", known=TASK_PLACEHOLDERS),
        products=products,
        families=families,
    )


_BUILTIN_GUARDRAILS = frozenset({"cooldown", "open_upsell_task", "open_deal", "owner_weekly_cap"})


def _check_target(
    rule: UpgradeRule | CrossSellRule | RetentionRule,
    kind: Kind,
    key: str,
    source: str,
    products: Mapping[str, ProductConfig],
    families: Mapping[str, list[ProductConfig]],
) -> None:
    if isinstance(rule, UpgradeRule) and rule.family is not None:
        members = families.get(rule.family)
        if members is None:
            raise ConfigError(
                f"{source}: {key}.family: no product of family {rule.family!r} in [[products]]; "
                f"families: {', '.join(key_text(f) for f in sorted(families)) or 'none'}"
            )
        if len(members) < 2:
            raise ConfigError(f"{source}: {key}.family: family {rule.family!r} has only one tier")
        return
    sku = rule.product
    if sku is None:
        return
    product = products.get(sku)
    if product is None:
        raise ConfigError(
            f"{source}: {key}.product: unknown SKU {sku!r}; products: {', '.join(key_text(p) for p in products) or 'none'}"
        )
    if kind == "upgrade" and product.tier == min(p.tier for p in families[product.family]):
        raise ConfigError(f"{source}: {key}.product: {sku!r} is the lowest tier of {product.family!r}")


def key_text(part: str) -> str:
    """A key as a message shows it: as written, or quoted when blank or not printable (a newline)."""
    return part if part.isprintable() and part.strip() else repr(part)


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
    "BlockingGuardrail",
    "CompiledRule",
    "CompiledRules",
    "ConfigError",
    "CrossSellRule",
    "FactorConfig",
    "GuardrailsConfig",
    "Kind",
    "ProductConfig",
    "RetentionRule",
    "RuleError",
    "RulesConfig",
    "ScoringConfig",
    "SegmentsConfig",
    "TasksConfig",
    "UpgradeRule",
    "load_rules",
]
