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
