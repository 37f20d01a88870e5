"""CRM v4 associations: batch read of associated ids with their type ids."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from crm_upsell_hubspot.sandbox.catalog import _ASSOC_BATCH_MAX, _SINGULAR, ASSOCIATION_TYPES
from crm_upsell_hubspot.sandbox.common import _bad, _std_error
from crm_upsell_hubspot.sandbox.state import PortalState


class AssociationsMixin(PortalState):
    """The ``/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read`` route."""

    def associations_batch_read(self, from_raw: str, to_raw: str, body: Any) -> Response:
        from_type, from_table = self._table(from_raw)
        to_type, to_table = self._table(to_raw)
        inputs = self._inputs(body, _ASSOC_BATCH_MAX)
        started = self.now_ms()
        types = ASSOCIATION_TYPES.get((from_type, to_type))
        if types is None:
            raise _bad(f"No association types exist between {from_type} and {to_type}.")
        assoc_types = [{"category": "HUBSPOT_DEFINED", "typeId": tid, "label": label} for tid, label in types]
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            id_raw = str((item or {}).get("id", ""))
            rec = from_table.get(int(id_raw)) if id_raw.isdigit() else None
            targets = (
                []
                if rec is None
                else [
                    t for t in self.assoc[(from_type, to_type)].get(rec.id, []) if to_table.get(t) is not None
                ]
            )
            if not targets:
                errors.append(
                    _std_error(
                        "OBJECT_NOT_FOUND",
                        f"No {to_type} is associated with {_SINGULAR[from_type]} {id_raw}.",
                        {"fromObjectId": [id_raw]},
                        sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                    )
                )
                continue
            results.append(
                {
                    "from": {"id": id_raw},
                    "to": [{"toObjectId": str(t), "associationTypes": assoc_types} for t in targets],
                }
            )
        return self._batch_response(results, errors, started)
