"""The feature schema (names, types, meanings) and the ``[features]`` configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

FeatureType = Literal["number", "string", "bool", "list", "map"]
MappedType = Literal["number", "string", "bool", "date"]

ACTIVITY_KINDS: tuple[str, ...] = ("call", "meeting", "email", "note")
WINDOWS: tuple[int, ...] = (30, 90, 365)
#: complaint words per language; every language's words apply to every activity, whatever the
#: display language (a Japanese customer may write in English and the other way round)
DEFAULT_COMPLAINT_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("complain", "cancel", "unhappy", "dissatisfied", "refund", "frustrated"),
    "ja": ("クレーム", "苦情", "解約", "不満", "返金", "キャンセル"),
}
#: the flat list of earlier versions (``[features] complaint_keywords``), kept for reference
DEFAULT_COMPLAINT_KEYWORDS: tuple[str, ...] = ("complaint", "cancel", "クレーム", "解約")
DEFAULT_RENEWAL_KEYWORDS: tuple[str, ...] = ("renewal", "renew", "更新")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its CEL-facing type and what it means, in a line."""

    type: FeatureType
    description: str


class MappedField(BaseModel):
    """A CRM account field mapped in as a feature (its raw string is converted to ``type``)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, description="the field's name in the canonical account's fields")
    type: MappedType = "string"
    description: str = ""


class DerivedFeature(BaseModel):
    """A feature computed by the rule engine from other features with a CEL expression."""

    model_config = ConfigDict(extra="forbid")

    expr: str = Field(min_length=1)
    type: Literal["number", "string", "bool"] = "number"
    description: str = ""


class FeaturesConfig(BaseModel):
    """The ``[features]`` section: mapped account fields, derived features and keyword lists."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, MappedField] = Field(default_factory=dict)
    derived: dict[str, DerivedFeature] = Field(default_factory=dict)
    #: the flat list of earlier versions; set alone, it replaces the default words (as it always
    #: did); set beside ``complaint_words``, its words are added to theirs
    complaint_keywords: list[str] | None = None
    #: language code -> complaint words; all languages apply to every activity
    complaint_words: dict[str, list[str]] = Field(
        default_factory=lambda: {lang: list(words) for lang, words in DEFAULT_COMPLAINT_WORDS.items()}
    )
    renewal_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_RENEWAL_KEYWORDS))

    @field_validator("fields", "derived")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"feature name {name!r} must be a plain identifier (letters, digits, _)")
            if name in FEATURE_SCHEMA:
                raise ValueError(f"feature name {name!r} is already a built-in feature")
        return value

    @field_validator("complaint_words")
    @classmethod
    def _languages(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for lang, words in value.items():
            if not lang.replace("-", "").isalnum():
                raise ValueError(f"language {lang!r} must be a language code such as en or ja")
            if any(not w.strip() for w in words):
                raise ValueError(f"complaint_words.{lang} has an empty word; remove it")
        return value

    def complaint_terms(self) -> tuple[str, ...]:
        """Every complaint word that applies, each once, in configuration order.

        ``complaint_keywords`` set on its own keeps its old meaning (the whole list); otherwise
        the words of every language in ``complaint_words`` apply, plus ``complaint_keywords``.
        """
        flat = [w for w in self.complaint_keywords or [] if w.strip()]
        if self.complaint_keywords is not None and "complaint_words" not in self.model_fields_set:
            return tuple(dict.fromkeys(flat))
        words = [w for lang in self.complaint_words.values() for w in lang]
        return tuple(dict.fromkeys([*words, *flat]))

    def crm_fields(self) -> tuple[str, ...]:
        """The CRM account fields the connectors must read, each once, in config order."""
        return tuple(dict.fromkeys(m.field for m in self.fields.values()))


class CatalogueItem(Protocol):
    """What features need from a catalogue product (``rules.config.ProductConfig`` fits)."""

    @property
    def sku(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def tier(self) -> int: ...


def _build_base_schema() -> dict[str, FeatureSpec]:
    s: dict[str, FeatureSpec] = {
        "account_id": FeatureSpec("string", "the account's CRM id"),
        "account_name": FeatureSpec("string", "the account's name"),
        "owner_id": FeatureSpec("string", "the account owner's CRM id"),
        "lifecycle_stage": FeatureSpec("string", "the account's lifecycle stage in the CRM"),
        "industry": FeatureSpec("string", "the account's industry"),
        "tenure_days": FeatureSpec("number", "days since the account was created"),
        "contacts": FeatureSpec("number", "number of contacts on the account"),
        "days_since_last_activity": FeatureSpec("number", "days since the last call, meeting, email or note"),
        "days_since_last_inbound": FeatureSpec("number", "days since the customer last called or wrote"),
        "days_since_last_meeting": FeatureSpec("number", "days since the last meeting"),
    }
    for window in WINDOWS:
        s[f"activities_{window}d"] = FeatureSpec(
            "number", f"calls, meetings, emails and notes in the last {window} days"
        )
        s[f"inbound_{window}d"] = FeatureSpec("number", f"inbound calls and emails in the last {window} days")
        for kind in ACTIVITY_KINDS:
            s[f"{kind}s_{window}d"] = FeatureSpec("number", f"{kind}s in the last {window} days")
    s.update(
        {
            "complaints_30d": FeatureSpec("number", "complaints in the last 30 days"),
            "complaints_90d": FeatureSpec("number", "complaints in the last 90 days"),
            "days_since_last_complaint": FeatureSpec(
                "number", "days since the last complaint, within a year"
            ),
            "deals_won": FeatureSpec("number", "deals won, ever"),
            "deals_won_365d": FeatureSpec("number", "deals won in the last 365 days"),
            "deals_lost_365d": FeatureSpec("number", "deals lost in the last 365 days"),
            "renewals_won": FeatureSpec("number", "won deals whose name says renewal"),
            "revenue_won_365d": FeatureSpec("number", "revenue of deals won in the last 365 days"),
            "revenue_won_total": FeatureSpec("number", "revenue of all deals won"),
            "days_since_last_purchase": FeatureSpec("number", "days since the last deal was won"),
            "days_since_first_purchase": FeatureSpec("number", "days since the first deal was won"),
            "open_deals": FeatureSpec("number", "open deals"),
            "open_deal_amount": FeatureSpec("number", "total amount of open deals"),
            "open_deal_skus": FeatureSpec("list", "SKUs on open deals"),
            "open_deal_families": FeatureSpec("list", "catalogue families on open deals"),
            "owned_skus": FeatureSpec("list", "SKUs the account owns (on its latest won deals)"),
            "owned_families": FeatureSpec("list", "catalogue families the account owns"),
            "owned_products": FeatureSpec("map", "family -> the SKU owned in that family"),
            "owned_tiers": FeatureSpec("map", "family -> the tier owned in that family"),
            "owned_quantity": FeatureSpec("map", "family -> quantity (seats, units) owned"),
            "products_owned": FeatureSpec("number", "number of distinct catalogue products owned"),
            "open_upsell_tasks": FeatureSpec("number", "open tasks this product created"),
            "days_since_last_proposal": FeatureSpec("number", "days since this product last proposed"),
        }
    )
    s.update(_engagement_schema())
    return s


def _engagement_schema() -> dict[str, FeatureSpec]:
    """Marketing engagement rolled up from the account's contacts (derivations: ``features.engagement``)."""
    lower_bound = (
        "per contact the rise of its lifetime count since the snapshot before the window's start "
        "(a lower bound, at least 1 per recent {what}, while the store's history is shorter than the window)"
    )
    s: dict[str, FeatureSpec] = {
        "email_opens_total": FeatureSpec("number", "marketing e-mail opens by the account's contacts, ever"),
        "email_clicks_total": FeatureSpec(
            "number", "marketing e-mail clicks by the account's contacts, ever"
        ),
    }
    for window in WINDOWS:
        for what in ("open", "click"):
            s[f"email_{what}s_{window}d"] = FeatureSpec(
                "number",
                f"marketing e-mail {what}s in the last {window} days: " + lower_bound.format(what=what),
            )
    s.update(
        {
            "site_visits_total": FeatureSpec("number", "website visits by the account's contacts, ever"),
            "engaged_contacts_share_90d": FeatureSpec(
                "number",
                "share of contacts who opened, clicked, visited the site or answered a campaign in 90 days",
            ),
            "days_since_last_engagement": FeatureSpec(
                "number", "days since the last e-mail open or click, site visit or campaign response"
            ),
            "unsubscribed_share": FeatureSpec(
                "number", "share of contacts opted out of marketing e-mail (of those whose opt-out is known)"
            ),
            "campaign_responses_90d": FeatureSpec(
                "number", "campaign memberships of the account's contacts that responded in 90 days"
            ),
            "engagement_history_days": FeatureSpec(
                "number",
                "days of e-mail counter history the store holds (windowed opens/clicks are exact beyond)",
            ),
        }
    )
    return s


# The built-in features; ``feature_schema(config)`` adds the mapped and derived ones.
FEATURE_SCHEMA: dict[str, FeatureSpec] = _build_base_schema()


def feature_schema(config: FeaturesConfig) -> dict[str, FeatureSpec]:
    """Every feature name a rule can use: built-in, mapped account fields, then derived ones."""
    result = dict(FEATURE_SCHEMA)
    for name, mapped in config.fields.items():
        kind: FeatureType = "number" if mapped.type == "date" else mapped.type
        what = mapped.description or (
            f"days since the CRM field {mapped.field!r}"
            if mapped.type == "date"
            else f"the CRM field {mapped.field!r}"
        )
        result[name] = FeatureSpec(kind, what)
    for name, derived in config.derived.items():
        result[name] = FeatureSpec(derived.type, derived.description or f"computed: {derived.expr}")
    return result
