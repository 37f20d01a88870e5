"""Marketing engagement for the scenario: e-mail opens and clicks, site visits, opt-outs, campaigns.

Derived from a built :class:`Scenario` (the same seed, sizes and ``now`` always give the same data),
so the generator itself stays as it is. Each account gets a marketing kind:

- ``engaged``: upgrade and cross-sell candidates and covered accounts: their people open, click and
  visit within weeks, answer recent campaigns, and stay subscribed;
- ``disengaged``: at-risk and dormant accounts, plus one upgrade candidate in five whose usage looks
  ready for an upgrade but whose people all unsubscribed and have not opened, clicked, visited or
  answered anything for over a year (``Marketing.lookalikes``): the guardrail's case;
- ``mixed``: everyone else: some opens months ago, the odd unsubscribe.

Counters are HubSpot-style lifetime totals; campaign statuses are neutral (``sent``/``responded``)
and each sandbox renders them in its CRM's words.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crm_upsell_connector.sandbox.scenario.model import Scenario

ENGAGED = frozenset({"upgrade_candidate", "cross_sell_candidate", "covered"})
DISENGAGED = frozenset({"at_risk", "dormant"})
#: one upgrade candidate in this many is a disengaged lookalike
LOOKALIKE_EVERY = 5


@dataclass(frozen=True, slots=True)
class SEngagement:
    """One contact's marketing engagement; counters are lifetime totals, ``None`` = never."""

    contact_key: str
    email_opens: int
    email_clicks: int
    email_bounces: int
    last_open_at: datetime | None
    last_click_at: datetime | None
    site_visits: int
    last_visit_at: datetime | None
    unsubscribed: bool


@dataclass(frozen=True, slots=True)
class SCampaign:
    key: str
    name: str
    kind: str  # Email, Webinar, Event
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SCampaignMember:
    """A contact on a campaign; ``responded_at`` is a date (midnight UTC) as CRMs keep it."""

    key: str
    campaign_key: str
    contact_key: str
    status: str  # "sent" or "responded"
    responded_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def responded(self) -> bool:
        return self.status == "responded"


@dataclass(frozen=True)
class Marketing:
    campaigns: list[SCampaign]
    engagement: dict[str, SEngagement]
    members: list[SCampaignMember]
    #: company key -> "engaged", "disengaged" or "mixed"
    kinds: dict[str, str] = field(default_factory=dict)
    #: upgrade candidates made disengaged (their usage still says "upgrade")
    lookalikes: frozenset[str] = frozenset()


# (name, kind, days before ``now`` it started)
_CAMPAIGNS: tuple[tuple[str, str, int], ...] = (
    ("Spring product newsletter", "Email", 700),
    ("Customer summit", "Event", 550),
    ("Automation webinar", "Webinar", 420),
    ("Autumn product newsletter", "Email", 300),
    ("Reporting deep dive webinar", "Webinar", 200),
    ("Release highlights newsletter", "Email", 120),
    ("Customer roadshow", "Event", 60),
    ("Year-end product newsletter", "Email", 20),
)


def _day(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def marketing_kind(persona: str, company_key: str, seed: int) -> str:
    if persona in DISENGAGED or _lookalike(persona, company_key, seed):
        return "disengaged"
    return "engaged" if persona in ENGAGED else "mixed"


def _lookalike(persona: str, company_key: str, seed: int) -> bool:
    return (
        persona == "upgrade_candidate"
        and random.Random(f"{seed}:look:{company_key}").randrange(LOOKALIKE_EVERY) == 0
    )


def build_marketing(scenario: Scenario) -> Marketing:
    """The scenario's marketing data (deterministic for the scenario's seed and ``now``)."""
    now = scenario.now
    campaigns = [
        SCampaign(
            key=f"cmp-{i + 1:03d}",
            name=name,
            kind=kind,
            start=_day(now - timedelta(days=ago)),
            end=_day(now - timedelta(days=ago)) + timedelta(days=14),
        )
        for i, (name, kind, ago) in enumerate(_CAMPAIGNS)
    ]
    kinds = {c.key: marketing_kind(c.persona, c.key, scenario.seed) for c in scenario.companies}
    lookalikes = frozenset(c.key for c in scenario.companies if _lookalike(c.persona, c.key, scenario.seed))
    engagement: dict[str, SEngagement] = {}
    members: list[SCampaignMember] = []
    for contact in scenario.contacts:
        kind = kinds.get(contact.company_key, "mixed")
        rng = random.Random(f"{scenario.seed}:mkt:{contact.key}")
        engagement[contact.key] = _engagement(contact.key, kind, rng, now)
        members.extend(_memberships(contact.key, kind, rng, campaigns, now, len(members)))
    return Marketing(campaigns, engagement, members, kinds, lookalikes)


def _ago(rng: random.Random, now: datetime, low: int, high: int) -> datetime:
    seconds = rng.randint(low * 86_400, high * 86_400)
    return (now - timedelta(seconds=seconds)).replace(microsecond=0)


def _engagement(key: str, kind: str, rng: random.Random, now: datetime) -> SEngagement:
    if kind == "engaged":
        opens, clicks, visits = rng.randint(20, 80), rng.randint(5, 25), rng.randint(10, 60)
        return SEngagement(
            key,
            opens,
            clicks,
            0,
            _ago(rng, now, 1, 25),
            _ago(rng, now, 2, 60),
            visits,
            _ago(rng, now, 1, 20),
            unsubscribed=rng.random() < 0.05,
        )
    if kind == "disengaged":
        opens = rng.choice((0, 0, rng.randint(1, 10)))
        clicks = min(opens, rng.randint(0, 2))
        visits = rng.choice((0, rng.randint(1, 3)))
        return SEngagement(
            key,
            opens,
            clicks,
            rng.randint(0, 3),
            _ago(rng, now, 400, 900) if opens else None,
            _ago(rng, now, 450, 900) if clicks else None,
            visits,
            _ago(rng, now, 400, 900) if visits else None,
            unsubscribed=True,
        )
    opens, clicks, visits = rng.randint(3, 30), rng.randint(0, 8), rng.randint(0, 15)
    return SEngagement(
        key,
        opens,
        clicks,
        rng.randint(0, 1),
        _ago(rng, now, 10, 200),
        _ago(rng, now, 30, 300) if clicks else None,
        visits,
        _ago(rng, now, 5, 250) if visits else None,
        unsubscribed=rng.random() < 0.25,
    )


def _memberships(
    key: str, kind: str, rng: random.Random, campaigns: list[SCampaign], now: datetime, offset: int
) -> list[SCampaignMember]:
    if kind == "engaged":
        chosen = [c for c in campaigns[-4:] if rng.random() < 0.85]
        answer = 0.8
    elif kind == "disengaged":
        chosen = [c for c in campaigns[:3] if rng.random() < 0.5]
        answer = 0.2
    else:
        chosen = [c for c in campaigns[2:7] if rng.random() < 0.5]
        answer = 0.4
    out: list[SCampaignMember] = []
    for campaign in chosen:
        added = campaign.start - timedelta(days=rng.randint(1, 10))
        responded_at = None
        if rng.random() < answer:
            responded_at = _day(min(campaign.start + timedelta(days=rng.randint(0, 10)), now))
        out.append(
            SCampaignMember(
                key=f"cm-{offset + len(out) + 1:08d}",
                campaign_key=campaign.key,
                contact_key=key,
                status="responded" if responded_at else "sent",
                responded_at=responded_at,
                created_at=added,
                updated_at=max(added, responded_at) if responded_at else added,
            )
        )
    return out
