"""Values written to the sandbox checked and stored as Zoho would, and field metadata as Zoho lists it.

Type and length rules follow "Field Types: Data Types and Length Limits"
(https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html): text up to the field's length, a
picklist value one of its actual values, integers within 32 bits, dates ``yyyy-MM-dd``, datetimes
``yyyy-MM-ddTHH:mm:ss`` with an offset, lookups as ``{"id"}`` of an existing record; a refused value is
``INVALID_DATA`` naming the field ("Insert Records", .../insert-records.html). ``field_json`` has the
shape of "Fields Metadata" (``GET /settings/fields``, .../field-meta.html).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crm_upsell_zoho.sandbox.store import JSON_TYPES, FieldDef, WriteError, parse_zoho_time

if TYPE_CHECKING:
    from crm_upsell_zoho.sandbox.org import Org

__all__ = ["coerce", "field_json"]


def coerce(org: Org, module: str, fd: FieldDef, raw: Any, path: str, se_module: str | None) -> Any:
    """The stored form of a written value; raises :class:`WriteError` (INVALID_DATA)."""

    def invalid(expected: str | None = None, message: str = "invalid data") -> WriteError:
        details: dict[str, Any] = {"api_name": fd.api_name, "json_path": path}
        if expected is not None:
            details["expected_data_type"] = expected
        return WriteError("INVALID_DATA", message, **details)

    if raw is None:
        if fd.mandatory:
            raise WriteError(
                "MANDATORY_NOT_FOUND", "required field not found", api_name=fd.api_name, json_path=path
            )
        return None
    dt = fd.data_type
    if dt in ("text", "textarea", "email", "website", "phone", "picklist"):
        if not isinstance(raw, str):
            raise invalid(dt)
        if len(raw) > fd.length:
            raise WriteError(
                "INVALID_DATA",
                "invalid data",
                maximum_length=fd.length,
                api_name=fd.api_name,
                json_path=path,
            )
        if dt == "email" and raw and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", raw):
            raise invalid(dt)
        if dt == "picklist" and fd.options and raw not in fd.options:
            raise WriteError(
                "INVALID_DATA",
                "invalid data",
                api_name=fd.api_name,
                json_path=path,
                supported_values=list(fd.options),
            )
        if fd.mandatory and not raw.strip():
            raise WriteError(
                "MANDATORY_NOT_FOUND", "required field not found", api_name=fd.api_name, json_path=path
            )
        return raw
    if dt in ("integer", "bigint"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise invalid(dt)
        if dt == "integer" and not -(2**31) <= raw < 2**31:
            raise invalid(dt)
        return raw
    if dt in ("double", "currency", "percent", "decimal"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise invalid(dt)
        return raw
    if dt == "boolean":
        if not isinstance(raw, bool):
            raise invalid(dt)
        return raw
    if dt == "date":
        if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise invalid(dt)
        try:
            datetime.strptime(raw, "%Y-%m-%d")
        except ValueError:
            raise invalid(dt) from None
        return raw
    if dt == "datetime":
        # Zoho wants yyyy-MM-ddTHH:mm:ss with an explicit offset.
        if not isinstance(raw, str) or not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)", raw
        ):
            raise invalid(dt)
        ms = parse_zoho_time(raw)
        if ms is None:
            raise invalid(dt)
        return ms // 1000 * 1000
    if dt in ("lookup", "ownerlookup"):
        ref = raw.get("id") if isinstance(raw, dict) else raw
        if isinstance(ref, int) and not isinstance(ref, bool):
            ref = str(ref)
        if not isinstance(ref, str) or not ref.isdigit():
            raise invalid("jsonobject")
        target = int(ref)
        if dt == "ownerlookup":
            if target not in org.user_by_id:
                raise invalid("jsonobject")
            return target
        target_module = fd.lookup_module if fd.lookup_module != "*" else se_module
        if target_module is None:
            raise WriteError(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="$se_module",
                json_path=path.rsplit(".", 1)[0] + ".$se_module",
            )
        if target_module not in org.tables or org.find(target_module, target) is None:
            raise invalid("jsonobject", "the related id given seems to be invalid")
        return target
    if dt == "subform":
        return _coerce_rows(org, raw, path)
    raise invalid(dt)


def _coerce_rows(org: Org, raw: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise WriteError("INVALID_DATA", "invalid data", api_name="Deal_Products", json_path=path)
    rows: list[dict[str, Any]] = []
    allowed = {"id", "Product_Name", "Quantity", "List_Price", "Billing_Frequency"}
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, dict) or set(item) - allowed:
            bad = sorted(set(item) - allowed)[0] if isinstance(item, dict) else "Deal_Products"
            raise WriteError("INVALID_DATA", "invalid data", api_name=bad, json_path=f"{where}.{bad}")
        product = item.get("Product_Name")
        ref = product.get("id") if isinstance(product, dict) else product
        if not isinstance(ref, str) or not ref.isdigit() or org.find("Products", int(ref)) is None:
            raise WriteError(
                "INVALID_DATA", "invalid data", api_name="Product_Name", json_path=f"{where}.Product_Name"
            )
        qty = item.get("Quantity", 1)
        price = item.get("List_Price", 0)
        if isinstance(qty, bool) or not isinstance(qty, int | float):
            raise WriteError(
                "INVALID_DATA", "invalid data", api_name="Quantity", json_path=f"{where}.Quantity"
            )
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise WriteError(
                "INVALID_DATA", "invalid data", api_name="List_Price", json_path=f"{where}.List_Price"
            )
        row_id = item.get("id")
        rows.append(
            {
                "id": int(row_id) if isinstance(row_id, str) and row_id.isdigit() else org.new_id(),
                "Product_Name": int(ref),
                "Quantity": qty,
                "List_Price": price,
                "Billing_Frequency": item.get("Billing_Frequency"),
            }
        )
    return rows


def field_json(org: Org, module: str, fd: FieldDef) -> dict[str, Any]:
    """One entry of GET /settings/fields."""
    lookup: dict[str, Any] = {}
    if fd.data_type == "lookup" and fd.lookup_module not in (None, "*"):
        target = org.modules[str(fd.lookup_module)]
        lookup = {"module": {"api_name": target.name, "id": str(target.id)}, "display_label": fd.label}
    return {
        "api_name": fd.api_name,
        "field_label": fd.label,
        "display_label": fd.label,
        "data_type": fd.data_type,
        "json_type": JSON_TYPES.get(fd.data_type, "string"),
        "custom_field": fd.custom,
        "id": str(fd.id),
        "length": fd.length,
        "read_only": fd.read_only,
        "field_read_only": fd.read_only,
        "system_mandatory": fd.mandatory,
        "visible": True,
        "sortable": fd.data_type not in ("subform", "textarea"),
        "filterable": fd.data_type not in ("subform",),
        "unique": {},
        "created_source": fd.source,
        "created_time": org.zt(fd.created_ms) if fd.created_ms is not None else None,
        "modified_time": org.zt(fd.created_ms) if fd.created_ms is not None else None,
        "pick_list_values": [
            {
                "display_value": fd.labels[i] if i < len(fd.labels) else v,
                "actual_value": v,
                "id": str(fd.id + 1 + i),
                "type": "used",
            }
            for i, v in enumerate(fd.options)
        ],
        "lookup": lookup,
        "decimal_place": 2 if fd.data_type in ("currency", "double", "decimal") else None,
    }
