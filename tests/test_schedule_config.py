"""``[connections.NAME.schedule]``, ``[scheduler]`` and per-connection rule files in config.toml.

A schedule mistake must fail when the config loads, as one line naming the file and the key path,
never later inside a background worker; a connection's own rule file replaces the top-level rules
for that connection only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crm_upsell_connector.cli import main
from crm_upsell_connector.config import ScheduleSettings, load_config, parse_config
from crm_upsell_connector.errors import ConfigError, RuleError
from crm_upsell_connector.init import example_text

SOURCE = "team.toml"


def with_schedule(schedule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "connections": {"main": {"crm": "hubspot", "settings": {"token": "env:T"}, "schedule": schedule}}
    }
    data.update(extra)
    return data


def config_error(data: dict[str, Any]) -> str:
    """The one line a user sees for ``data``; fails the test when it loads."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, SOURCE)
    line = info.value.one_line()
    assert "\n" not in line
    assert line.startswith(f"{SOURCE}: ")
    return line


# --- valid schedules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "seconds"), [("15m", 900), ("90s", 90), ("2h", 7200), ("1d", 86400), ("1.5m", 90)]
)
def test_valid_intervals_are_accepted(every: str, seconds: int) -> None:
    config = parse_config(with_schedule({"every": every}), SOURCE)

    schedule = config.connections["main"].schedule
    assert schedule is not None
    assert schedule.every == every
    assert schedule.enabled is True
    assert schedule.describe() == f"every {every}"
    # Two consecutive fire times are exactly the interval apart.
    trigger = schedule.trigger()
    first = trigger.get_next_fire_time(None, datetime(2025, 3, 4, 10, 1, tzinfo=UTC))
    second = trigger.get_next_fire_time(first, first)
    assert (second - first).total_seconds() == seconds


def test_valid_cron_with_a_timezone_is_accepted() -> None:
    config = parse_config(
        with_schedule({"cron": "0 6-20 * * mon-fri", "timezone": "Europe/Berlin", "enabled": False}), SOURCE
    )

    schedule = config.connections["main"].schedule
    assert schedule is not None
    assert (schedule.cron, schedule.every, schedule.timezone, schedule.enabled) == (
        "0 6-20 * * mon-fri",
        None,
        "Europe/Berlin",
        False,
    )
    assert schedule.describe() == "cron '0 6-20 * * mon-fri' (Europe/Berlin)"


def test_a_connection_without_schedule_has_none() -> None:
    config = parse_config({"connections": {"main": {"crm": "hubspot"}}}, SOURCE)
    assert config.connections["main"].schedule is None
    assert config.scheduler.retries == 3  # [scheduler] defaults


def test_scheduler_section_values_are_kept() -> None:
    config = parse_config(
        with_schedule(
            {"every": "15m"},
            scheduler={"threads": 8, "retries": 0, "retry_backoff_s": 5, "heartbeat_s": 10},
        ),
        SOURCE,
    )
    assert (config.scheduler.threads, config.scheduler.retries) == (8, 0)
    assert (config.scheduler.retry_backoff_s, config.scheduler.heartbeat_s) == (5.0, 10.0)


