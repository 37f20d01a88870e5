"""Calls, meetings, e-mails, notes and tasks, with the persona's engagement pattern.

Bodies of notes, e-mails, calls and meetings come as plain text and as the rich-text HTML a CRM
keeps: sometimes two paragraphs, sometimes a ``<br>`` line break. At-risk accounts also get one
complaint that only a note's or inbound e-mail's body tells (in its second paragraph or after a
``<br>``), under an ordinary subject.
"""

from __future__ import annotations

from crm_upsell_connector.sandbox.scenario.base import BuilderBase, Plan, render_body
from crm_upsell_connector.sandbox.scenario.model import (
    COMPLAINT_PREFIX,
    DAY,
    HOUR,
    UPGRADE_LIKE,
    YEAR,
    SActivity,
    ms_to_dt,
)
from crm_upsell_connector.sandbox.scenario.vocabulary import (
    BODIES,
    BURIED_COMPLAINTS,
    BURIED_OPENINGS,
    CALL_OUTCOMES,
    CALL_TITLES,
    COMPLAINT_BODY,
    COMPLAINTS,
    EN_INBOUND_EMAILS,
    EN_MEETINGS,
    EN_OUTBOUND_EMAILS,
    FOLLOW_UPS,
    JP_INBOUND_EMAILS,
    JP_MEETINGS,
    NOTE_SUBJECTS,
    TASK_SUBJECTS,
)


