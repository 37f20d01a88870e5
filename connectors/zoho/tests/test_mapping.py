"""Zoho records to canonical records and back: shapes, lenient values, malformed records skipped."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from crm_upsell_zoho.mapping import (
    MappingOptions,
    account_update_body,
    fields_for,
    map_records,
    parse_datetime,
    task_body,
    write_value,
)

from crm_upsell_connector.models import (
    Account,
    Activity,
    ActivityKind,
    Deal,
    FieldUpdate,
    LineItem,
    TaskDraft,
)

PRODUCT_FIELDS = {
    "loyalty_score": "Upsell_loyalty_score",
    "segment": "Upsell_segment",
    "updated_at": "Upsell_updated_at",
}
OPTIONS = MappingOptions(
    product_fields=PRODUCT_FIELDS,
    account_fields=("seats_purchased", "nps_score", "do_not_contact"),
    account_field_names={"seats_purchased": "Seats_Purchased", "nps_score": "NPS_Score"},
)
STAMP = "2026-03-01T10:20:30+09:00"
OWNER = {"name": "山田 太郎", "id": "5725767000000001001", "email": "yamada@example.jp"}


def account(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "5725767000000002001",
        "Account_Name": "株式会社サンプル",
        "Owner": OWNER,
        "Website": "https://sample.co.jp",
        "Industry": "Retail",
        "Created_Time": "2024-01-01T00:00:00+09:00",
        "Modified_Time": STAMP,
        "Seats_Purchased": 50,
        "NPS_Score": 9,
        "Do_Not_Contact": False,
        "Upsell_loyalty_score": 88.0,
        "Upsell_segment": "champion",
        "Upsell_updated_at": None,
    }
    raw.update(over)
    return raw


def test_account_with_japanese_name_offsets_and_requested_field_names() -> None:
    (record,) = map_records("accounts", [account()], OPTIONS)
    assert isinstance(record, Account)
    assert record.name == "株式会社サンプル"
    assert record.owner_id == OWNER["id"]
    assert record.updated_at == datetime(2026, 3, 1, 1, 20, 30, tzinfo=UTC)
    # Keyed by the names the configuration asked for, matched to Zoho's spelling.
    assert record.fields == {"seats_purchased": "50", "nps_score": "9", "do_not_contact": "false"}
    assert record.product_fields == {"loyalty_score": "88", "segment": "champion", "updated_at": None}


def test_account_field_names_match_without_regard_to_case() -> None:
    options = MappingOptions(account_fields=("NPS_SCORE", "seats_purchased"))
    (record,) = map_records("accounts", [account()], options)
    assert isinstance(record, Account)
    assert record.fields == {"NPS_SCORE": "9", "seats_purchased": "50"}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (account(id=None), "no id"),
        (account(Modified_Time="yesterday"), "Modified_Time"),
        (account(Modified_Time=None), "Modified_Time"),
        (["not", "a", "record"], "not an object"),
    ],
)
def test_malformed_records_are_skipped_with_a_warning(
    raw: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        good = map_records("accounts", [raw, account(id="5725767000000002002")], OPTIONS)
    assert [r.id for r in good] == ["5725767000000002002"]
    message = caplog.records[-1].getMessage()
    assert "Zoho Accounts" in message
    assert why in message
    if isinstance(raw, dict) and raw.get("id"):
        assert str(raw["id"]) in message


def test_deal_stages_and_line_items_from_the_product_subform(caplog: pytest.LogCaptureFixture) -> None:
    raw = {
        "id": "900",
        "Deal_Name": "更新 2026",
        "Stage": "Closed Won",
        "Amount": 1200,
        "Closing_Date": "2026-02-28",
        "Account_Name": {"name": "株式会社サンプル", "id": "5725767000000002001"},
        "Owner": OWNER,
        "Modified_Time": STAMP,
        "Deal_Products": [
            {
                "id": "901",
                "Product_Name": {"name": "CRM Professional", "id": "77"},
                "Quantity": 5,
                "List_Price": 60.0,
                "Billing_Frequency": "Annually",
                "Parent_Id": {"name": "更新 2026", "id": "900"},
            },
            "garbage",
            {"id": "902", "Product_Name": {"name": "Support", "id": "78"}, "Quantity": None},
        ],
    }
    (deal,) = map_records("deals", [raw], OPTIONS)
    assert isinstance(deal, Deal)
    assert (deal.is_closed, deal.is_won, deal.account_id, deal.amount) == (
        True,
        True,
        "5725767000000002001",
        1200.0,
    )
    assert deal.close_date == datetime(2026, 2, 28, tzinfo=UTC)
    with caplog.at_level(logging.WARNING):
        items = map_records("line_items", [raw], replace(OPTIONS, deal_subforms=("Deal_Products",)))
    assert map_records("line_items", [raw], OPTIONS) == []  # the subform is read only when configured
    assert all(isinstance(i, LineItem) for i in items)
    first, second = items
    assert isinstance(first, LineItem) and isinstance(second, LineItem)
    assert (first.id, first.deal_id, first.product_id, first.quantity, first.amount) == (
        "901",
        "900",
        "77",
        5,
        300,
    )
    assert first.billing_period == "annually"
    assert first.updated_at == deal.updated_at
    assert second.quantity == 1.0
    assert "Deals 900" in caplog.text
    lost = dict(raw, Stage="Closed Lost")
    (lost_deal,) = map_records("deals", [lost], OPTIONS)
    assert isinstance(lost_deal, Deal) and lost_deal.is_closed and not lost_deal.is_won
    open_deal = dict(raw, Stage="Negotiation/Review")
    (still_open,) = map_records("deals", [open_deal], OPTIONS)
    assert isinstance(still_open, Deal) and not still_open.is_closed


def test_activities_link_accounts_only_through_accounts_lookups() -> None:
    call = {
        "id": "1",
        "Subject": "お問い合わせ",
        "Call_Type": "Inbound",
        "Call_Start_Time": STAMP,
        "Call_Result": "Interested",
        "What_Id": {"name": "株式会社サンプル", "id": "A1"},
        "$se_module": "Accounts",
        "Who_Id": {"name": "Hanako", "id": "C1"},
        "Owner": OWNER,
        "Modified_Time": STAMP,
    }
    on_deal = dict(call, id="2", **{"$se_module": "Deals"})
    note = {
        "id": "3",
        "Note_Title": None,
        "Note_Content": "<p>解約を検討中</p><p>second line</p>",
        "Parent_Id": {"name": "x", "id": "A1", "module": {"api_name": "Accounts", "id": "9"}},
        "Owner": OWNER,
        "Created_Time": STAMP,
        "Modified_Time": STAMP,
    }
    event = {
        "id": "4",
        "Event_Title": "QBR",
        "Start_DateTime": STAMP,
        "What_Id": {"id": "A1"},
        "$se_module": "Accounts",
        "Modified_Time": STAMP,
    }
    task = {
        "id": "5",
        "Subject": "Propose",
        "Status": "Completed",
        "Due_Date": "2026-11-15",
        "What_Id": {"id": "A1"},
        "$se_module": "Accounts",
        "Upsell_task_key": "k-1",
        "Modified_Time": STAMP,
    }
    inbound, elsewhere = map_records("calls", [call, on_deal], OPTIONS)
    assert isinstance(inbound, Activity) and isinstance(elsewhere, Activity)
    assert (inbound.kind, inbound.direction, inbound.account_id, inbound.contact_id) == (
        ActivityKind.CALL,
        "inbound",
        "A1",
        "C1",
    )
    assert inbound.outcome == "Interested"
    assert elsewhere.account_id is None
    (n,) = map_records("notes", [note], OPTIONS)
    assert isinstance(n, Activity) and (n.kind, n.account_id, n.subject) == (
        ActivityKind.NOTE,
        "A1",
        "解約を検討中",
    )
    (m,) = map_records("events", [event], OPTIONS)
    assert isinstance(m, Activity) and (m.kind, m.account_id, m.subject) == (
        ActivityKind.MEETING,
        "A1",
        "QBR",
    )
    (t,) = map_records("tasks", [task], OPTIONS)
    assert isinstance(t, Activity)
    assert (t.kind, t.status, t.upsell_key, t.occurred_at) == (
        ActivityKind.TASK,
        "done",
        "k-1",
        datetime(2026, 11, 15, tzinfo=UTC),
    )


def test_users_become_owners() -> None:
    raw = {
        "id": "7",
        "full_name": "山田 太郎",
        "email": "yamada@example.jp",
        "status": "disabled",
        "Modified_Time": STAMP,
        "role": {"name": "Manager", "id": "1"},
    }
    (owner,) = map_records("users", [raw], OPTIONS)
    assert owner.name == "山田 太郎"  # type: ignore[attr-defined]
    assert owner.active is False  # type: ignore[attr-defined]
    assert owner.extra == {"role": "Manager"}


def test_fields_asked_for_are_only_those_used() -> None:
    fields = fields_for("accounts", OPTIONS)
    assert "Seats_Purchased" in fields and "NPS_Score" in fields and "do_not_contact" in fields
    assert "Upsell_segment" in fields and "Modified_Time" in fields
    assert len(fields) <= 50
    assert fields_for("deals", OPTIONS) == fields_for("line_items", OPTIONS)  # one page serves both


def test_values_written_as_zoho_takes_them() -> None:
    body = account_update_body(
        FieldUpdate(
            account_id="42",
            values={
                "loyalty_score": "88",
                "segment": "",
                "updated_at": "2026-11-01T00:00:00Z",
                "unknown": "x",
            },
        ),
        PRODUCT_FIELDS,
    )
    assert body == {
        "id": "42",
        "Upsell_loyalty_score": 88.0,
        "Upsell_segment": None,
        "Upsell_updated_at": "2026-11-01T00:00:00+00:00",
    }
    assert write_value("loyalty_score", "not a number") == "not a number"  # Zoho rejects that record alone


def test_task_body_links_the_account_and_its_owner() -> None:
    draft = TaskDraft(
        key="k-1",
        account_id="A1",
        owner_id="U1",
        subject="上位プランのご提案",
        body="Why",
        due=date(2026, 11, 15),
        priority="medium",
    )
    assert task_body(draft, "Upsell_task_key") == {
        "Subject": "上位プランのご提案",
        "Description": "Why",
        "Due_Date": "2026-11-15",
        "Priority": "Normal",
        "Status": "Not Started",
        "What_Id": {"id": "A1"},
        "$se_module": "Accounts",
        "Owner": {"id": "U1"},
        "Upsell_task_key": "k-1",
    }
    assert "Owner" not in task_body(draft.model_copy(update={"owner_id": None}), "Upsell_task_key")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T10:20:30+09:00", datetime(2026, 3, 1, 1, 20, 30, tzinfo=UTC)),
        ("2026-03-01T01:20:30Z", datetime(2026, 3, 1, 1, 20, 30, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("", None),
        ("soon", None),
        (12345, None),
        (None, None),
    ],
)
def test_parse_datetime(value: Any, expected: datetime | None) -> None:
    assert parse_datetime(value) == expected
