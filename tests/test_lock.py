"""Never two writers: a second run on the same connection waits or exits with a clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from crm_upsell_connector.cli import main
from crm_upsell_connector.errors import BusyError, StoreError
from crm_upsell_connector.init import example_text
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.lock import RunLock


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = open_store(store_url)
    yield engine
    engine.dispose()


def test_a_second_writer_is_refused_with_a_clear_message(engine: Engine) -> None:
    with RunLock(engine, "main"):
        with pytest.raises(BusyError) as refused:
            RunLock(engine, "main").__enter__()
        assert "another run for connection 'main'" in refused.value.one_line()
        assert "--wait" in refused.value.one_line()
        with RunLock(engine, "other"):  # another connection is another writer's business
            pass
    with RunLock(engine, "main"):  # released: the next run gets it
        pass


def test_a_second_writer_can_wait_for_the_first(engine: Engine) -> None:
    first = RunLock(engine, "main").__enter__()
    releaser = threading.Timer(0.6, first.release)
    releaser.start()
    started = time.monotonic()
    with RunLock(engine, "main", wait_s=10):
        waited = time.monotonic() - started
    releaser.join()
    assert 0.4 < waited < 5


def test_a_killed_run_never_blocks_the_next(tmp_path: Path, store_url: str) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from crm_upsell_connector.store.engine import open_store
                from crm_upsell_connector.store.lock import RunLock
                lock = RunLock(open_store({store_url!r}), "main").__enter__()
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        engine = open_store(store_url)
        with pytest.raises(BusyError):
            RunLock(engine, "main").__enter__()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        with RunLock(engine, "main", wait_s=10):
            pass
        engine.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_the_cli_exits_7_with_one_line_while_another_run_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(
        example_text().replace(
            '# url = "sqlite:////var/lib/crm-upsell/store.sqlite3"', f'url = "sqlite:///{store}"'
        )
    )
    engine = open_store(f"sqlite:///{store}")
    with RunLock(engine, "main"):
        code = main(["--config", str(config), "score"])
    engine.dispose()
    err = capsys.readouterr().err
    assert code == 7
    assert err.count("\n") == 1
    assert err.startswith("error: another run for connection 'main' is writing the store right now (pid ")


@pytest.mark.postgres
def test_a_run_whose_lock_session_is_ended_stops_writing(pg_database: str) -> None:
    """The server ends the session that holds the advisory lock: the run notices before its next commit."""
    engine = open_store(pg_database)
    try:
        with RunLock(engine, "main") as lock:
            lock.ensure_held()  # held: nothing happens
            assert lock._pg is not None
            pid = lock._pg.execute(text("SELECT pg_backend_pid()")).scalar_one()
            lock._pg.commit()
            with engine.connect() as admin:
                assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
            # Another run can take the connection now, and this one must not write any more.
            with RunLock(engine, "main", wait_s=5):
                pass
            with pytest.raises(StoreError, match="run lock of connection 'main' was lost"):
                lock.ensure_held()
    finally:
        engine.dispose()
