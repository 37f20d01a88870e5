"""``crm-upsell outcomes`` and ``crm-upsell report`` as a user runs them, bad arguments included."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crm_upsell_hubspot.sandbox import create_app

from crm_upsell_connector.cli import main
from crm_upsell_connector.sandbox.outcomes import PlayOptions, request_play
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from tests.test_cli_hubspot import TOKEN_ENV, write_config


def test_outcomes_and_report_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    options = SandboxOptions(accounts=80, seed=41, search_rate_limit_max=100)
    with SandboxServer(create_app(build_scenario(accounts=80, seed=41, now=today), options)) as base_url:
        config = tmp_path / "config.toml"
        write_config(config, base_url, tmp_path / "store.sqlite3")
        text = config.read_text(encoding="utf-8").replace("holdout_share = 0.0", "holdout_share = 0.25")
        config.write_text(text, encoding="utf-8")
        os.environ[TOKEN_ENV] = options.token
        try:
            cli = ["--config", str(config)]
            assert main([*cli, "setup"]) == 0
            assert main([*cli, "run"]) == 0
            played = request_play(
                base_url, PlayOptions(seed=2, complete_share=1.0, deal_share=1.0, win_share=1.0)
            )
            assert main([*cli, "run"]) == 0
            capsys.readouterr()

            assert main([*cli, "outcomes", "--json"]) == 0
            data = json.loads(capsys.readouterr().out)
            steps = {s["step"]: s for s in data["total"]["steps"]}
            assert steps["task_done"]["count"] == len(played.completed)
            assert steps["deal_won"]["count"] == len(played.deals)
            assert data["total"]["revenue_won"] == pytest.approx(sum(d.amount for d in played.deals))
            low, high = steps["deal_won"]["ci95"]
            assert low <= steps["deal_won"]["share_of_proposed"] <= high
            assert data["held_out_proposals"] > 0
            assert all("verdict" in u for u in data["uplift"])

            assert main([*cli, "outcomes", "--by", "segment"]) == 0
            out = capsys.readouterr().out
            assert "Outcomes by segment" in out and "Uplift per rule" in out
            assert main([*cli, "outcomes", "--since", "2999-01-01", "--json"]) == 0
            assert json.loads(capsys.readouterr().out)["total"]["steps"][0]["count"] == 0

            assert main([*cli, "outcomes", "--by", "colour"]) == 2
            assert "--by" in capsys.readouterr().err
            assert main([*cli, "outcomes", "--since", "last tuesday"]) == 2
            err = capsys.readouterr().err
            assert "YYYY-MM-DD" in err and err.count("\n") == 1

            target = tmp_path / "out" / "report.html"
            assert main([*cli, "report", "--out", str(target)]) == 0
            assert str(target) in capsys.readouterr().out
            html = target.read_text(encoding="utf-8")
            assert "Uplift against the holdout" in html and options.token not in html
            blocker = tmp_path / "a-file"
            blocker.write_text("x", encoding="utf-8")
            assert main([*cli, "report", "--out", str(blocker / "report.html")]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: cannot write the report to") and err.count("\n") == 1
        finally:
            os.environ.pop(TOKEN_ENV, None)
