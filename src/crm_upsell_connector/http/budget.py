"""A run's share of a CRM's daily API allowance, checked before every request is sent.

The first usage report the CRM sends back (Salesforce ``Sforce-Limit-Info``, HubSpot
``X-HubSpot-RateLimit-Daily[-Remaining]``) fixes this run's allowance: ``share`` of what was left.
A request that would go past it is never sent: the run stops with a :class:`QuotaError` and, since
sync commits each page with its cursor, the next run continues where this one stopped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from crm_upsell_connector.errors import QuotaError

log = logging.getLogger(__name__)


@dataclass
class DailyBudget:
    crm: str
    share: float
    setting: str = "daily_api_share"
    spent: int = 0  # requests this run has sent
    allowance: int | None = None  # fixed by the first usage report
    remaining_at_start: int | None = None
    used: int | None = None
    max: int | None = None

    def observe(self, used: int, maximum: int) -> None:
        """Learn from a usage report: ``used`` of ``maximum`` calls spent in the CRM's window."""
        self.used, self.max = used, maximum
        if self.allowance is None:
            # ``used`` already counts the requests this run sent before the first answer came back.
            self.remaining_at_start = max(0, maximum - used + self.spent)
            self.allowance = math.floor(self.share * self.remaining_at_start)
            log.info(
                "%s daily API calls: %d of %d used; this run may use %d (%.0f%% of what is left)",
                self.crm,
                used,
                maximum,
                self.allowance,
                self.share * 100,
            )

    def spend(self) -> None:
        """Count one request about to be sent, or refuse it when the run's share is used up."""
        if self.allowance is not None and self.spent >= self.allowance:
            raise self.exhausted()
        self.spent += 1

    def exhausted(self) -> QuotaError:
        left = f"{self.remaining_at_start} of {self.max}" if self.max is not None else "what was"
        return QuotaError(
            f"the run stopped after {self.spent} {self.crm} API calls to stay within {self.share:.0%} of "
            f"the remaining daily API allowance ({left} left at the start); "
            "the sync resumes from its checkpoints on the next run",
            hint=f"raise {self.setting} in the connection's settings, or run again when the daily "
            "allowance has room",
        )
