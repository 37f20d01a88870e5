"""Ctrl-C: one line saying what was kept and how to resume, exit 130, the run recorded ``interrupted``.

The real CLI runs as a subprocess against an in-process sandbox whose answers are held back, so that
SIGINT lands while a sync reads pages or while apply waits for a write (the harness of the crash
trials in tests/reliability).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.harness import Env, _wait_for, open_env, setup_fields

INTERRUPTED = 130


def _interrupt(env: Env, command: str, started_sql: str) -> tuple[int, str]:
    """Start ``command``, SIGINT it once it is under way (its run row exists), return (code, stderr)."""
    process = subprocess.Popen(
        env.command(command), env=env.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert _wait_for(env, process, started_sql), f"{command} ended before it could be interrupted"
        time.sleep(0.3)  # inside a held-back request
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, err.decode()


def _runs(env: Env, command: str) -> list[tuple[str, dict[str, object]]]:
    rows = env.query(f"SELECT status, summary FROM runs WHERE command = '{command}' ORDER BY id")
    return [(status, json.loads(summary)) for status, summary in rows]


def _check_line(err: str, command: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("interrupted: ")
    assert f"'crm-upsell {command}' resume" in lines[0]
    assert "Traceback" not in err and "CancelledError" not in err


@pytest.mark.parametrize("crm", ["hubspot"])
def test_ctrl_c_during_sync(crm: str, tmp_path: Path) -> None:
    with open_env(crm, tmp_path) as env:
        setup_fields(env)
        env.holder.hold_s = 0.5

        code, err = _interrupt(env, "sync", "SELECT 1 FROM runs WHERE command = 'sync'")

        assert code == INTERRUPTED, err
        _check_line(err, "sync")
        ((status, summary),) = _runs(env, "sync")
        assert status == "interrupted"
        assert "CancelledError" not in json.dumps(summary)
        # The next sync carries on and finishes.
        env.holder.hold_s = 0.0
        env.must("sync")
        assert _runs(env, "sync")[-1][0] == "ok"


@pytest.mark.parametrize("crm", ["hubspot"])
def test_ctrl_c_during_apply(crm: str, tmp_path: Path) -> None:
    with open_env(crm, tmp_path) as env:
        setup_fields(env)
        env.must("sync")
        env.holder.hold_s = 0.6

        code, err = _interrupt(env, "apply", "SELECT 1 FROM runs WHERE command = 'apply'")

        assert code == INTERRUPTED, err
        _check_line(err, "apply")
        ((status, summary),) = _runs(env, "apply")
        assert status == "interrupted"
        assert "CancelledError" not in json.dumps(summary)
        # The queued writes go out on the next apply; no task twice.
        env.holder.hold_s = 0.0
        env.must("apply")
        assert _runs(env, "apply")[-1][0] == "ok"
        keys = env.query(
            "SELECT upsell_key, count(*) FROM activities WHERE upsell_key IS NOT NULL GROUP BY 1"
        )
        assert all(n == 1 for _, n in keys)
