"""getDeleted (and the in-process helpers that change or delete records as users would)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import (
    DELETED_WINDOW_MS,
    Fail,
    sf_datetime,
)
from crm_upsell_salesforce.sandbox.soql_parse import (
    id15_to_18,
    parse_datetime_ms,
)


class ReplicationApi(OrgBase):
    """``sobjects/{type}/deleted`` and the test helpers behind it."""

    def touch(
        self,
        otype: str = "Account",
        count: int | None = None,
        ids: Iterable[str] | None = None,
        *,
        same_ms: bool = True,
    ) -> list[str]:
        """Move SystemModstamp/LastModifiedDate of ``count`` records (lowest ids first) or ``ids`` to now."""
        with self.lock:
            table = self._table(otype)
            chosen = list(ids) if ids is not None else [i for i in table.ids if table.live(i)][: count or 0]
            now = self.now_ms()
            done: list[str] = []
            for n, raw in enumerate(chosen):
                rec = table.live(id15_to_18(raw))
                if rec is None:
                    continue
                table.touch(rec, now if same_ms else now + n)
                done.append(rec.id)
            return done

    def delete(self, otype: str, ids: Iterable[str] | None = None, count: int | None = None) -> list[str]:
        """Delete records (to the recycle bin): gone from query, visible in queryAll and getDeleted."""
        with self.lock:
            table = self._table(otype)
            chosen = list(ids) if ids is not None else [i for i in table.ids if table.live(i)][: count or 0]
            now = self.now_ms()
            done: list[str] = []
            for raw in chosen:
                rec = table.live(id15_to_18(raw))
                if rec is not None:
                    table.delete(rec, now)
                    done.append(rec.id)
            return done

    # -- getDeleted

    def purge_deleted(self, otype: str) -> list[str]:
        """Empty the Recycle Bin of ``otype`` (as an admin, a hard delete, or the purge that follows a
        mass delete within hours does): the records leave ``queryAll`` and getDeleted for good, and
        getDeleted's ``earliestDateAvailable`` moves to now."""
        with self.lock:
            table = self._table(otype)
            gone = [table.recs[i] for _ms, i in list(table.deleted)]
            for rec in gone:
                table.purge(rec)
            self.earliest_deleted_ms[table.name] = self.now_ms()
            return [rec.id for rec in gone]

    def get_deleted(self, request: Request) -> Response:
        otype = self._known(str(request.path_params["sobject"]))
        params = request.query_params
        for name in ("start", "end"):
            if not params.get(name):
                raise Fail(400, "MISSING_ARGUMENT", f"Missing required parameter: {name}")
        start = parse_datetime_ms(params["start"])
        end = parse_datetime_ms(params["end"])
        if start is None or end is None:
            raise Fail(
                400,
                "INVALID_REPLICATION_DATE",
                "start and end must be ISO 8601 datetimes (YYYY-MM-DDThh:mm:ss+hh:mm)",
            )
        # The API ignores the seconds portion of both bounds.
        start -= start % 60_000
        end -= end % 60_000
        now = self.now_ms()
        earliest = now - DELETED_WINDOW_MS
        earliest -= earliest % 60_000
        if start >= end:
            raise Fail(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        if start < earliest:
            raise Fail(
                400,
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be more than 15 days ago; earliest available: {sf_datetime(earliest)}",
            )
        covered = min(end, now)
        table = self.tables[otype]
        lo = bisect.bisect_left(table.deleted, (start, ""))
        hi = bisect.bisect_right(table.deleted, (covered, "\uffff"))
        deleted = [{"id": id_, "deletedDate": sf_datetime(ms)} for ms, id_ in table.deleted[lo:hi]]
        return JSONResponse(
            {
                "deletedRecords": deleted,
                # "the timestamp of the last physically deleted object" (SOAP API Developer Guide,
                # "GetDeletedResult"): deletes before it may be gone without a trace.
                "earliestDateAvailable": sf_datetime(max(earliest, self.earliest_deleted_ms.get(otype, 0))),
                "latestDateCovered": sf_datetime(covered),
            }
        )
