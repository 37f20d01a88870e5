"""``crm-upsell schedule`` as an admin runs it: a real worker process, sandbox CRMs, a SQLite store.

A stop on SIGTERM keeps the page in flight and the next run resumes from it; ticks missed while no
worker ran are coalesced into one run; a failed run is tried again after the backoff; JSON log lines
parse; and several connections keep their data, rules and secrets apart.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_upsell_connector.cli import main
from crm_upsell_connector.init import example_text
from tests.scheduling.support import Setup, setup, sqlite_rows, wait_for


def _store(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "store.sqlite3"
    return path, f"sqlite:///{path}"


def _runs(store: Path) -> list[dict[str, Any]]:
    rows = sqlite_rows(
        store,
        "SELECT id, connection, status, started_at, finished_at, summary FROM runs WHERE command = 'run' ORDER BY id",
    )
    return [
        {
            "id": r[0],
            "connection": r[1],
            "status": r[2],
            "started_at": r[3],
            "finished_at": r[4],
            **json.loads(r[5]),
        }
        for r in rows
    ]


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout_s)


def _wait_for_first_pages(store: Path) -> None:
    wait_for(
        lambda: bool(
            sqlite_rows(store, "SELECT 1 FROM sync_state WHERE full_started_at IS NOT NULL AND records > 0")
        ),
        60,
        "the first pages of a full sync",
        poll_s=0.05,
    )


def _log(env: Setup) -> str:
    return env.logs[-1].read_text(encoding="utf-8", errors="replace")


def test_sigterm_stops_after_the_current_page_and_the_next_run_resumes(tmp_path: Path) -> None:
    store, url = _store(tmp_path)
    with setup(
        tmp_path, [("main", "hubspot")], url, accounts=150, latency_ms=60, schedules={"main": 'every = "2s"'}
    ) as env:
        assert env.cli("setup").returncode == 0
        worker = env.start_worker()
        try:
            _wait_for_first_pages(store)
            stopped_at = time.monotonic()
            assert _stop(worker) == 0, _log(env)
            took = time.monotonic() - stopped_at
        finally:
            if worker.poll() is None:
                worker.kill()
        log = _log(env)
        assert "received SIGTERM" in log and "run stopped at a checkpoint" in log, log
        assert took < 10, f"the worker took {took:.1f}s to stop"
        (run,) = _runs(store)
        assert run["status"] == "stopped", run
        # Streams stopped mid-read kept their position; nothing is half-written.
        resumable = sqlite_rows(store, "SELECT stream FROM sync_state WHERE full_started_at IS NOT NULL")
        assert resumable
        done = env.cli("run")
        assert done.returncode == 0, done.stderr
        assert "resumed" in done.stdout, done.stdout
        assert not sqlite_rows(store, "SELECT 1 FROM outbox WHERE status IN ('pending', 'sent', 'failed')")


def test_missed_ticks_run_once_on_restart_and_json_logs_parse(tmp_path: Path) -> None:
    store, url = _store(tmp_path)
    with setup(tmp_path, [("main", "hubspot")], url, schedules={"main": 'every = "2s"'}) as env:
        assert env.cli("setup").returncode == 0
        first = env.start_worker()
        try:
            wait_for(lambda: any(r["status"] == "ok" for r in _runs(store)), 60, "a first scheduled run")
        finally:
            assert _stop(first) == 0
        ((next_run,),) = sqlite_rows(store, "SELECT next_run_time FROM scheduler_jobs WHERE id = 'run:main'")
        # Let at least two ticks pass with no worker running.
        time.sleep(max(0.0, next_run - time.time()) + 4.5)
        before = {r["id"] for r in _runs(store)}
        second = env.start_worker("--log-format", "json")
        try:
            wait_for(
                lambda: len([r for r in _runs(store) if r["id"] not in before and r["status"] == "ok"]) >= 2,
                60,
                "two runs after the restart",
            )
        finally:
            assert _stop(second) == 0
        lines = [line for line in _log(env).splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]
        assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
        restarted_at = datetime.fromisoformat(
            next(r["ts"] for r in records if r["message"] == "worker started")
        )
        assert restarted_at.timestamp() > next_run + 4
        after = [r for r in _runs(store) if r["id"] not in before]
        missed = [r for r in after if datetime.fromisoformat(r["tick"]) < restarted_at]
        # Coalesced: one run for all the ticks missed while no worker ran, for the latest of them.
        assert len(missed) == 1, [r["tick"] for r in after]
        assert datetime.fromisoformat(missed[0]["tick"]) > restarted_at - timedelta(seconds=2)
        for secret in env.crms[0].secrets.values():
            assert secret not in _log(env)
        finished = [r for r in records if r["message"] == "run finished"]
        assert finished and all(r["connection"] == "main" and r["status"] == "ok" for r in finished)


def test_a_failed_run_is_retried_after_the_backoff(tmp_path: Path) -> None:
    store, url = _store(tmp_path)
    with setup(
        tmp_path,
        [("main", "hubspot")],
        url,
        schedules={"main": 'every = "10s"'},
        scheduler={"retries": 2, "retry_backoff_s": 2.0},
        http={"max_attempts": 1, "backoff_initial_s": 0.1},
    ) as env:
        assert env.cli("setup").returncode == 0
        base_url = env.crms[0].settings["base_url"]
        httpx.post(f"{base_url}/__sandbox/faults", json={"error_rate": 1.0}).raise_for_status()
        worker = env.start_worker()
        healed = threading.Event()

        def heal_after_first_failure() -> None:
            wait_for(
                lambda: any(r["status"] in ("partial", "failed") for r in _runs(store)),
                60,
                "a failed run",
                poll_s=0.05,
            )
            httpx.post(f"{base_url}/__sandbox/faults", json={"error_rate": 0.0}).raise_for_status()
            healed.set()

        healer = threading.Thread(target=heal_after_first_failure, daemon=True)
        healer.start()
        try:
            wait_for(lambda: any(r["status"] == "ok" for r in _runs(store)), 60, "a successful retry")
        finally:
            assert _stop(worker) == 0
        assert healed.is_set()
        runs = _runs(store)
        failed = next(r for r in runs if r["status"] in ("partial", "failed"))
        retry = next(r for r in runs if r["status"] == "ok")
        assert retry["tick"] == failed["tick"], "the retry belongs to the same tick"
        assert retry["attempt"] == failed["attempt"] + 1
        gap = datetime.fromisoformat(retry["started_at"]) - datetime.fromisoformat(failed["finished_at"])
        assert gap >= timedelta(seconds=1.9)
        assert "retrying after a failed run" in _log(env)


def test_connections_keep_their_data_rules_and_secrets_apart(tmp_path: Path) -> None:
    store, url = _store(tmp_path)
    rules = example_text()
    rules = rules[rules.index("# --- rules ---") :].replace(
        'subject = "$kind_label: propose', 'subject = "EMEA $kind_label: propose', 1
    )
    assert "EMEA" in rules
    (tmp_path / "emea-rules.toml").write_text(rules, encoding="utf-8")
    with setup(
        tmp_path,
        [("us", "hubspot"), ("emea", "hubspot"), ("org", "salesforce")],
        url,
        connection_extra={"emea": {"rules": "emea-rules.toml"}},
    ) as env:
        for name in ("us", "emea", "org"):
            assert env.cli("--connection", name, "setup").returncode == 0
            done = env.cli("--connection", name, "run")
            assert done.returncode == 0, done.stderr
        # Each connection's records come from its own CRM only.
        for crm in env.crms:
            stored = {
                r[0] for r in sqlite_rows(store, f"SELECT id FROM accounts WHERE connection = '{crm.name}'")
            }
            assert stored and set(crm.account_fields()) <= stored
            keys = {
                r[0] for r in sqlite_rows(store, f"SELECT key FROM task_keys WHERE connection = '{crm.name}'")
            }
            assert keys == {k for k, _ in crm.tasks()}
        subjects = {
            name: [
                json.loads(p)["subject"]
                for (p,) in sqlite_rows(
                    store, f"SELECT payload FROM outbox WHERE kind = 'task' AND connection = '{name}'"
                )
            ]
            for name in ("us", "emea")
        }
        assert subjects["emea"] and all(s.startswith("EMEA ") for s in subjects["emea"])
        assert subjects["us"] and not any(s.startswith("EMEA ") for s in subjects["us"])
        # Swapping one connection's secret for another's is refused by that CRM, and only there.
        us_env = next(k for k in env.crms[0].secrets)
        emea_env = next(k for k in env.crms[1].secrets)
        env.environ[us_env] = env.crms[1].secrets[emea_env]
        refused = env.cli("--connection", "us", "run")
        assert refused.returncode == 3, refused.stderr
        assert refused.stderr.startswith("error:") and len(refused.stderr.strip().splitlines()) == 1
        assert env.crms[1].secrets[emea_env] not in refused.stderr
        assert env.cli("--connection", "emea", "run").returncode == 0
        status = env.cli("status", "--json")
        report = json.loads(status.stdout)
        by_name = {c["name"]: c for c in report["connections"]}
        assert by_name["us"]["credentials"]["state"] == "rejected"
        assert by_name["emea"]["credentials"]["state"] == "ok"
        assert by_name["org"]["last_run"]["status"] == "ok"
        assert status.returncode == 1


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return code, lines[0]


def test_schedule_refuses_what_it_cannot_do_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        example_text().replace("sqlite:////var/lib", "sqlite:////nonexistent"), encoding="utf-8"
    )
    code, line = _one_error(capsys, ["--config", str(config), "schedule"])
    assert code == 2 and "no connection has a schedule" in line and "every = '15m'" in line
    code, line = _one_error(capsys, ["--config", str(config), "--connection", "main", "schedule"])
    assert code == 2 and "--connection does not apply" in line
    code, line = _one_error(capsys, ["--config", str(config), "--log-format", "xml", "schedule"])
    assert code == 2 and "--log-format 'xml'" in line


def test_a_manual_run_stops_at_a_checkpoint_on_sigterm_with_exit_143(tmp_path: Path) -> None:
    store, url = _store(tmp_path)
    with setup(tmp_path, [("main", "hubspot")], url, accounts=150, latency_ms=60) as env:
        assert env.cli("setup").returncode == 0
        process = subprocess.Popen(
            env.command("run"), env=env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            _wait_for_first_pages(store)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 143, err
        lines = err.decode().strip().splitlines()
        assert lines[-1].startswith("stopped: sync stopped on request"), lines
        (run,) = _runs(store)
        assert run["status"] == "stopped" and run["error_kind"] == "StopRequested"
        again = env.cli("run")
        assert again.returncode == 0 and "resumed" in again.stdout, again.stderr
