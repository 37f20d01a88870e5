"""``crm-upsell --version``: the product's version and each installed connector's, without importing them."""

from __future__ import annotations

from importlib import metadata

from crm_upsell_connector import __version__

ENTRY_POINT_GROUP = "crm_upsell_connector.connectors"


def version_lines() -> list[str]:
    """``crm-upsell-connector 0.1.0`` then one line per installed connector distribution."""
    lines = [f"crm-upsell-connector {__version__}"]
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist
        if dist is None or dist.name in seen:
            continue
        seen.add(dist.name)
        lines.append(f"  {ep.name}: {dist.name} {dist.version}")
    return lines
