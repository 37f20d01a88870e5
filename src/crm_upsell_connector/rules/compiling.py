"""Compiling the rule sections: every expression, reference and template compiled and
cross-checked once, at load; a mistake raises ``ConfigError`` or ``RuleError`` naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.features import FeatureSpec, feature_schema
from crm_upsell_connector.rules.compiled import CompiledRule, CompiledRules, template
from crm_upsell_connector.rules.expressions import Expression, ResultType, compile_expression, sample_context
from crm_upsell_connector.rules.sections import (
    SCORE_NAMES,
    TAG_NAMES,
    TASK_PLACEHOLDERS,
    BlockingGuardrail,
    CrossSellRule,
    Kind,
    ProductConfig,
    RetentionRule,
    RulesConfig,
    UpgradeRule,
)


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
