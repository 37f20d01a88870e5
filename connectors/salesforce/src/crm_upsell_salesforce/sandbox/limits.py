"""``/limits`` and the API versions list."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from crm_upsell_salesforce.sandbox.base import OrgBase


class LimitsApi(OrgBase):
    """The org's limits."""

    def limits(self) -> Response:
        daily = self.runtime.daily
        return JSONResponse(
            {
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                "DailyApiRequests": {"Max": daily.limit, "Remaining": max(0, daily.limit - daily.used)},
                "DailyAsyncApexExecutions": {"Max": 250_000, "Remaining": 250_000},
                "DailyBulkApiBatches": {"Max": 15_000, "Remaining": 15_000},
                "DailyBulkV2QueryJobs": {"Max": 10_000, "Remaining": 10_000},
                "DataStorageMB": {"Max": 5_120, "Remaining": 5_000},
                "FileStorageMB": {"Max": 20_480, "Remaining": 20_400},
                "HourlyTimeBasedWorkflow": {"Max": 1_000, "Remaining": 1_000},
            }
        )
