"""What reps read, in one place: labels for segments, guardrails, proposal kinds and facts, in words.

English (``en``) and Japanese (``ja``) sets ship here; ``[locale]`` in the config picks one and may
override any label (``[locale.segments] at_risk = "Churn risk"``). Identifiers (segment ids, rule and
guardrail names, feature names) never reach a task body or a CRM field: they stay in ``explain``.

Fact phrases are ``string.Template`` texts with one of these placeholders:

- ``$value``: the number as a person writes it (46, 0.5, 1,200);
- ``$percent``: a 0..1 share as a percentage (0.97 -> 97%);
- ``$duration``: a number of days in words (1100 -> "3 years", 75 -> "2 months", 12 -> "12 days");
- ``$money``: an amount with the task currency (USD 8,400).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template
from typing import Any, Literal

Language = Literal["en", "ja"]
LANGUAGES: tuple[str, ...] = ("en", "ja")

_SEGMENTS: dict[str, dict[str, str]] = {
    "en": {
        "at_risk": "At risk",
        "nurture": "Nurture",
        "activate": "Activate",
        "develop": "Develop",
        "expand": "Ready to expand",
        "loyal": "Loyal",
        "champion": "Champion",
        "unmeasured": "Seat use unknown",
    },
    "ja": {
        "at_risk": "解約リスク",
        "nurture": "育成",
        "activate": "活用促進",
        "develop": "成長",
        "expand": "拡大候補",
        "loyal": "ロイヤル",
        "champion": "チャンピオン",
        "unmeasured": "利用状況不明",
    },
}

_GUARDRAILS: dict[str, dict[str, str]] = {
    "en": {
        "cooldown": "Proposed recently",
        "open_upsell_task": "Open upsell task",
        "open_deal": "Open deal for this product",
        "owner_weekly_cap": "Owner's weekly task limit reached",
        "do_not_contact": "Do not contact",
        "recent_complaint": "Recent complaint",
        "dormant": "No recent contact",
        "new_customer": "New customer",
        "unhappy": "Unhappy (low NPS)",
        "not_onboarded": "Onboarding not finished",
        "value_not_realised": "Seats not used yet",
    },
    "ja": {
        "cooldown": "最近提案済み",
        "open_upsell_task": "未完了のアップセルタスクあり",
        "open_deal": "同製品の商談が進行中",
        "owner_weekly_cap": "担当者の週間タスク上限",
        "do_not_contact": "連絡不可",
        "recent_complaint": "最近の苦情",
        "dormant": "最近の接点なし",
        "new_customer": "新規顧客",
        "unhappy": "満足度が低い (NPS)",
        "not_onboarded": "導入未完了",
        "value_not_realised": "シートが活用されていない",
    },
}

_KINDS: dict[str, dict[str, str]] = {
    "en": {"upgrade": "Upgrade", "cross_sell": "Cross-sell", "retention": "Retention"},
    "ja": {"upgrade": "アップグレード", "cross_sell": "クロスセル", "retention": "解約防止"},
}

_FACTS: dict[str, dict[str, str]] = {
    "en": {
        "seats_active": "$value seats in use",
        "seats_purchased": "$value seats purchased",
        "seat_utilization": "$percent of purchased seats in use",
        "seat_utilization_pct": "$value% of purchased seats in use",
        "meetings_90d": "$value meetings in the last 90 days",
        "calls_90d": "$value calls in the last 90 days",
        "inbound_90d": "$value inbound calls and e-mails in the last 90 days",
        "touches_90d": "$value meetings and inbound calls or e-mails in the last 90 days",
        "activities_90d": "$value calls, meetings, e-mails and notes in the last 90 days",
        "complaints_90d": "$value complaints in the last 90 days",
        "tenure_days": "customer for $duration",
        "days_since_last_activity": "last contact $duration ago",
        "days_since_last_inbound": "last heard from the customer $duration ago",
        "days_since_last_purchase": "last purchase $duration ago",
        "renewals_won": "$value renewals won",
        "deals_won": "$value deals won",
        "revenue_won_365d": "$money won in the last 12 months",
        "nps_score": "NPS answer $value out of 10",
        "score": "loyalty score $value out of 100",
        "quantity": "quantity in the offer: $value",
        "expected_uplift": "expected $money more revenue per year",
        "contacts": "$value contacts",
        "open_deals": "$value open deals",
    },
    "ja": {
        "seats_active": "利用中のシート $value",
        "seats_purchased": "購入済みシート $value",
        "seat_utilization": "購入シートの $percent を利用中",
        "seat_utilization_pct": "購入シートの $value% を利用中",
        "meetings_90d": "過去90日の打ち合わせ $value 件",
        "calls_90d": "過去90日の電話 $value 件",
        "inbound_90d": "過去90日の顧客からの電話・メール $value 件",
        "touches_90d": "過去90日の打ち合わせと顧客からの連絡 $value 件",
        "activities_90d": "過去90日の活動 $value 件",
        "complaints_90d": "過去90日の苦情 $value 件",
        "tenure_days": "取引期間 $duration",
        "days_since_last_activity": "最終接点から $duration",
        "days_since_last_inbound": "顧客からの最終連絡から $duration",
        "days_since_last_purchase": "最終購入から $duration",
        "renewals_won": "更新の受注 $value 件",
        "deals_won": "受注 $value 件",
        "revenue_won_365d": "過去12か月の受注額 $money",
        "nps_score": "NPS 回答 $value / 10",
        "score": "ロイヤルティスコア $value / 100",
        "quantity": "提案数量 $value",
        "expected_uplift": "年間 $money の売上増加見込み",
        "contacts": "担当者 $value 名",
        "open_deals": "進行中の商談 $value 件",
    },
}

# Fixed words of the task body and the CLI, per language.
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "years": "$n years",
        "year": "1 year",
        "months": "$n months",
        "month": "1 month",
        "days": "$n days",
        "day": "1 day",
        "yes": "yes",
        "no": "no",
        "unknown": "unknown",
        "seats": "uses $active of its $purchased seats ($percent)",
        "proposal": "$kind to $product: $why.",
    },
    "ja": {
        "years": "$n年",
        "year": "1年",
        "months": "$nか月",
        "month": "1か月",
        "days": "$n日",
        "day": "1日",
        "yes": "はい",
        "no": "いいえ",
        "unknown": "不明",
        "seats": "購入シート $purchased のうち $active を利用中 ($percent)",
        "proposal": "$kind ($product): $why。",
    },
}


def humanise(identifier: str) -> str:
    """``value_not_realised`` -> ``Value not realised``: the last resort for a name with no label."""
    text = identifier.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else identifier


def number_text(value: float) -> str:
    """46 not 46.0, 0.5, 1,200; at most two decimals."""
    if math.isfinite(value) and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Labels:
    """The labels of one language with the config's overrides applied."""

    language: str = "en"
    segments: Mapping[str, str] = field(default_factory=dict)
    guardrails: Mapping[str, str] = field(default_factory=dict)
    kinds: Mapping[str, str] = field(default_factory=dict)
    facts: Mapping[str, str] = field(default_factory=dict)
    words: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_language(
        cls,
        language: str = "en",
        *,
        segments: Mapping[str, str] | None = None,
        guardrails: Mapping[str, str] | None = None,
        kinds: Mapping[str, str] | None = None,
        facts: Mapping[str, str] | None = None,
    ) -> Labels:
        lang = language if language in LANGUAGES else "en"
        return cls(
            language=lang,
            segments={**_SEGMENTS[lang], **(segments or {})},
            guardrails={**_GUARDRAILS[lang], **(guardrails or {})},
            kinds={**_KINDS[lang], **(kinds or {})},
            facts={**_FACTS[lang], **(facts or {})},
            words=_WORDS[lang],
        )

    def segment(self, segment_id: str) -> str:
        return self.segments.get(segment_id) or humanise(segment_id)

    def guardrail(self, name: str, reason: str | None = None) -> str:
        """A guardrail's label; a configured guardrail without one reads as its configured reason."""
        label = self.guardrails.get(name)
        if label:
            return label
        return (reason[:1].upper() + reason[1:]) if reason else humanise(name)

    def kind(self, kind: str) -> str:
        return self.kinds.get(kind) or humanise(kind)

    def duration(self, days: float) -> str:
        """Days in words: years from a year on, months from two months on, else days."""
        w = self.words
        if days >= 365:
            n = int(days // 365)
            return w["year"] if n == 1 else Template(w["years"]).substitute(n=n)
        if days >= 60:
            n = int(days // 30)
            return w["month"] if n == 1 else Template(w["months"]).substitute(n=n)
        n = max(0, round(days))
        return w["day"] if n == 1 else Template(w["days"]).substitute(n=n)

    def fact(
        self, name: str, value: Any, *, currency: str = "", description: str | None = None
    ) -> str | None:
        """One fact as words (``"customer for 3 years"``); None where it has no label and no words.

        A fact without a label reads as its feature's description and its value; lists, maps and
        missing values without a label are left out (they mean nothing to a rep as they are).
        """
        template = self.facts.get(name)
        if value is None or isinstance(value, dict | list | tuple):
            return None
        if template is None:
            if not description:
                return None
            return f"{description}: {self.value_text(value)}"
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        values = {
            "value": self.value_text(value),
            "percent": f"{round(number * 100)}%" if number is not None else self.value_text(value),
            "duration": self.duration(number) if number is not None else self.value_text(value),
            "money": f"{currency} {number:,.0f}".strip() if number is not None else self.value_text(value),
        }
        return Template(template).safe_substitute(values)

    def seats(self, facts: Mapping[str, Any]) -> str | None:
        """Seat use in one phrase (``uses 46 of its 50 seats (92%)``) where both counts are known."""
        active, purchased = facts.get("seats_active"), facts.get("seats_purchased")
        if not isinstance(active, int | float) or not isinstance(purchased, int | float) or purchased <= 0:
            return None
        template = self.facts["seats"] if "seats" in self.facts else self.words["seats"]
        return Template(template).safe_substitute(
            active=number_text(float(active)),
            purchased=number_text(float(purchased)),
            percent=f"{round(active / purchased * 100)}%",
        )

    def proposal(self, kind: str, product: str, why: str) -> str:
        """The first sentence of a reason: ``Upgrade to CRM Professional: <why>.``"""
        return Template(self.words["proposal"]).safe_substitute(
            kind=self.kind(kind), product=product, why=why
        )

    def value_text(self, value: Any) -> str:
        if value is None:
            return self.words["unknown"]
        if isinstance(value, bool):
            return self.words["yes"] if value else self.words["no"]
        if isinstance(value, int | float):
            return number_text(float(value))
        return str(value)


def fact_placeholders_ok(template: str) -> bool:
    """A fact phrase uses only the documented placeholders."""
    known = {"value", "percent", "duration", "money"}
    try:
        names = {m[1] or m[2] for m in Template.pattern.findall(template) if m[1] or m[2]}
    except (TypeError, ValueError):
        return False
    return names <= known
