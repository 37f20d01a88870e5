"""What a rule pass carries between its steps: candidates, per-account drafts (features freed),
the interner that shares equal trace entries, and the guardrail names the rest of the product reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crm_upsell_connector.rules.config import CompiledRule, CompiledRules, ProductConfig, RulesConfig
from crm_upsell_connector.rules.result import FactorContribution, TraceEntry

OWNER_CAP = "owner_weekly_cap"
HOLDOUT = "holdout"
# Guardrails about pace, not suitability: the proposal stands (and shows on the account), but no
# new task is created while one is open, during the cooldown, or past the owner's weekly cap.
PACING_GUARDRAILS = frozenset({"cooldown", "open_upsell_task", OWNER_CAP})
NO_OWNER = ""


@dataclass(slots=True)
class _Candidate:
    rule: CompiledRule
    product: ProductConfig | None
    uplift: float
    quantity: float

    @property
    def family(self) -> str | None:
        return self.product.family if self.product is not None else None


@dataclass(slots=True)
class _Draft:
    """One account after the per-account pass, without its features (they are freed by then)."""

    account_id: str
    account_name: str
    owner_id: str | None
    score: float
    factors: tuple[FactorContribution, ...]
    segment: str
    tags: tuple[str, ...]
    candidate: _Candidate | None
    rule_facts: dict[str, Any]
    rule_text: str
    blocked_by: str | None
    block_reason: str | None
    block_facts: dict[str, Any]
    trace: tuple[TraceEntry, ...]
    utilization: float | None = None


class _Interner:
    """Shares equal trace entries, traces and tag tuples between accounts (most are identical)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], TraceEntry] = {}
        self._tuples: dict[tuple[int, ...], tuple[Any, ...]] = {}

    def entry(
        self, kind: Any, name: str, value: bool | None, error: str | None = None, detail: str | None = None
    ) -> TraceEntry:
        key = (kind, name, value, error, detail)
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = TraceEntry(kind, name, value, error, detail)
        return found

    def tuple(self, items: Sequence[Any]) -> tuple[Any, ...]:
        key = tuple(map(id, items))
        found = self._tuples.get(key)
        if found is None:
            found = self._tuples[key] = tuple(items)
        return found


class EngineState:
    """What the engine's parts read (set by ``RuleEngine.__init__``)."""

    rules: RulesConfig
    compiled: CompiledRules
    currency: str | None
