"""HubSpot objects to canonical records and back: shapes, leniency, and malformed records skipped."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from crm_upsell_hubspot.mapping import (
    company_update_input,
    map_object,
    map_objects,
    parse_datetime,
    task_create_input,
)
from crm_upsell_hubspot.properties import MappingOptions, properties_for

from crm_upsell_connector.models import (
    Account,
    Activity,
    ActivityKind,
    Contact,
    Deal,
    FieldUpdate,
    LineItem,
    Owner,
    Product,
    TaskDraft,
)
from crm_upsell_connector.values import first_line, parse_number

OPTIONS = MappingOptions(prefix="crm_upsell_", account_fields=("seats_purchased", "nps_score"))
STAMP = "2026-10-01T12:34:56.789Z"


def obj(ident: str | None, props: dict[str, object], **extra: object) -> dict[str, object]:
    raw: dict[str, object] = {"properties": props, "updatedAt": STAMP, "createdAt": "2024-01-01T00:00:00Z"}
    if ident is not None:
        raw["id"] = ident
    raw.update(extra)
    return raw


def companies(*ids: str, kind: str = "contact_to_company") -> dict[str, object]:
    return {"companies": {"results": [{"id": i, "type": kind} for i in ids]}}


def test_company_keeps_japanese_text_configured_fields_and_product_fields() -> None:
    raw = obj(
        "101",
        {
            "name": "株式会社さくら商事",
            "domain": "sakura.example.jp",
            "industry": "RETAIL",
            "lifecyclestage": "customer",
            "hubspot_owner_id": "77",
            "createdate": "2023-04-01T00:00:00Z",
            "hs_lastmodifieddate": STAMP,
            "seats_purchased": "50",
            "crm_upsell_segment": "champion",
            "crm_upsell_reason": "46 / 50 席を利用中",
        },
    )
    account = map_object("companies", raw, OPTIONS)
    assert isinstance(account, Account)
    assert account.name == "株式会社さくら商事"
    assert account.owner_id == "77"
    assert account.updated_at == datetime(2026, 10, 1, 12, 34, 56, 789000, tzinfo=UTC)
    assert account.fields == {"seats_purchased": "50", "nps_score": None}
    assert account.product_fields["segment"] == "champion"
    assert account.product_fields["reason"] == "46 / 50 席を利用中"
    assert account.product_fields["loyalty_score"] is None


def test_contact_takes_the_primary_company() -> None:
    assoc = {
        "companies": {
            "results": [
                {"id": "9", "type": "contact_to_company_unlabeled"},
                {"id": "5", "type": "contact_to_company"},
            ]
        }
    }
    raw = obj("1", {"firstname": "太郎", "lastname": "山田", "email": "taro@example.jp"}, associations=assoc)
    contact = map_object("contacts", raw, OPTIONS)
    assert isinstance(contact, Contact)
    assert contact.account_id == "5"
    assert contact.name == "太郎 山田"


@pytest.mark.parametrize(
    ("props", "closed", "won"),
    [
        ({"hs_is_closed": "true", "hs_is_closed_won": "true", "dealstage": "x"}, True, True),
        ({"hs_is_closed": "false", "hs_is_closed_won": "false", "dealstage": "closedwon"}, False, False),
        ({"dealstage": "closedwon"}, True, True),
        ({"dealstage": "closedlost"}, True, False),
        ({"dealstage": "qualifiedtobuy"}, False, False),
    ],
)
def test_deal_closed_and_won(props: dict[str, object], closed: bool, won: bool) -> None:
    deal = map_object("deals", obj("3", {"dealname": "Upgrade", "amount": "1,200.50", **props}), OPTIONS)
    assert isinstance(deal, Deal)
    assert (deal.is_closed, deal.is_won) == (closed, won)
    assert deal.amount == 1200.5


def test_line_item_and_product() -> None:
    raw = obj(
        "8",
        {
            "hs_product_id": "44",
            "hs_sku": "CRM-PRO",
            "quantity": "12",
            "price": "60.00",
            "amount": "720",
            "recurringbillingfrequency": "monthly",
            "name": "CRM Professional",
        },
        associations={"deals": {"results": [{"id": "3", "type": "line_item_to_deal"}]}},
    )
    item = map_object("line_items", raw, OPTIONS)
    assert isinstance(item, LineItem)
    assert (item.deal_id, item.product_id, item.sku, item.quantity, item.unit_price, item.amount) == (
        "3",
        "44",
        "CRM-PRO",
        12.0,
        60.0,
        720.0,
    )
    assert item.billing_period == "monthly"
    product = map_object(
        "products", obj("44", {"name": "CRM Pro", "hs_sku": "CRM-PRO", "price": "60"}), OPTIONS
    )
    assert isinstance(product, Product)
    assert product.unit_price == 60.0


def test_owner() -> None:
    owner = map_object(
        "owners",
        {
            "id": "77",
            "email": "a@x.jp",
            "firstName": "花子",
            "lastName": "佐藤",
            "archived": False,
            "updatedAt": STAMP,
        },
        OPTIONS,
    )
    assert isinstance(owner, Owner)
    assert owner.name == "花子 佐藤"
    assert owner.active


def test_activities() -> None:
    call = map_object(
        "calls",
        obj(
            "1",
            {
                "hs_call_title": "契約更新の相談",
                "hs_call_direction": "INBOUND",
                "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
                "hs_timestamp": "1759322096789",
                "hubspot_owner_id": "77",
            },
            associations=companies("5", kind="call_to_company"),
        ),
        OPTIONS,
    )
    assert isinstance(call, Activity)
    assert (call.kind, call.direction, call.outcome, call.account_id) == (
        ActivityKind.CALL,
        "inbound",
        "connected",
        "5",
    )
    assert call.occurred_at == datetime(2025, 10, 1, 12, 34, 56, 789000, tzinfo=UTC)
    email_in = map_object(
        "emails", obj("2", {"hs_email_direction": "INCOMING_EMAIL", "hs_email_subject": "Re"}), OPTIONS
    )
    email_out = map_object("emails", obj("3", {"hs_email_direction": "FORWARDED_EMAIL"}), OPTIONS)
    assert isinstance(email_in, Activity)
    assert email_in.direction == "inbound"
    assert isinstance(email_out, Activity)
    assert email_out.direction == "outbound"
    meeting = map_object(
        "meetings", obj("4", {"hs_meeting_title": "QBR", "hs_meeting_outcome": "NO_SHOW"}), OPTIONS
    )
    assert isinstance(meeting, Activity)
    assert meeting.outcome == "no_show"
    assert meeting.subject == "QBR"
    note = map_object("notes", obj("5", {"hs_note_body": "<p>お客様の声: 満足</p><p>second</p>"}), OPTIONS)
    assert isinstance(note, Activity)
    assert note.subject == "お客様の声: 満足"
    task = map_object(
        "tasks",
        obj("6", {"hs_task_subject": "Propose", "hs_task_status": "COMPLETED", "crm_upsell_key": "k-1"}),
        OPTIONS,
    )
    assert isinstance(task, Activity)
    assert (task.status, task.upsell_key, task.kind) == ("done", "k-1", ActivityKind.TASK)
    open_task = map_object("tasks", obj("7", {"hs_task_status": "NOT_STARTED"}), OPTIONS)
    assert isinstance(open_task, Activity)
    assert open_task.status == "open"
    assert open_task.upsell_key is None


def test_malformed_records_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    raws: list[object] = [
        obj(None, {"name": "no id"}),
        {"id": "2", "properties": {"name": "bad date"}, "updatedAt": "yesterday"},
        {"id": "3", "properties": ["not", "an", "object"], "updatedAt": STAMP},
        "not even an object",
        obj("5", {"name": "fine", "hs_lastmodifieddate": "garbage"}),
    ]
    with caplog.at_level(logging.WARNING):
        records = map_objects("companies", raws, OPTIONS)
    assert [r.id for r in records] == ["5"]  # an unreadable property falls back to updatedAt
    text = caplog.text
    assert "companies (no id)" in text
    assert "companies 2" in text
    assert "companies 3" in text


def test_lenient_numbers_and_dates() -> None:
    assert parse_number("1,234.5") == 1234.5
    assert parse_number(" ") is None
    assert parse_number("abc") is None
    assert parse_number("nan") is None
    assert parse_datetime("2024-01-02") == datetime(2024, 1, 2, tzinfo=UTC)
    assert parse_datetime(1_700_000_000_000) == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert parse_datetime("not a date") is None
    bad_amount = map_object("deals", obj("1", {"amount": "lots"}), OPTIONS)
    assert isinstance(bad_amount, Deal)
    assert bad_amount.amount is None


def test_first_line_of_html() -> None:
    assert first_line("<div>\n\n &amp; hello<br>world</div>") == "& hello"
    assert first_line(None) == ""


def test_only_the_properties_the_product_uses() -> None:
    props = properties_for("companies", OPTIONS)
    assert "seats_purchased" in props
    assert "crm_upsell_loyalty_score" in props
    assert "hs_lastmodifieddate" in props
    assert "lastmodifieddate" in properties_for("contacts", OPTIONS)
    assert "crm_upsell_key" in properties_for("tasks", OPTIONS)


def test_write_inputs() -> None:
    update = company_update_input(FieldUpdate(account_id="5", values={"segment": "champion"}), "crm_upsell_")
    assert update == {
        "id": "5",
        "properties": {"crm_upsell_segment": "champion"},
        "objectWriteTraceId": "5",
    }
    draft = TaskDraft(
        key="k-1",
        account_id="5",
        owner_id="77",
        subject="アップグレードのご提案",
        body="理由: 46/50 席",
        due=date(2026, 11, 15),
        priority="high",
    )
    body = task_create_input(draft, "crm_upsell_")
    props = body["properties"]
    assert props["hs_timestamp"] == "2026-11-15T09:00:00.000Z"
    assert props["hs_task_priority"] == "HIGH"
    assert props["hs_task_status"] == "NOT_STARTED"
    assert props["hs_task_type"] == "TODO"
    assert props["hubspot_owner_id"] == "77"
    assert props["crm_upsell_key"] == "k-1"
    assert props["hs_task_subject"] == "アップグレードのご提案"
    assert body["associations"] == [
        {"to": {"id": "5"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}]}
    ]


def test_merged_ids_amounts_and_whole_bodies() -> None:
    company = map_object(
        "companies",
        {
            "id": "30",
            "properties": {"hs_merged_object_ids": "10;20;30", "hs_lastmodifieddate": "2026-01-01T00:00:00Z"},
        },
        OPTIONS,
    )
    assert company is not None and company.extra["merged_ids"] == ["10", "20"]
    deal = map_object(
        "deals",
        {
            "id": "1",
            "properties": {
                "amount": "2000000",
                "deal_currency_code": "jpy",
                "amount_in_home_currency": "13400",
                "hs_lastmodifieddate": "2026-01-01T00:00:00Z",
            },
        },
        OPTIONS,
    )
    assert isinstance(deal, Deal)
    assert (deal.amount, deal.currency, deal.amount_home) == (2_000_000, "JPY", 13_400)
    email = map_object(
        "emails",
        {
            "id": "2",
            "properties": {
                "hs_email_subject": "Re: invoice",
                "hs_email_html": "<p>Thanks.</p><p>We will <b>cancel</b> unless fixed.<br>Regards</p>",
                "hs_email_text": "Thanks.",
                "hs_email_direction": "INCOMING_EMAIL",
                "hs_lastmodifieddate": "2026-01-01T00:00:00Z",
            },
        },
        OPTIONS,
    )
    assert isinstance(email, Activity)
    assert email.body == "Thanks.\n\nWe will cancel unless fixed.\nRegards"
    assert email.direction == "inbound"
