"""This product's HubSpot properties: the group, the missing properties, and dropdowns made from
earlier text properties.

HubSpot documents (https://developers.hubspot.com/docs/api/crm/properties):

- ``POST /crm/v3/properties/{objectType}/batch/create`` creates properties; an existing name is a
  ``409`` / ``OBJECT_ALREADY_EXISTS`` (then they are created one at a time, existing ones skipped);
- an ``enumeration`` property's ``options`` carry a ``label`` (what users see) and a ``value`` (what
  the API reads and writes);
- ``PATCH /crm/v3/properties/{objectType}/{propertyName}`` replaces the fields given, ``type``,
  ``fieldType`` and ``options`` included
  (https://developers.hubspot.com/docs/api-reference/crm-properties-v3/core/patch-crm-v3-properties-objectType-propertyName):
  a property an earlier version created as text becomes a dropdown with the display labels, and
  a dropdown whose options changed gets the whole new list (options cannot be added one by one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import FieldSpec
from crm_upsell_hubspot.client import HubSpotClient, error_messages, results_of
from crm_upsell_hubspot.settings import HubSpotSettings

_KINDS: dict[str, tuple[str, str]] = {
    "number": ("number", "number"),
    "string": ("string", "text"),
    "text": ("string", "textarea"),
    "datetime": ("datetime", "date"),
    "enumeration": ("enumeration", "select"),
}


def option_list(spec: FieldSpec) -> list[dict[str, Any]]:
    """HubSpot options for an enumeration spec: the display label beside each value."""
    labels = spec.option_labels if len(spec.option_labels) == len(spec.options) else spec.options
    return [
        {"label": label, "value": value, "displayOrder": i, "hidden": False}
        for i, (value, label) in enumerate(zip(spec.options, labels, strict=True))
    ]


class PropertySetup:
    """Creates and converts this product's properties through one :class:`HubSpotClient`."""

    def __init__(self, client: HubSpotClient, settings: HubSpotSettings) -> None:
        self.client = client
        self.settings = settings

    async def definitions(self, object_type: str) -> dict[str, dict[str, Any]]:
        """The object type's property definitions, by name."""
        reply = await self.client.get(f"/crm/v3/properties/{object_type}")
        return {str(p.get("name")): p for p in results_of(reply)}

    def property_input(self, spec: FieldSpec) -> dict[str, Any]:
        type_, field_type = _KINDS[spec.type]
        body: dict[str, Any] = {
            "name": self.settings.property_prefix + spec.name,
            "label": spec.label,
            "description": spec.description,
            "groupName": self.settings.property_group,
            "type": type_,
            "fieldType": field_type,
        }
        if spec.type == "enumeration":
            body["options"] = option_list(spec)
        return body

    async def ensure(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the group and the missing properties; convert text ones into the dropdowns now
        wanted (and refresh their options). Returns the HubSpot names created or changed."""
        by_object: dict[str, list[FieldSpec]] = {}
        for spec in specs:
            by_object.setdefault("companies" if spec.object == "account" else "tasks", []).append(spec)
        changed: list[str] = []
        for object_type, wanted in by_object.items():
            existing = await self.definitions(object_type)
            missing = [s for s in wanted if self.settings.property_prefix + s.name not in existing]
            if missing:
                await self._ensure_group(object_type)
                changed.extend(await self._create(object_type, missing))
            for spec in wanted:
                current = existing.get(self.settings.property_prefix + spec.name)
                if current is not None and self._needs_dropdown(spec, current):
                    changed.append(await self._to_dropdown(object_type, spec))
        return changed

    @staticmethod
    def _needs_dropdown(spec: FieldSpec, current: dict[str, Any]) -> bool:
        if spec.type != "enumeration":
            return False
        if current.get("type") != "enumeration":
            return True
        have = [(str(o.get("value")), str(o.get("label"))) for o in current.get("options") or []]
        return have != [(o["value"], o["label"]) for o in option_list(spec)]

    async def _to_dropdown(self, object_type: str, spec: FieldSpec) -> str:
        name = self.settings.property_prefix + spec.name
        await self.client.patch(
            f"/crm/v3/properties/{object_type}/{name}",
            {"type": "enumeration", "fieldType": "select", "options": option_list(spec)},
            endpoint=f"PATCH /crm/v3/properties/{object_type}/{{name}}",
        )
        return name

    async def _ensure_group(self, object_type: str) -> None:
        reply = await self.client.get(f"/crm/v3/properties/{object_type}/groups")
        if self.settings.property_group in {str(g.get("name")) for g in results_of(reply)}:
            return
        try:
            await self.client.post(
                f"/crm/v3/properties/{object_type}/groups",
                {"name": self.settings.property_group, "label": "CRM Upsell", "displayOrder": -1},
                idempotent=True,
            )
        except FatalAPIError as exc:
            if exc.status_code != 409:
                raise

    async def _create(self, object_type: str, specs: list[FieldSpec]) -> list[str]:
        inputs = [self.property_input(s) for s in specs]
        try:
            reply = await self.client.post(
                f"/crm/v3/properties/{object_type}/batch/create", {"inputs": inputs}, idempotent=True
            )
        except FatalAPIError as exc:
            if exc.status_code != 409:
                raise
            return await self._create_one_by_one(object_type, inputs)
        created = [str(p.get("name")) for p in results_of(reply)]
        failures = [
            text
            for error, text in error_messages(reply.get("errors"))
            if str(error.get("category")) != "CONFLICT" and "already exists" not in text.lower()
        ]
        if failures:
            raise FatalAPIError(
                f"HubSpot did not create the {object_type} properties: " + "; ".join(failures)
            )
        return created

    async def _create_one_by_one(self, object_type: str, inputs: list[dict[str, Any]]) -> list[str]:
        created: list[str] = []
        for body in inputs:
            try:
                await self.client.post(f"/crm/v3/properties/{object_type}", body, idempotent=True)
            except FatalAPIError as exc:
                if exc.status_code != 409:
                    raise
                continue
            created.append(str(body["name"]))
        return created
