"""``[locale]``: which language reps read, and any label changed by the config.

::

    [locale]
    language = "ja"                      # "en" (default) or "ja"
    [locale.segments]
    at_risk = "Churn risk"               # a segment id -> its label
    [locale.guardrails]
    dormant = "Quiet for months"         # a guardrail name -> its label
    [locale.kinds]
    cross_sell = "Add-on"
    [locale.facts]
    seats_active = "$value seats in use" # a feature -> a phrase ($value $percent $duration $money)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_upsell_connector.labels import Labels, fact_placeholders_ok

if TYPE_CHECKING:
    from crm_upsell_connector.rules.config import RulesConfig

# The task templates reps read when [tasks] sets none, per language.
TASK_SUBJECT = {
    "en": "$kind_label: propose $product_name to $account_name",
    "ja": "$kind_label: $account_name に $product_name を提案",
}
TASK_BODY = {
    "en": (
        "Propose $product_name to $account_name ($kind_label).\n\n"
        "Why now: $reason\n\n"
        "What we know:\n$facts\n\n"
        "Offer: $offer\n"
        "Expected uplift: $uplift per year.\n\n"
        "What to do: contact $account_name, present $product_name and the offer, "
        "and note the outcome on this task."
    ),
    "ja": (
        "$account_name に $product_name を提案してください ($kind_label)。\n\n"
        "今提案する理由: $reason\n\n"
        "わかっていること:\n$facts\n\n"
        "オファー: $offer\n"
        "見込まれる売上増: 年間 $uplift\n\n"
        "次にすること: $account_name に連絡し、$product_name とオファーを紹介して、結果をこのタスクに記録してください。"
    ),
}
NO_OFFER = {"en": "none this time", "ja": "今回はなし"}


class LocaleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Literal["en", "ja"] = "en"
    segments: dict[str, str] = Field(default_factory=dict)
    guardrails: dict[str, str] = Field(default_factory=dict)
    kinds: dict[str, str] = Field(default_factory=dict)
    facts: dict[str, str] = Field(default_factory=dict)

    @field_validator("segments", "guardrails", "kinds")
    @classmethod
    def _non_blank(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not label.strip():
                raise ValueError(f"the label of {key!r} is blank")
        return value

    @field_validator("facts")
    @classmethod
    def _phrases(cls, value: dict[str, str]) -> dict[str, str]:
        for key, phrase in value.items():
            if not fact_placeholders_ok(phrase):
                raise ValueError(f"the phrase of {key!r} may use only $value, $percent, $duration and $money")
        return value

    def labels(self) -> Labels:
        return Labels.for_language(
            self.language,
            segments=self.segments,
            guardrails=self.guardrails,
            kinds=self.kinds,
            facts=self.facts,
        )


_CACHE: dict[int, tuple[LocaleConfig, Labels]] = {}


def labels_for(rules: RulesConfig | None) -> Labels:
    """The labels of a rule set (English defaults without one); computed once per config."""
    if rules is None:
        return Labels.for_language("en")
    locale = rules.locale
    cached = _CACHE.get(id(locale))
    if cached is None or cached[0] is not locale:
        cached = _CACHE[id(locale)] = (locale, locale.labels())
    return cached[1]


def localise_task_templates(rules: RulesConfig) -> None:
    """Where ``[tasks]`` leaves subject or body unset, use the templates of the chosen language."""
    tasks = rules.tasks
    language = rules.locale.language
    if "subject" not in tasks.model_fields_set:
        tasks.subject = TASK_SUBJECT[language]
    if "body" not in tasks.model_fields_set:
        tasks.body = TASK_BODY[language]


def guardrail_label(rules: RulesConfig | None, name: str) -> str:
    """A guardrail in words: its label, else its configured reason, else its name made readable."""
    reason = None
    if rules is not None:
        reason = next((g.reason for g in rules.guardrails.block if g.name == name and g.reason), None)
    return labels_for(rules).guardrail(name, reason)
