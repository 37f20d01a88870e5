"""The rule sections of ``config.toml`` as pydantic models (unknown keys rejected), and the names
the engine and the task templates know besides the features.

Compiling them is :mod:`.compiling`'s job; loading them from a parsed file is :mod:`.config`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from crm_upsell_connector.features import FeaturesConfig, FeatureSpec
from crm_upsell_connector.rules.locale import TASK_BODY, TASK_SUBJECT, LocaleConfig

if TYPE_CHECKING:
    from crm_upsell_connector.rules.compiled import CompiledRules

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
            from crm_upsell_connector.rules.compiling import compile_rules

            self._compiled = compile_rules(self, "<config>")
        return self._compiled

    def product(self, sku: str) -> ProductConfig | None:
        return next((p for p in self.products if p.sku == sku), None)
