"""Step 5 of the rule pass: whether a matching rule applies to the account, with which product,
quantity and expected uplift (see :mod:`.engine` for the formula)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_upsell_connector.rules.config import CompiledRule, ProductConfig
from crm_upsell_connector.rules.drafts import EngineState, _Candidate
from crm_upsell_connector.rules.result import format_value


class CandidatesMixin(EngineState):
    """``_candidate`` and what it needs: the quantity and the product owned in a family."""

    def _candidate(self, rule: CompiledRule, context: Mapping[str, Any]) -> tuple[_Candidate | None, str]:
        compiled = self.compiled
        owned_tiers: Mapping[str, float] = context.get("owned_tiers") or {}
        config = rule.config
        sku = getattr(config, "product", None)
        product = compiled.products[sku] if sku else None
        if rule.kind == "upgrade":
            family = product.family if product else getattr(config, "family", None)
            assert family is not None
            owned = owned_tiers.get(family)
            if owned is None:
                return None, f"does not own a {family} product"
            if product is None:
                product = next((p for p in compiled.families[family] if p.tier > owned), None)
                if product is None:
                    return None, f"already on the top {family} tier"
            elif product.tier <= owned:
                return None, f"already owns {family} tier {format_value(owned)}"
        elif rule.kind == "cross_sell":
            assert product is not None
            if product.family in owned_tiers:
                return None, f"already owns a {product.family} product"
        elif product is not None:
            owned = owned_tiers.get(product.family)
            if owned is not None and product.tier >= owned:
                return None, f"{product.sku} is not below the {product.family} tier owned"
        if product is None:
            return _Candidate(rule, None, 0.0, 0.0), ""
        quantity = self._quantity(rule, product, context)
        current = self._owned_product(product.family, context)
        current_annual = current.unit_price * current.periods_per_year if current else 0.0
        uplift = quantity * (product.unit_price * product.periods_per_year - current_annual)
        return _Candidate(rule, product, round(uplift, 2), quantity), ""

    def _quantity(self, rule: CompiledRule, product: ProductConfig, context: Mapping[str, Any]) -> float:
        if not product.per_seat:
            return 1.0
        if rule.quantity is not None:
            value = rule.quantity.evaluate(context).value
            if isinstance(value, float) and value > 0:
                return value
        owned_quantity: Mapping[str, float] = context.get("owned_quantity") or {}
        owned = owned_quantity.get(product.family)
        return owned if owned is not None and owned > 0 else 1.0

    def _owned_product(self, family: str, context: Mapping[str, Any]) -> ProductConfig | None:
        owned_products: Mapping[str, str] = context.get("owned_products") or {}
        sku = owned_products.get(family)
        if sku is not None and sku in self.compiled.products:
            return self.compiled.products[sku]
        tier = (context.get("owned_tiers") or {}).get(family)
        members = self.compiled.families.get(family, [])
        return next((p for p in members if p.tier == tier), None)
