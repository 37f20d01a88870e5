"""Config errors: every problem at once, each with its key path; an unknown key gets the nearest valid one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from crm_upsell_connector.cli import main
from crm_upsell_connector.config import parse_config
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.init import example_text


def _broken() -> dict[str, object]:
    data = tomllib.loads(example_text())
    data["sync"]["paralel_streams"] = 4  # typo in a core section
    data["http"]["timeout_s"] = "soon"  # wrong type
    data["scoring"]["factors"][0]["wieght"] = 3  # typo in a rule section
    data["schedular"] = {"threads": 2}  # typo of a top-level section
    return data


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_broken(), "cfg.toml")

    problems = info.value.problems
    assert len(problems) == 4, problems
    text = "\n".join(problems)
    assert "cfg.toml: sync.paralel_streams: unknown key (did you mean 'parallel_streams'?)" in text
    assert "cfg.toml: http.timeout_s:" in text
    assert "cfg.toml: scoring.factors[0].wieght: unknown key (did you mean 'weight'?)" in text
    assert "cfg.toml: schedular: unknown key (did you mean 'scheduler'?)" in text


def test_an_unknown_key_with_nothing_close_lists_the_valid_keys() -> None:
    data = tomllib.loads(example_text())
    data["sync"]["zzz"] = 1
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.toml")
    assert "sync.zzz: unknown key (valid here: parallel_streams, delete_check_hours, clock_skew_s)" in str(
        info.value.problems
    )


def test_a_connection_settings_typo_gets_the_nearest_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = example_text().replace(
        'token = "keyring:hubspot-token"', 'tokn = "keyring:hubspot-token"\nrate_limit_max = "x"'
    )
    text = text.replace(
        '# url = "sqlite:////var/lib/crm-upsell/store.sqlite3"', f'url = "sqlite:///{tmp_path}/s.db"'
    )
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")

    assert main(["--config", str(path), "check"]) == 2

    err = capsys.readouterr().err
    assert "error: 2 problems in the config:" in err
    assert "connections.main.settings.tokn: unknown key (did you mean 'token'?)" in err
    assert "connections.main.settings.rate_limit_max:" in err


def test_the_cli_prints_each_problem_on_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        example_text()
        .replace("parallel_streams = 4", "paralel_streams = 4")
        .replace("timeout_s = 30.0", 'timeout_s = "soon"')
    )
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")

    assert main(["--config", str(path), "score"]) == 2

    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "error: 2 problems in the config:"
    assert any(
        "sync.paralel_streams: unknown key (did you mean 'parallel_streams'?)" in line for line in lines
    )
    assert any("http.timeout_s:" in line for line in lines)