# --- fire times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 3, 4, 10, 0, 1, tzinfo=UTC),
        datetime(2025, 3, 4, 10, 7, 30, tzinfo=UTC),
        datetime(2025, 3, 4, 10, 14, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_15_minute_interval_fires_on_the_quarter_hour_whenever_it_is_computed(now: datetime) -> None:
    trigger = ScheduleSettings(every="15m").trigger()
    assert trigger.get_next_fire_time(None, now) == datetime(2025, 3, 4, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
def test_interval_ticks_are_counted_in_utc_whatever_the_timezone(timezone: str) -> None:
    """Workers in different zones (even half-hour offsets) agree on the same quarter-hour ticks."""
    trigger = ScheduleSettings(every="15m", timezone=timezone).trigger()
    ticks = []
    previous = None
    now = datetime(2025, 6, 30, 23, 50, tzinfo=UTC)
    for _ in range(4):
        previous = trigger.get_next_fire_time(previous, now)
        ticks.append(previous.astimezone(UTC))
        now = previous
    assert ticks == [
        datetime(2025, 7, 1, 0, 0, tzinfo=UTC),
        datetime(2025, 7, 1, 0, 15, tzinfo=UTC),
        datetime(2025, 7, 1, 0, 30, tzinfo=UTC),
        datetime(2025, 7, 1, 0, 45, tzinfo=UTC),
    ]


def test_a_tick_exactly_now_is_the_next_one_and_a_microsecond_later_is_not() -> None:
    trigger = ScheduleSettings(every="15m").trigger()
    at = datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, at) == at
    assert trigger.get_next_fire_time(None, at.replace(microsecond=1)) == datetime(
        2025, 3, 4, 10, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Summer (CEST, UTC+2): 06:00 in Berlin is 04:00 UTC.
        (datetime(2025, 7, 1, 0, 0, tzinfo=UTC), datetime(2025, 7, 1, 4, 0, tzinfo=UTC)),
        # Winter (CET, UTC+1): 06:00 in Berlin is 05:00 UTC.
        (datetime(2025, 1, 15, 0, 0, tzinfo=UTC), datetime(2025, 1, 15, 5, 0, tzinfo=UTC)),
        # After 06:00 Berlin time the next one is tomorrow's.
        (datetime(2025, 1, 15, 5, 0, 1, tzinfo=UTC), datetime(2025, 1, 16, 5, 0, tzinfo=UTC)),
        # The night the clocks go forward (30 March 2025), still 06:00 local: 04:00 UTC.
        (datetime(2025, 3, 30, 0, 0, tzinfo=UTC), datetime(2025, 3, 30, 4, 0, tzinfo=UTC)),
    ],
)
def test_a_berlin_cron_fires_at_the_right_utc_instant(now: datetime, expected: datetime) -> None:
    trigger = ScheduleSettings(cron="0 6 * * *", timezone="Europe/Berlin").trigger()
    fire = trigger.get_next_fire_time(None, now)
    assert fire == expected
    assert fire.utcoffset() is not None  # an aware datetime, never a naive one


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 6 * * 1-5", datetime(2025, 3, 10, 6, 0, tzinfo=UTC)),  # Monday 10 March
        ("0 9 * * 0", datetime(2025, 3, 9, 9, 0, tzinfo=UTC)),  # Sunday 9 March
        ("0 9 * * 7", datetime(2025, 3, 9, 9, 0, tzinfo=UTC)),  # Sunday 9 March
    ],
)
def test_cron_weekday_numbers_mean_what_they_mean_in_crontab(cron: str, expected: datetime) -> None:
    friday_evening = datetime(2025, 3, 7, 21, 0, tzinfo=UTC)
    trigger = ScheduleSettings(cron=cron).trigger()
    assert trigger.get_next_fire_time(None, friday_evening) == expected


@pytest.mark.parametrize("every", ["3000000d", "9999999999d"])
def test_an_interval_too_long_to_schedule_is_a_config_error(every: str) -> None:
    def load_and_schedule() -> None:
        config = parse_config(with_schedule({"every": every}), SOURCE)
        schedule = config.connections["main"].schedule
        assert schedule is not None
        schedule.trigger().get_next_fire_time(None, datetime(2025, 3, 4, tzinfo=UTC))

    with pytest.raises(ConfigError, match=r"connections\.main\.schedule\.every"):
        load_and_schedule()


# --- invalid schedules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "path", "what"),
    [
        ({"cron": "*/15 * * * *", "every": "15m"}, "connections.main.schedule:", "exactly one of"),
        ({}, "connections.main.schedule:", "exactly one of"),
        ({"timezone": "UTC"}, "connections.main.schedule:", "exactly one of"),
        ({"every": "15"}, "connections.main.schedule.every:", "not an interval"),
        ({"every": "fifteen minutes"}, "connections.main.schedule.every:", "not an interval"),
        ({"every": "0s"}, "connections.main.schedule.every:", "at least 1s"),
        ({"every": "0.5s"}, "connections.main.schedule.every:", "at least 1s"),
        ({"cron": "61 * * * *"}, "connections.main.schedule:", "61"),
        ({"cron": "* * *"}, "connections.main.schedule:", "5 fields"),
        ({"cron": "@daily"}, "connections.main.schedule:", "5 fields"),
        ({"every": "15m", "timezone": "Mars/Olympus"}, "connections.main.schedule.timezone:", "Mars/Olympus"),
        ({"every": "15m", "timezone": ""}, "connections.main.schedule.timezone:", "unknown time zone"),
        ({"every": "15m", "tz": "UTC"}, "connections.main.schedule.tz:", "unknown key"),
        ({"every": "15m", "enabled": "sometimes"}, "connections.main.schedule.enabled:", "bool"),
    ],
)
def test_bad_schedules_are_one_line_naming_the_key(schedule: dict[str, Any], path: str, what: str) -> None:
    line = config_error(with_schedule(schedule))
    assert path in line
    assert what in line


