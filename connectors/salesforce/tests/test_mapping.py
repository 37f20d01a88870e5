"""Salesforce sObjects to canonical records and back: lenient parsing, skipped junk, Japanese text."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from crm_upsell_salesforce.mapping import (
    MappingOptions,
    account_field_api_name,
    account_update_record,
    custom_field,
    fields_for,
    map_record,
    map_records,
    task_record,
)

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

OPTIONS = MappingOptions.build("Crm_Upsell_", ("seats_purchased", "nps_score", "NumberOfEmployees"))
STAMP = "2026-10-01T12:34:56.000+0000"
WHEN = datetime(2026, 10, 1, 12, 34, 56, tzinfo=UTC)


def sobject(type_: str, ident: str, **fields: object) -> dict[str, object]:
    return {
        "attributes": {"type": type_, "url": f"/services/data/v62.0/sobjects/{type_}/{ident}"},
        "Id": ident,
        "SystemModstamp": STAMP,
        **fields,
    }


def test_custom_field_names() -> None:
    assert custom_field("Crm_Upsell_", "loyalty_score") == "Crm_Upsell_Loyalty_Score__c"
    assert OPTIONS.task_key_field == "Crm_Upsell_Key__c"
    assert account_field_api_name("seats_purchased") == "seats_purchased__c"
    assert account_field_api_name("seats_purchased__c") == "seats_purchased__c"
    assert account_field_api_name("NumberOfEmployees") == "NumberOfEmployees"
    with pytest.raises(ValueError, match="API name"):
        account_field_api_name("seats' OR Name != '")


def test_account_fields_keyed_by_the_configured_name() -> None:
    raw = sobject(
        "Account",
        "001000000000001AAA",
        Name="株式会社サンプル",
        Website="https://www.example.co.jp/about",
        Industry="Technology",
        OwnerId="005000000000001AAA",
        CreatedDate="2024-01-15T00:00:00.000+0000",
        Seats_Purchased__c=50.0,  # field names are case-insensitive in Salesforce
        nps_score__c=None,
        NumberOfEmployees=120,
        Crm_Upsell_Loyalty_Score__c=88.0,
        Crm_Upsell_Reason__c="uses 46 of 50 seats; 株式会社",
    )
    account = map_record("accounts", raw, OPTIONS)
    assert isinstance(account, Account)
    assert account.name == "株式会社サンプル"
    assert account.domain == "example.co.jp"
    assert account.owner_id == "005000000000001AAA"
    assert account.updated_at == WHEN
    assert account.fields == {"seats_purchased": "50", "nps_score": None, "NumberOfEmployees": "120"}
    assert account.product_fields["loyalty_score"] == "88"
    assert account.product_fields["reason"] == "uses 46 of 50 seats; 株式会社"
    assert account.product_fields["segment"] is None
    assert "seats_purchased__c" in fields_for("accounts", OPTIONS)
    assert "Crm_Upsell_Updated_At__c" in fields_for("accounts", OPTIONS)


def test_contact_deal_line_item_product_user() -> None:
    contact = map_record(
        "contacts",
        sobject(
            "Contact", "003A", AccountId="001A", Email="hanako@example.jp", FirstName="花子", LastName="山田"
        ),
        OPTIONS,
    )
    assert isinstance(contact, Contact) and contact.name == "花子 山田" and contact.account_id == "001A"

    deal = map_record(
        "opportunities",
        sobject(
            "Opportunity",
            "006A",
            AccountId="001A",
            OwnerId="005A",
            Name="Renewal 2026",
            StageName="Closed Won",
            IsClosed=True,
            IsWon=True,
            Amount=12000.5,
            CloseDate="2026-09-30",
        ),
        OPTIONS,
    )
    assert isinstance(deal, Deal) and deal.is_won and deal.is_closed and deal.amount == 12000.5
    assert deal.close_date == datetime(2026, 9, 30, tzinfo=UTC)

    item = map_record(
        "line_items",
        sobject(
            "OpportunityLineItem",
            "00kA",
            OpportunityId="006A",
            Product2Id="01tA",
            ProductCode="CRM-PRO",
            Name="CRM Professional",
            Quantity="50",
            UnitPrice=60,
            TotalPrice=3000,
        ),
        OPTIONS,
    )
    assert isinstance(item, LineItem) and item.deal_id == "006A" and item.sku == "CRM-PRO"
    assert item.quantity == 50.0 and item.amount == 3000.0

    product = map_record(
        "products", sobject("Product2", "01tA", Name="CRM Pro", ProductCode="CRM-PRO", Family="crm"), OPTIONS
    )
    assert isinstance(product, Product) and product.sku == "CRM-PRO" and product.extra["family"] == "crm"

    user = map_record(
        "users", sobject("User", "005A", Name="鈴木 一郎", Email="i@example.jp", IsActive=False), OPTIONS
    )
    assert isinstance(user, Owner) and not user.active and user.name == "鈴木 一郎"


def test_an_asset_is_a_line_item_without_a_deal() -> None:
    asset = map_record(
        "assets",
        sobject("Asset", "02iA", AccountId="001A", Product2Id="01tA", Quantity=10, Price=25.0),
        OPTIONS,
    )
    assert isinstance(asset, LineItem)
    assert asset.deal_id is None and asset.product_id == "01tA"
    assert asset.extra == {"object": "Asset", "account_id": "001A"}
    assert asset.amount == 250.0


def test_task_kinds_and_links() -> None:
    call = map_record(
        "tasks",
        sobject(
            "Task",
            "00TA",
            WhatId="001000000000001AAA",
            WhoId="003000000000001AAA",
            OwnerId="005A",
            Subject="Call about renewal",
            ActivityDate="2026-10-01",
            TaskSubtype="Call",
            CallType="Inbound",
            CallDisposition="Connected",
            Status="Completed",
            IsClosed=True,
        ),
        OPTIONS,
    )
    assert isinstance(call, Activity) and call.kind is ActivityKind.CALL
    assert call.direction == "inbound" and call.outcome == "connected" and call.status == "done"
    assert call.account_id == "001000000000001AAA" and call.contact_id == "003000000000001AAA"

    email = map_record("tasks", sobject("Task", "00TB", TaskSubtype="Email", Subject="Email: hi"), OPTIONS)
    assert isinstance(email, Activity) and email.kind is ActivityKind.EMAIL

    ours = map_record(
        "tasks",
        sobject(
            "Task",
            "00TC",
            WhatId="001A",
            TaskSubtype="Task",
            Status="Not Started",
            IsClosed=False,
            Crm_Upsell_Key__c="k1",
        ),
        OPTIONS,
    )
    assert isinstance(ours, Activity) and ours.kind is ActivityKind.TASK
    assert ours.upsell_key == "k1" and ours.status == "open"

    on_opportunity = map_record("tasks", sobject("Task", "00TD", WhatId="006000000000001AAA"), OPTIONS)
    assert isinstance(on_opportunity, Activity) and on_opportunity.account_id is None

    meeting = map_record(
        "events",
        sobject("Event", "00UA", WhatId="001A", Subject="QBR 四半期レビュー", StartDateTime=STAMP),
        OPTIONS,
    )
    assert isinstance(meeting, Activity) and meeting.kind is ActivityKind.MEETING
    assert meeting.occurred_at == WHEN and meeting.subject == "QBR 四半期レビュー"


def test_malformed_records_are_skipped_with_a_warning_naming_object_and_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raws = [
        sobject("Account", "001OK", Name="fine"),
        {"Name": "no id", "SystemModstamp": STAMP},
        {"Id": "001BADSTAMP", "SystemModstamp": "yesterday"},
        "not an object",
        sobject("Account", "001OK2", Name=None),
    ]
    with caplog.at_level(logging.WARNING):
        records = map_records("accounts", raws, OPTIONS)
    assert [r.id for r in records] == ["001OK", "001OK2"]
    text = caplog.text
    assert "Salesforce Account (no Id)" in text
    assert "Salesforce Account 001BADSTAMP" in text and "SystemModstamp" in text
    assert "not an object" in text


def test_account_update_record_types_values() -> None:
    update = FieldUpdate(
        account_id="001A",
        values={
            "loyalty_score": "88",
            "segment": "champion",
            "next_product": "",
            "reason": "株式会社: uses 46 of 50 seats",
            "expected_uplift": "1200",
            "updated_at": "2026-11-01T00:00:00Z",
        },
    )
    record = account_update_record(update, OPTIONS)
    assert record == {
        "attributes": {"type": "Account"},
        "id": "001A",
        "Crm_Upsell_Loyalty_Score__c": 88.0,
        "Crm_Upsell_Segment__c": "champion",
        "Crm_Upsell_Next_Product__c": None,
        "Crm_Upsell_Reason__c": "株式会社: uses 46 of 50 seats",
        "Crm_Upsell_Expected_Uplift__c": 1200.0,
        "Crm_Upsell_Updated_At__c": "2026-11-01T00:00:00Z",
    }
    with pytest.raises(ValueError, match="number"):
        account_update_record(FieldUpdate(account_id="001A", values={"loyalty_score": "lots"}), OPTIONS)


def test_task_record() -> None:
    draft = TaskDraft(
        key="k-1",
        account_id="001A",
        owner_id="005A",
        subject="Propose CRM Enterprise",
        body="Why: uses 46 of 50 seats",
        due=date(2026, 11, 15),
        priority="medium",
    )
    assert task_record(draft, OPTIONS) == {
        "attributes": {"type": "Task"},
        "WhatId": "001A",
        "OwnerId": "005A",
        "ActivityDate": "2026-11-15",
        "Subject": "Propose CRM Enterprise",
        "Description": "Why: uses 46 of 50 seats",
        "Priority": "Normal",
        "Status": "Not Started",
        "TaskSubtype": "Task",
        "Crm_Upsell_Key__c": "k-1",
    }
    no_owner = task_record(draft.model_copy(update={"owner_id": None}), OPTIONS)
    assert "OwnerId" not in no_owner
