"""What the rule engine says about one account: score, segment, tags, proposal, reason, trace.

These records are the contract with the store (``recommendations`` table), the plan, the CLI and
the report; ``explain_text`` renders one for ``crm-upsell explain``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import TypeAdapter

ProposalKind = Literal["upgrade", "cross_sell", "retention"]
KIND_LABELS: dict[str, str] = {"upgrade": "Upgrade", "cross_sell": "Cross-sell", "retention": "Retention"}


class _Record:
    """Frozen, slotted dataclasses (a 100,000-account run holds millions of these, and a pydantic
    model weighs ~1 KB each), with the pydantic ``model_dump``/``model_dump_json``/``model_validate``
    the rest of the product uses, through a cached ``TypeAdapter``."""

    __slots__ = ()
    _adapters: ClassVar[dict[type, TypeAdapter[Any]]] = {}

    @classmethod
    def _adapter(cls) -> TypeAdapter[Any]:
        adapter = _Record._adapters.get(cls)
        if adapter is None:
            adapter = _Record._adapters[cls] = TypeAdapter(cls)
        return adapter

    def model_dump(self, *, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        return self._adapter().dump_python(self, mode=mode)  # type: ignore[no-any-return]

    def model_dump_json(self) -> str:
        return self._adapter().dump_json(self).decode()

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        return cls._adapter().validate_python(data)


@dataclass(frozen=True, slots=True)
class FactorContribution(_Record):
    """One loyalty factor: its raw value, its 0..1 value, its weight and its points of the score."""

    name: str
    value: float | None
    normalised: float | None
    weight: float
    points: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Proposal(_Record):
    """The one thing to propose. ``uplift`` is the expected change in yearly revenue."""

    kind: ProposalKind
    product_sku: str | None
    product_name: str
    uplift: float
    rule: str
    offer: str | None = None


@dataclass(frozen=True, slots=True)
class TraceEntry(_Record):
    """One tag, rule or guardrail and what it gave for this account (``error`` if it could not tell)."""

    kind: Literal["tag", "rule", "guardrail"]
    name: str
    value: bool | None
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Recommendation(_Record):
    """Everything the engine says about one account. ``blocked_by`` set means ``proposal`` is None."""

    account_id: str
    account_name: str
    owner_id: str | None
    score: float
    factors: Sequence[FactorContribution]
    segment: str
    tags: Sequence[str]
    proposal: Proposal | None
    reason: str
    blocked_by: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    trace: Sequence[TraceEntry] = ()

    @property
    def wants_task(self) -> bool:
        """A proposal no guardrail holds back: a new task may be created for it."""
        return self.proposal is not None and self.blocked_by is None

    def explain_text(self, currency: str = "USD") -> str:
        """Everything about this recommendation in plain text, for ``crm-upsell explain``."""
        lines = [
            f"Account {self.account_id}: {self.account_name}"
            + (f" (owner {self.owner_id})" if self.owner_id else ""),
            f"Loyalty score {self.score:.1f}/100, segment {self.segment}",
            f"Tags: {', '.join(self.tags) or '-'}",
            "",
            "Score factors:",
        ]
        for f in self.factors:
            value = "missing" if f.value is None else format_value(f.value)
            normalised = "-" if f.normalised is None else f"{f.normalised:.2f}"
            note = f"  ({f.error})" if f.error else ""
            lines.append(
                f"  {f.name:<24} value {value:<10} normalised {normalised:<5} "
                f"weight {format_value(f.weight):<5} points {f.points:6.2f}{note}"
            )
        lines.append("")
        if self.proposal is not None:
            p = self.proposal
            lines.append(
                f"Proposal: {KIND_LABELS[p.kind]} -> {p.product_name}"
                + (f" [{p.product_sku}]" if p.product_sku else "")
                + f", expected uplift {currency} {p.uplift:,.0f}/year, rule {p.rule}"
            )
            if p.offer:
                lines.append(f"Offer: {p.offer}")
        else:
            lines.append("Proposal: none" + (f" (blocked by {self.blocked_by})" if self.blocked_by else ""))
        lines.append(f"Reason: {self.reason}")
        if self.facts:
            lines.append("Facts:")
            lines.extend(f"  {k} = {format_value(v)}" for k, v in self.facts.items())
        for kind, title in (("tag", "Tags"), ("rule", "Rules"), ("guardrail", "Guardrails")):
            entries = [t for t in self.trace if t.kind == kind]
            if not entries:
                continue
            lines.append(f"{title}:")
            for t in entries:
                verdict = "error" if t.error else ("yes" if t.value else "no")
                extra = f"  [{t.error}]" if t.error else ""
                extra += f"  {t.detail}" if t.detail else ""
                lines.append(f"  {t.name:<28} {verdict}{extra}")
        return "\n".join(lines)


#: features (and facts) that are amounts of money, in the org's home currency
MONEY_FACTS = frozenset({"revenue_won_365d", "revenue_won_total", "open_deal_amount", "expected_uplift"})


def format_fact(name: str, value: Any, currency: str | None = None) -> str:
    """A fact as a person reads it; amounts of money carry the home currency's code when known
    (``USD 13,400``), so a reason written to the CRM says which currency it means."""
    if currency and name in MONEY_FACTS and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{currency} {value:,.0f}"
    return format_value(value)


def format_value(value: Any) -> str:
    """A feature value as a person reads it: 46 not 46.0, 0.92 not 0.9200000001, lists joined."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) or "none"
    return str(value)


def segment_counts(recommendations: Iterable[Recommendation]) -> dict[str, int]:
    """How many accounts fall in each segment, largest first (ties by name)."""
    counts = Counter(r.segment for r in recommendations)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def top_proposals(recommendations: Sequence[Recommendation], limit: int = 20) -> list[Recommendation]:
    """The accounts with a proposal, highest uplift x score first (ties by account id)."""
    with_proposal = [r for r in recommendations if r.proposal is not None]
    with_proposal.sort(key=lambda r: (-(r.proposal.uplift if r.proposal else 0.0) * r.score, r.account_id))
    return with_proposal[:limit]
