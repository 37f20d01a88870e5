"""The report in a real headless browser (the system's Chromium, driven directly): it opens with no
console error and no request outside the file, the matrix is drawn, Japanese names are there, and the
file holds no secret and no script from outside it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_upsell_connector.report.session import write_session_report
from crm_upsell_connector.sandbox.outcomes import PlayOptions, request_play
from crm_upsell_connector.store.schema import recommendations
from tests.outcomes.support import run_once, set_up, world

JAPANESE_NAME = "株式会社テスト商事"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium on this machine ('make test' installs it with apt-get: chromium fonts-noto-cjk)"
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set: the browser test must run)")
    pytest.skip(reason)


def headless(binary: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",  # tests may run as root in a container
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            # Any request that leaves the file fails and shows as a console error.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--window-size=1280,1800",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cjk_font() -> str:
    """The font fontconfig picks for Japanese text ("CJK" in it when fonts-noto-cjk is there)."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return "CJK (no fontconfig to ask; Chromium's own fallback applies)"
    return subprocess.run([fc_match, "Noto Sans CJK JP"], capture_output=True, text=True, check=False).stdout


async def test_the_report_opens_in_a_headless_browser(tmp_path: Path) -> None:
    binary = browser()
    async with world(tmp_path, accounts=120, seed=21) as w:
        session = w.session(experiment={"holdout_share": 0.2})
        async with session.connector() as connector:
            await set_up(session, connector)
            await run_once(session, connector)
            with session.engine.connect() as conn:
                top = conn.execute(
                    select(recommendations.c.account_id)
                    .where(recommendations.c.kind.is_not(None), recommendations.c.blocked_by.is_(None))
                    .order_by((recommendations.c.uplift * recommendations.c.score).desc())
                    .limit(1)
                ).scalar_one()
            w.sandbox.set_properties("companies", top, {"name": JAPANESE_NAME})
            request_play(w.base_url, PlayOptions(seed=5, complete_share=0.8, deal_share=0.6))
            await run_once(session, connector)
        page = write_session_report(session, tmp_path / "report.html")
        session.engine.dispose()

    text = page.read_text(encoding="utf-8")
    assert JAPANESE_NAME in text
    assert oct(page.stat().st_mode & 0o777) == "0o600"  # it names customers
    # Self-contained: no script, style or image from outside the file.
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"""<(link|img|iframe)[^>]*\b(href|src)\s*=\s*["']?(https?:)?//""", text, re.I)
    assert "@import" not in text
    # No secret: the sandbox's token never reaches the report.
    assert w.options.token not in text
    assert "Bearer" not in text

    shot = tmp_path / "report.png"
    run = headless(binary, page, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console

    dom = headless(binary, page, "--dump-dom").stdout
    matrix = dom[dom.index('id="chart-matrix"') :]
    # plotly drew the heat map: its SVG, the cell texts with counts and revenue.
    assert 'class="main-svg"' in matrix
    assert re.search(r"\d+ accounts", matrix)
    assert JAPANESE_NAME in dom
    assert "CJK" in cjk_font(), "fonts-noto-cjk is needed to render Japanese names"