def test_a_bad_cron_line_is_quoted_in_the_message() -> None:
    line = config_error(with_schedule({"cron": "61 * * * *"}))
    assert "cron '61 * * * *'" in line
    assert "59" in line  # says what the limit is


def test_an_unknown_timezone_suggests_an_iana_name() -> None:
    line = config_error(with_schedule({"every": "15m", "timezone": "CEST+2"}))
    assert "unknown time zone 'CEST+2'" in line
    assert "Europe/Berlin" in line


def test_a_schedule_that_is_not_a_table_is_rejected() -> None:
    line = config_error(with_schedule("*/15 * * * *"))  # type: ignore[arg-type]
    assert "connections.main.schedule:" in line


@pytest.mark.parametrize(
    ("scheduler", "path"),
    [
        ({"retries": -1}, "scheduler.retries:"),
        ({"threads": 0}, "scheduler.threads:"),
        ({"heartbeat_s": 0}, "scheduler.heartbeat_s:"),
        ({"threadz": 4}, "scheduler.threadz:"),
    ],
)
def test_bad_scheduler_settings_are_one_line_naming_the_key(scheduler: dict[str, Any], path: str) -> None:
    line = config_error(with_schedule({"every": "15m"}, scheduler=scheduler))
    assert path in line
    if scheduler == {"retries": -1}:
        assert "greater than or equal to 0" in line


def test_a_schedule_mistake_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[connections.eu]\ncrm = "hubspot"\n\n[connections.eu.schedule]\nevery = "15"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = info.value.one_line()
    assert line.startswith(f"{path}: connections.eu.schedule.every: ")
    assert "'15' is not an interval" in line


# --- per-connection rule files -------------------------------------------------------------------

RULES_MARK = "# --- rules ---"


def rule_text(cooldown: int = 90, currency: str = "USD") -> str:
    """The example's rule sections (everything below its rules marker), with two values changed."""
    text = example_text().split(RULES_MARK, 1)[1]
    assert "cooldown_days = 90 " in text and '# currency = "USD"' in text
    # The example leaves [tasks] currency out (the CRM says it); this file sets it.
    return text.replace("cooldown_days = 90 ", f"cooldown_days = {cooldown} ").replace(
        '# currency = "USD"', f'currency = "{currency}"'
    )


def write_two_connections(tmp_path: Path, rules_ref: str) -> Path:
    """main uses the top-level rules; emea names its own rule file (written by the caller)."""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""\
[connections.main]
crm = "hubspot"

[connections.main.settings]
token = "env:MAIN_TOKEN"

[connections.emea]
crm = "hubspot"
rules = "{rules_ref}"

[connections.emea.settings]
token = "env:EMEA_TOKEN"

