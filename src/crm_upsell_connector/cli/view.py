"""How ``crm-upsell run`` shows a pipeline run on the terminal."""

from __future__ import annotations

from contextlib import AbstractContextManager

from crm_upsell_connector.apply import ApplyReport
from crm_upsell_connector.cli import output
from crm_upsell_connector.config import ApplySettings
from crm_upsell_connector.guard import review_notes
from crm_upsell_connector.plan import Plan
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.sync import Progress, SyncReport


class CliView:
    """Shows a pipeline run on the terminal: progress bars, the sync table, segments, the plan."""

    def __init__(self, rules: RulesConfig | None = None, guard: ApplySettings | None = None) -> None:
        self.rules = rules
        #: the mass-change thresholds, to say under the plan which ones it goes over.
        self.guard = guard

    def progress(self, label: str) -> AbstractContextManager[Progress]:
        return output.progress_bar(label)

    def synced(self, report: SyncReport) -> None:
        output.sync_table(report)
        if report.failed:
            # Scoring on half-synced data could propose the wrong thing: write nothing this time.
            output.console.print("Nothing written to the CRM this run because a stream failed to sync.")

    def scored(self, recs: list[Recommendation]) -> None:
        output.segment_counts(recs, self.rules)

    def planned(self, plan: Plan) -> None:
        output.console.print(plan.render(limit=20))
        for line in review_notes(plan, self.guard) if self.guard is not None else []:
            output.console.print(line)

    def applied(self, report: ApplyReport) -> None:
        output.apply_summary(report)
