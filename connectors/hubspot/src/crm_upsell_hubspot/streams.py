"""What the HubSpot connector's parts share: its streams, their associations, millisecond stamps,
and the base class (the client, settings and mapping options) the read, write and check mixins extend.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_upsell_connector.connector import Connector
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.models import Stream
from crm_upsell_hubspot.client import HubSpotClient
from crm_upsell_hubspot.properties import MappingOptions, properties_for
from crm_upsell_hubspot.settings import HubSpotSettings

# The owners API pages up to 500 at a time (objects: 100).
OWNERS_LIMIT = 500

#: connector stream (HubSpot object type) -> canonical stream, in the order to sync.
STREAMS: dict[str, Stream] = {
    "owners": Stream.OWNERS,
    "products": Stream.PRODUCTS,
    "companies": Stream.ACCOUNTS,
    "contacts": Stream.CONTACTS,
    "deals": Stream.DEALS,
    "line_items": Stream.LINE_ITEMS,
    "calls": Stream.ACTIVITIES,
    "meetings": Stream.ACTIVITIES,
    "emails": Stream.ACTIVITIES,
    "notes": Stream.ACTIVITIES,
    "tasks": Stream.ACTIVITIES,
}
#: the association each stream's records need (the account, or the deal of a line item).
ASSOCIATION: dict[str, str] = {
    "contacts": "companies",
    "deals": "companies",
    "line_items": "deals",
    "calls": "companies",
    "meetings": "companies",
    "emails": "companies",
    "notes": "companies",
    "tasks": "companies",
}
LINK_CACHE_SIZE = 20_000
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(value: datetime) -> int:
    return (value.astimezone(UTC) - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


class HubSpotBase(Connector):
    """The state every part of the HubSpot connector reads (set by ``HubSpotConnector.__init__``)."""

    settings: HubSpotSettings
    options: MappingOptions
    client: HubSpotClient
    # (object type, id) -> (modification stamp, association links) of records read lately.
    _links: OrderedDict[tuple[str, str], tuple[datetime, list[Any]]]

    def _object_type(self, stream: str) -> str:
        if stream not in STREAMS:
            raise ConfigError(f"HubSpot has no stream {stream!r}; streams are {', '.join(STREAMS)}")
        return stream

    def _search_body(self, object_type: str, filters: list[dict[str, Any]], sort: str) -> dict[str, Any]:
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(properties_for(object_type, self.options)),
            "limit": self.settings.search_page_size,
        }
