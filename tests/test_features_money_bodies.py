"""Amounts in the org's home currency, complaints anywhere in a body, merged records, per the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crm_upsell_connector.currency import resolve_home_currency, save_home_currency
from crm_upsell_connector.features import FeaturesConfig, compute_features
from crm_upsell_connector.merges import fold_merges
from crm_upsell_connector.models import Account, Stream
from crm_upsell_connector.store import schema
from crm_upsell_connector.text import html_to_text

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    defaults = {"connection": "c1", "extra": {}, "updated_at": NOW}
    for row in rows:
        conn.execute(table.insert(), {**defaults, **row})


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine("sqlite:///" + str(tmp_path / "store.db"))
    schema.metadata.create_all(engine)
    return engine


def accounts(conn: sa.Connection, *ids: str) -> None:
    insert(conn, schema.accounts, [{"id": i, "name": i, "fields": {}, "product_fields": {}} for i in ids])


def features(engine: sa.Engine, config: FeaturesConfig | None = None, **kw: Any) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = compute_features(conn, "c1", NOW, config or FeaturesConfig(), [], **kw)
        return {r["account_id"]: r for r in rows}


def won(
    id_: str, account: str, amount: float, currency: str | None, home: float | None, **kw: Any
) -> dict[str, Any]:
    return {
        "id": id_,
        "account_id": account,
        "name": id_,
        "is_closed": True,
        "is_won": True,
        "amount": amount,
        "currency": currency,
        "amount_home": home,
        "close_date": ago(30),
        **kw,
    }


# ---- money ------------------------------------------------------------------------------------


def test_yen_and_dollar_wins_add_up_in_the_home_currency(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        accounts(conn, "jp", "us")
        insert(
            conn,
            schema.deals,
            [won("d-jpy", "jp", 2_000_000, "JPY", 13_400), won("d-usd", "us", 20_000, "USD", None)],
        )
        save_home_currency(conn, "c1", "USD", NOW)
    f = features(engine)
    assert f["jp"]["revenue_won_365d"] == 13_400
    assert f["us"]["revenue_won_365d"] == 20_000
    assert f["jp"]["revenue_won_total"] == 13_400


def test_a_foreign_deal_without_a_home_amount_counts_nothing_rather_than_a_wrong_number(
    engine: sa.Engine,
) -> None:
    with engine.begin() as conn:
        accounts(conn, "a")
        insert(
            conn,
            schema.deals,
            [
                won("d1", "a", 2_000_000, "JPY", None),
                won("d2", "a", 500, "usd", None),
                won("d3", "a", 700, None, None),
                {
                    **won("d4", "a", 1_000_000, "JPY", 6_700),
                    "is_closed": False,
                    "is_won": False,
                    "close_date": NOW,
                },
            ],
        )
        save_home_currency(conn, "c1", "USD", NOW)
    f = features(engine)["a"]
    assert f["revenue_won_365d"] == 1_200  # 500 USD + 700 in no stated currency
    assert f["open_deal_amount"] == 6_700


def test_a_single_currency_org_works_with_no_setting_and_the_override_wins(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        accounts(conn, "a")
        insert(conn, schema.deals, [won("d1", "a", 900, "EUR", None), won("d2", "a", 100, "EUR", None)])
    with engine.connect() as conn:
        assert resolve_home_currency(conn, "c1") == "EUR"  # the one currency every deal is in
        assert resolve_home_currency(conn, "c1", "gbp") == "GBP"
    assert features(engine)["a"]["revenue_won_365d"] == 1_000
    # Told the home currency is something else, EUR deals without home amounts are not counted.
    assert features(engine, home_currency="USD")["a"]["revenue_won_365d"] == 0
    with engine.begin() as conn:
        save_home_currency(conn, "c1", "JPY", NOW)
        insert(conn, schema.deals, [won("d3", "a", 5, "USD", None)])
    with engine.connect() as conn:
        assert resolve_home_currency(conn, "c1") == "JPY"  # what the CRM said beats guessing


# ---- bodies -----------------------------------------------------------------------------------

PARAGRAPH_1 = "<p>The customer filed a complaint about the invoice.</p><p>Next call on Monday.</p>"
PARAGRAPH_2 = "<p>Quarterly check-in went fine.</p><p>Then they said they will <b>cancel</b> the add-on.</p>"
AFTER_BR = "<div>Walked through the roadmap.<br>They are unhappy with the support response times.</div>"


def note(id_: str, account: str, html: str, days: float = 10, **kw: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "kind": "note",
        "account_id": account,
        "occurred_at": ago(days),
        "subject": "Account note",
        "body": html_to_text(html),
        **kw,
    }


def test_complaints_in_paragraph_one_paragraph_two_and_after_a_br_all_count(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        accounts(conn, "a")
        insert(
            conn,
            schema.activities,
            [note("n1", "a", PARAGRAPH_1), note("n2", "a", PARAGRAPH_2), note("n3", "a", AFTER_BR)],
        )
    f = features(engine)["a"]
    assert f["complaints_90d"] == 3
    assert f["days_since_last_complaint"] == 10


def test_our_outbound_emails_are_not_complaints_but_inbound_ones_calls_and_meetings_are(
    engine: sa.Engine,
) -> None:
    with engine.begin() as conn:
        accounts(conn, "a")
        body = html_to_text(PARAGRAPH_2)
        insert(
            conn,
            schema.activities,
            [
                note("e-out", "a", PARAGRAPH_2, kind="email", direction="outbound"),
                note("e-in", "a", PARAGRAPH_2, kind="email", direction="inbound"),
                note("call-out", "a", PARAGRAPH_2, kind="call", direction="outbound"),
                note("meet", "a", PARAGRAPH_2, kind="meeting"),
                note("task", "a", PARAGRAPH_2, kind="task", status="open"),
            ],
        )
        assert "cancel" in body
    assert features(engine)["a"]["complaints_90d"] == 3  # inbound e-mail, call, meeting


def test_japanese_and_english_words_both_apply_and_the_flat_setting_keeps_working(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        accounts(conn, "a", "b", "c")
        insert(
            conn,
            schema.activities,
            [
                note("jp", "a", "<p>定例会議。</p><p>先方から解約の申し出がありました。</p>"),
                note("en", "b", "<p>Renewal planning.</p><p>They asked for a refund.</p>"),
                note("custom", "c", "<p>Escalation from the CFO.</p>"),
            ],
        )
    default = features(engine)
    assert (
        default["a"]["complaints_90d"],
        default["b"]["complaints_90d"],
        default["c"]["complaints_90d"],
    ) == (1, 1, 0)
    flat = features(engine, FeaturesConfig(complaint_keywords=["escalation"]))
    assert (flat["a"]["complaints_90d"], flat["b"]["complaints_90d"], flat["c"]["complaints_90d"]) == (
        0,
        0,
        1,
    )
    both = features(
        engine, FeaturesConfig(complaint_keywords=["escalation"], complaint_words={"ja": ["解約"]})
    )
    assert (both["a"]["complaints_90d"], both["b"]["complaints_90d"], both["c"]["complaints_90d"]) == (
        1,
        0,
        1,
    )


def test_complaint_word_lists_are_checked() -> None:
    with pytest.raises(ValueError, match="empty word"):
        FeaturesConfig(complaint_words={"en": [" "]})
    with pytest.raises(ValueError, match="language code"):
        FeaturesConfig(complaint_words={"e n!": ["x"]})


# ---- merges -----------------------------------------------------------------------------------


def test_a_merged_away_account_hands_its_history_to_the_survivor_once(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        accounts(conn, "survivor", "merged")
        insert(
            conn,
            schema.deals,
            [won("d1", "survivor", 1_000, "USD", 1_000), won("d2", "merged", 2_000, "USD", 2_000)],
        )
        insert(
            conn,
            schema.activities,
            [note("n1", "merged", PARAGRAPH_1), note("n2", "survivor", "<p>fine</p>")],
        )
        insert(conn, schema.contacts, [{"id": "c1", "account_id": "merged", "name": "Ann"}])
        insert(
            conn,
            schema.outbox,
            [
                {
                    "id": 1,
                    "kind": "field_update",
                    "ref": "merged",
                    "account_id": "merged",
                    "payload": {},
                    "status": "pending",
                    "attempts": 0,
                    "created_at": NOW,
                }
            ],
        )
    survivor = Account(id="survivor", updated_at=NOW, extra={"merged_ids": ["merged"]})
    with engine.begin() as conn:
        assert fold_merges(conn, "c1", Stream.ACCOUNTS, [survivor]) == 3  # a deal, a note, a contact
    f = features(engine)
    assert set(f) == {"survivor"}
    assert f["survivor"]["revenue_won_365d"] == 3_000
    assert f["survivor"]["complaints_90d"] == 1 and f["survivor"]["notes_90d"] == 2
    assert f["survivor"]["contacts"] == 1
    with engine.begin() as conn:
        assert fold_merges(conn, "c1", Stream.ACCOUNTS, [survivor]) == 0  # seen again: nothing moves twice
        status = conn.execute(sa.select(schema.outbox.c.status)).scalar_one()
    assert status == "superseded"
    assert features(engine)["survivor"]["revenue_won_365d"] == 3_000
