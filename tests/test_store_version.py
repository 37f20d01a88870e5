"""A store migrated by another version of crm-upsell is a clear store error, never an internal error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crm_upsell_connector.errors import StoreError
from crm_upsell_connector.store.engine import open_store


def test_a_store_from_another_version_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    open_store(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'zz_from_a_newer_version'")

    with pytest.raises(StoreError) as info:
        open_store(f"sqlite:///{path}")

    message = info.value.one_line()
    assert "migrated by another version of crm-upsell" in message
    assert "zz_from_a_newer_version" in message
    assert info.value.exit_code == 4