{RULES_MARK}{rule_text()}""",
        encoding="utf-8",
    )
    return path


def test_a_connections_rule_file_replaces_the_top_level_rules_for_it_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "emea.toml").write_text(rule_text(cooldown=30, currency="EUR"), encoding="utf-8")
    config_path = write_two_connections(tmp_path, "rules/emea.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the rule file is found relative to the config file, not the cwd

    config = load_config(config_path)

    emea, main_rules = config.rules_for("emea"), config.rules_for("main")
    assert (emea.guardrails.cooldown_days, emea.tasks.currency) == (30.0, "EUR")
    assert (main_rules.guardrails.cooldown_days, main_rules.tasks.currency) == (90.0, "USD")
    assert main_rules is config.rules
    # The rule file is a complete rule set, compiled like the top-level one.
    assert [p.sku for p in emea.products] == [p.sku for p in main_rules.products]
    assert len(emea.compiled.rules) == len(main_rules.compiled.rules) > 0


def test_a_rule_file_can_be_given_as_an_absolute_path(tmp_path: Path) -> None:
    rule_file = tmp_path / "shared" / "small.toml"
    rule_file.parent.mkdir()
    rule_file.write_text(
        '[[products]]\nsku = "ONLY"\nname = "Only product"\nfamily = "x"\ntier = 1\nunit_price = 1.0\n',
        encoding="utf-8",
    )
    config = load_config(write_two_connections(tmp_path, str(rule_file)))

    assert [p.sku for p in config.rules_for("emea").products] == ["ONLY"]
    assert len(config.rules_for("main").products) == 8


def test_a_missing_rule_file_names_the_path_and_the_key(tmp_path: Path) -> None:
    config_path = write_two_connections(tmp_path, "rules/missing.toml")

    with pytest.raises(ConfigError) as info:
        load_config(config_path)

    line = info.value.one_line()
    assert "\n" not in line
    assert line.startswith(f"{config_path}: connections.emea.rules: ")
    assert str(tmp_path / "rules" / "missing.toml") in line
    assert "no rule file" in line


def test_a_rule_file_with_a_non_rule_section_is_rejected(tmp_path: Path) -> None:
    rule_file = tmp_path / "emea.toml"
    rule_file.write_text(rule_text() + '\n[store]\nurl = "sqlite:///other.db"\n', encoding="utf-8")
    config_path = write_two_connections(tmp_path, "emea.toml")

    with pytest.raises(ConfigError) as info:
        load_config(config_path)

    line = info.value.one_line()
    assert "\n" not in line
    assert str(rule_file) in line
    assert "store: not a rule section" in line


def test_a_rule_file_that_is_not_toml_names_the_rule_file(tmp_path: Path) -> None:
    rule_file = tmp_path / "emea.toml"
    rule_file.write_text('[guardrails]\ncooldown_days = "30\n', encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_config(write_two_connections(tmp_path, "emea.toml"))

    line = info.value.one_line()
    assert "\n" not in line
    assert str(rule_file) in line and "not valid TOML" in line


def test_a_broken_expression_in_a_rule_file_is_a_rule_error_naming_that_file(tmp_path: Path) -> None:
    rule_file = tmp_path / "emea.toml"
    good = 'when = "score >= 75.0 && inbound_90d >= 6.0"'
    assert good in rule_text()
    rule_file.write_text(rule_text().replace(good, 'when = "score >= && inbound_90d"'), encoding="utf-8")
    config_path = write_two_connections(tmp_path, "emea.toml")

    with pytest.raises(RuleError) as info:
        load_config(config_path)

    line = info.value.one_line()
    assert "\n" not in line
    assert line.startswith(f"{rule_file}: ")
    assert "upgrades[1].when" in line


def test_an_unknown_key_in_a_rule_file_names_that_file(tmp_path: Path) -> None:
    rule_file = tmp_path / "emea.toml"
    rule_file.write_text("[guardrails]\ncooldown_dayz = 30\n", encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_config(write_two_connections(tmp_path, "emea.toml"))

    line = info.value.one_line()
    assert str(rule_file) in line and "cooldown_dayz" in line


# --- the CLI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ('every = "15"', "connections.main.schedule.every: "),
        ('cron = "61 * * * *"', "connections.main.schedule: "),
        ('every = "15m"\ncron = "0 * * * *"', "connections.main.schedule: "),
        ('every = "15m"\ntimezone = "Berlin"', "connections.main.schedule.timezone: "),
    ],
)
@pytest.mark.parametrize("command", ["check", "status"])
def test_the_cli_reports_a_bad_schedule_as_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], schedule: str, expected: str, command: str
) -> None:
    text = example_text().replace(
        "# [connections.main.schedule]\n", f"[connections.main.schedule]\n{schedule}\n", 1
    )
    assert f"[connections.main.schedule]\n{schedule}" in text
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")

    code = main(["--config", str(config), command])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {config}: {expected}")


def test_the_cli_reports_a_missing_rule_file_as_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_two_connections(tmp_path, "rules/nope.toml")

    assert main(["--config", str(config), "status"]) == 2

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {config}: connections.emea.rules: no rule file")
