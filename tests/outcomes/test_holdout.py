"""The holdout draw: close to the configured share, the same on every rerun and worker, and apart
per connection."""

from __future__ import annotations

from pathlib import Path

from crm_upsell_connector.experiment import holdout, holdout_salt
from crm_upsell_connector.store.engine import open_store

ACCOUNTS = [str(10_000_000 + i * 7) for i in range(1000)]


def test_the_share_held_out_is_within_a_few_points_and_stable_across_reruns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(url)
    for share in (0.1, 0.2, 0.5):
        held = {a for a in ACCOUNTS if holdout(holdout_salt(engine, "main"), share)(a)}
        assert abs(len(held) / len(ACCOUNTS) - share) <= 0.04, (share, len(held))
    first = {a for a in ACCOUNTS if holdout(holdout_salt(engine, "main"), 0.2)(a)}
    engine.dispose()

    # A rerun, or a second worker, opens the same store: the same salt, the same accounts.
    again = open_store(url)
    salt = holdout_salt(again, "main")
    assert {a for a in reversed(ACCOUNTS) if holdout(salt, 0.2)(a)} == first
    # Raising the share only adds accounts to the control group.
    assert first <= {a for a in ACCOUNTS if holdout(salt, 0.3)(a)}
    # Another connection draws its own group.
    other = {a for a in ACCOUNTS if holdout(holdout_salt(again, "second"), 0.2)(a)}
    assert other != first
    assert holdout_salt(again, "second") != salt
    again.dispose()


def test_a_share_of_zero_holds_no_one_out(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    assert not any(holdout(holdout_salt(engine, "main"), 0.0)(a) for a in ACCOUNTS)
    engine.dispose()


def test_experiment_outcome_and_report_settings_are_checked_with_their_path() -> None:
    import tomllib

    import pytest

    from crm_upsell_connector.config import parse_config
    from crm_upsell_connector.errors import ConfigError
    from crm_upsell_connector.init import example_text

    base = tomllib.loads(example_text())
    config = parse_config(base, "config.toml")
    assert (config.experiment.holdout_share, config.outcomes.attribution_days, config.report.path) == (
        0.0,
        90,
        None,
    )
    for section, values, message in (
        (
            "experiment",
            {"holdout_share": 0.9},
            "experiment.holdout_share: Input should be less than or equal to 0.5",
        ),
        (
            "outcomes",
            {"attribution_days": 0},
            "outcomes.attribution_days: Input should be greater than or equal to 1",
        ),
        ("report", {"paht": "x.html"}, "report.paht: unknown key"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config({**base, section: values}, "config.toml")
        assert message in caught.value.one_line()