class ActivityBuilder(BuilderBase):
    """Activities for one account at a time."""

    def rich_body(self, kind: str, first: str) -> tuple[str, str]:
        """(plain text, HTML) of a body starting with ``first``: tasks keep one paragraph; other
        kinds sometimes get a second paragraph or a second line after a ``<br>``."""
        if kind == "task":
            return render_body([[first]])
        roll = self.aux.random()
        if roll < 0.3:
            return render_body([[first], [self.aux.choice(FOLLOW_UPS)]])
        if roll < 0.45:
            return render_body([[first, self.aux.choice(FOLLOW_UPS)]])
        return render_body([[first]])

    def emit_buried_complaint(self, company_key: str, contacts: list[str], plan: Plan) -> None:
        """A note or inbound e-mail under an ordinary subject whose body carries a complaint, in its
        second paragraph or after a ``<br>``, within the last 60 days."""
        aux, now = self.aux, self.now
        kind = aux.choice(("note", "note", "email"))
        opening, complaint = aux.choice(BURIED_OPENINGS), aux.choice(BURIED_COMPLAINTS)
        if aux.random() < 0.5:
            text, markup = render_body([[opening], [complaint]])
        else:
            text, markup = render_body([[opening, complaint]])
        occurred = aux.randint(max(plan.created_ms, now - 60 * DAY), now - HOUR)
        self._n_acts += 1
        self.activities.append(
            SActivity(
                key=f"act-{self._n_acts:07d}",
                kind=kind,
                company_key=company_key,
                contact_key=aux.choice(contacts) if contacts and kind == "email" else None,
                owner_key=plan.owner_key,
                occurred_at=ms_to_dt(occurred),
                direction="inbound" if kind == "email" else None,
                outcome=None,
                subject=aux.choice(NOTE_SUBJECTS) if kind == "note" else aux.choice(EN_INBOUND_EMAILS),
                body=text,
                status=None,
                updated_at=ms_to_dt(min(now, occurred + HOUR)),
                body_html=markup,
            )
        )

    def emit_activity(
        self,
        company_key: str,
        contacts: list[str],
        plan: Plan,
        kind: str,
        occurred: int,
        *,
        direction: str | None = None,
        outcome: str | None = None,
        subject: str | None = None,
        body: str | None = None,
    ) -> None:
        rng = self.rng
        self._n_acts += 1
        jp = plan.japanese and rng.random() < 0.5
        status: str | None = None
        if kind == "call":
            direction = direction or rng.choice(("inbound", "outbound", "outbound"))
            outcome = outcome or rng.choice(CALL_OUTCOMES)
            subject = subject or rng.choice(CALL_TITLES)
        elif kind == "meeting":
            if outcome is None:
                outcome = (
                    "scheduled"
                    if occurred > self.now
                    else rng.choice(
                        ("completed", "completed", "completed", "completed", "no_show", "canceled")
                    )
                )
            subject = subject or rng.choice(JP_MEETINGS if jp else EN_MEETINGS)
        elif kind == "email":
            direction = direction or rng.choice(("inbound", "outbound", "outbound"))
            if subject is None:
                if direction == "inbound":
                    subject = rng.choice(JP_INBOUND_EMAILS if jp else EN_INBOUND_EMAILS)
                else:
                    subject = rng.choice(EN_OUTBOUND_EMAILS)
        elif kind == "note":
            subject = subject or rng.choice(NOTE_SUBJECTS)
        else:
            subject = subject or rng.choice(TASK_SUBJECTS)
            status = "COMPLETED" if occurred < self.now - 7 * DAY or rng.random() < 0.3 else "NOT_STARTED"
        if occurred > self.now:
            updated = self.now - rng.randint(HOUR, 5 * DAY)
        else:
            updated = min(self.now, occurred + rng.randint(0, 2 * HOUR))
            updated = self.snap(updated, 0.03)
        contact = rng.choice(contacts) if contacts and kind != "note" else None
        owner = plan.owner_key if rng.random() < 0.9 else rng.choice(self.owners).key
        text, markup = self.rich_body(kind, body or rng.choice(BODIES))
        self.activities.append(
            SActivity(
                key=f"act-{self._n_acts:07d}",
                kind=kind,
                company_key=company_key,
                contact_key=contact,
                owner_key=owner,
                occurred_at=ms_to_dt(occurred),
                direction=direction,
                outcome=outcome,
                subject=subject,
                body=text,
                status=status,
                updated_at=ms_to_dt(updated),
                body_html=markup,
            )
        )

    def emit_activities(self, company_key: str, contacts: list[str], plan: Plan) -> None:
        rng, persona, now = self.rng, plan.persona, self.now
        emitted = 0

        def recent(days: int) -> int:
            low = max(plan.created_ms, now - days * DAY)
            return rng.randint(low, now - HOUR)

        if persona in UPGRADE_LIKE or persona == "cross_sell_candidate":
            lo = 4 if persona in UPGRADE_LIKE else 3
            for _ in range(rng.randint(lo, lo + 3)):
                self.emit_activity(company_key, contacts, plan, "meeting", recent(88), outcome="completed")
                emitted += 1
            for _ in range(rng.randint(lo, lo + 4)):
                self.emit_activity(company_key, contacts, plan, "email", recent(88), direction="inbound")
                emitted += 1
        elif persona == "at_risk":
            for _ in range(rng.randint(1, 2)):
                kind = rng.choice(("call", "email"))
                topic = rng.choice(COMPLAINTS)
                self.emit_activity(
                    company_key,
                    contacts,
                    plan,
                    kind,
                    recent(28),
                    direction="inbound",
                    outcome="complaint",
                    subject=f"{COMPLAINT_PREFIX} {topic}",
                    body=COMPLAINT_BODY,
                )
                emitted += 1
            for _ in range(rng.randint(0, 4)):
                self.emit_activity(company_key, contacts, plan, "meeting", recent(88), outcome="completed")
                emitted += 1
            self.emit_buried_complaint(company_key, contacts, plan)
        elif persona == "new_customer":
            for _ in range(rng.randint(2, 4)):
                self.emit_activity(
                    company_key,
                    contacts,
                    plan,
                    "meeting",
                    recent(90),
                    outcome="completed",
                    subject="Onboarding kickoff" if emitted == 0 else None,
                )
                emitted += 1
            for _ in range(rng.randint(2, 5)):
                self.emit_activity(company_key, contacts, plan, "email", recent(90), direction="inbound")
                emitted += 1

        total = self.count(self.activities_per_account, minimum=emitted + 1)
        if persona == "new_customer":
            total = min(total, emitted + max(1, round(self.activities_per_account * 0.4)))
        upper = now - 181 * DAY if persona == "dormant" else now - HOUR
        lower = max(plan.created_ms, now - 3 * YEAR)
        lower = min(lower, upper - DAY)
        kinds = (
            "email",
            "email",
            "email",
            "email",
            "call",
            "call",
            "call",
            "note",
            "note",
            "meeting",
            "meeting",
            "task",
            "task",
            "task",
        )
        for _ in range(total - emitted):
            kind = rng.choice(kinds)
            occurred = rng.randint(lower, upper)
            if kind == "meeting" and persona not in ("dormant", "at_risk") and rng.random() < 0.05:
                occurred = now + rng.randint(DAY, 14 * DAY)  # an upcoming meeting
            if kind == "task" and persona != "dormant" and rng.random() < 0.1:
                occurred = now + rng.randint(DAY, 21 * DAY)  # a task due soon
            self.emit_activity(company_key, contacts, plan, kind, occurred)
