"""The generator's shared state: random streams, counters, time snapping, people and owners."""

from __future__ import annotations

import html
import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from crm_upsell_connector.sandbox.scenario.model import (
    DAY,
    HOME_CURRENCY,
    YEAR,
    SActivity,
    SCompany,
    SContact,
    SDeal,
    SLineItem,
    SOwner,
    dt_to_ms,
)
from crm_upsell_connector.sandbox.scenario.vocabulary import FIRST, LAST


@dataclass(slots=True)
class Plan:
    """Per-account decisions made before records are emitted."""

    persona: str
    created_ms: int
    crm_sku: str
    seats: int
    addons: list[str]
    owner_key: str
    japanese: bool
    currency: str = HOME_CURRENCY


def render_body(paragraphs: Sequence[Sequence[str]]) -> tuple[str, str]:
    """(plain text, HTML) of paragraphs made of lines: ``<p>`` per paragraph, ``<br>`` between lines.

    The plain text is what ``crm_upsell_connector.text.html_to_text`` makes of the HTML: paragraphs
    separated by a blank line, lines by a line break.
    """
    text = "\n\n".join("\n".join(lines) for lines in paragraphs)
    markup = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in lines) + "</p>" for lines in paragraphs
    )
    return text, markup


class BuilderBase:
    def __init__(
        self,
        accounts: int,
        seed: int,
        now: datetime,
        contacts_per_account: float,
        deals_per_account: float,
        activities_per_account: float,
        line_items_per_account: float,
    ) -> None:
        self.rng = random.Random(seed)
        # A second stream for what later versions added (currencies, rich bodies, merges), so the
        # records of earlier versions stay exactly as they were for the same seed.
        self.aux = random.Random(f"scenario-extras-{seed}")
        self.accounts = accounts
        self.seed = seed
        self.now_dt = now
        self.now = dt_to_ms(now)
        self.contacts_per_account = contacts_per_account
        self.deals_per_account = deals_per_account
        self.activities_per_account = activities_per_account
        self.line_items_per_account = line_items_per_account
        # Shared instants (imports, workflows, bulk edits) that make many records collide to the millisecond.
        self.pool = sorted(self.now - self.rng.randrange(1, 4 * YEAR) for _ in range(400))
        self.owners: list[SOwner] = []
        self.companies: list[SCompany] = []
        self.contacts: list[SContact] = []
        self.deals: list[SDeal] = []
        self.line_items: list[SLineItem] = []
        self.activities: list[SActivity] = []
        self.planted: dict[str, str] = {}
        self._n_contacts = 0
        self._n_deals = 0
        self._n_items = 0
        self._n_acts = 0

    def snap(self, t: int, probability: float) -> int:
        """Sometimes move ``t`` forward onto a shared instant so records collide to the millisecond."""
        if self.rng.random() >= probability:
            return t
        j = bisect_left(self.pool, t)
        if j < len(self.pool) and self.pool[j] - t < 45 * DAY and self.pool[j] <= self.now:
            return self.pool[j]
        return t

    def count(self, mean: float, minimum: int = 0) -> int:
        """A count around ``mean`` (uniform 0.5x-1.5x), at least ``minimum``."""
        if mean <= 0:
            return minimum
        return max(minimum, round(mean * self.rng.uniform(0.5, 1.5)))

    def person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    def build_owners(self) -> None:
        n = max(3, self.accounts // 40 + 2)
        for i in range(n):
            first, last = self.person()
            slug = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
            self.owners.append(
                SOwner(
                    key=f"owner-{i + 1:04d}",
                    email=f"{slug}{i + 1}@sandbox-sales.example.com",
                    first_name=first,
                    last_name=last,
                )
            )
