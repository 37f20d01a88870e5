"""Module-level helpers for tests: reach into a running sandbox's state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette

from crm_upsell_salesforce.sandbox.org import SalesforceSandbox

# ---- module-level helpers for tests -----------------------------------------------------------------------


def sandbox_state(app: Starlette | SalesforceSandbox) -> SalesforceSandbox:
    """The :class:`SalesforceSandbox` behind an app from :func:`create_app`."""
    if isinstance(app, SalesforceSandbox):
        return app
    state: SalesforceSandbox = app.state.sandbox
    return state


def touch(
    app: Starlette | SalesforceSandbox,
    sobject: str = "Account",
    count: int | None = None,
    ids: Iterable[str] | None = None,
) -> list[str]:
    """Move SystemModstamp of ``count`` records (lowest ids first) or ``ids`` to now, all the same ms."""
    return sandbox_state(app).touch(sobject, count, ids)


def delete(
    app: Starlette | SalesforceSandbox,
    sobject: str,
    ids: Iterable[str] | None = None,
    count: int | None = None,
) -> list[str]:
    """Delete records: they leave ``query``, stay in ``queryAll`` (IsDeleted = true) and ``getDeleted``."""
    return sandbox_state(app).delete(sobject, ids, count)


def set_fields(
    app: Starlette | SalesforceSandbox, sobject: str, record_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Set field values on one record as a user would (SystemModstamp moves)."""
    return sandbox_state(app).set_fields(sobject, record_id, values)


def salesforce_id(app: Starlette | SalesforceSandbox, key: str) -> str:
    """The Salesforce id given to a scenario key (``co-000001``, ``ct-0000001``, ``owner-0001``...)."""
    return sandbox_state(app).salesforce_id(key)
