"""The modules and fields of the sandbox's org, as a standard Zoho CRM org has them.

``GET /settings/fields`` lists these (see ``values.field_json``); lengths default to Zoho's per type
("Field Types: Data Types and Length Limits",
https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from crm_upsell_zoho.sandbox.store import (
    CALL_RESULTS,
    CREATABLE_TYPES,
    PRODUCT_CATEGORIES,
    STAGES,
    TASK_STATUSES,
    FieldDef,
    ModuleDef,
    industry,
)

if TYPE_CHECKING:
    from crm_upsell_zoho.sandbox.org import Org

__all__ = ["define_modules"]


def _f(
    org: Org,
    mod: ModuleDef,
    api_name: str,
    label: str,
    data_type: str,
    *,
    custom: bool = False,
    read_only: bool = False,
    mandatory: bool = False,
    options: Iterable[str] = (),
    lookup: str | None = None,
    length: int | None = None,
) -> None:
    mod.fields[api_name] = FieldDef(
        api_name,
        label,
        data_type,
        org.new_id(),
        custom=custom,
        read_only=read_only,
        mandatory=mandatory,
        length=length or CREATABLE_TYPES.get(data_type, 255),
        options=tuple(options),
        lookup_module=lookup,
        created_ms=org.meta_ms if custom else None,
        source="crm_ui" if custom else "default",
    )


def define_modules(org: Org) -> None:
    spec = (
        ("Accounts", "Account", "Account_Name", "Account_Name"),
        ("Contacts", "Contact", "Full_Name", "Email"),
        ("Deals", "Deal", "Deal_Name", "Deal_Name"),
        ("Products", "Product", "Product_Name", "Product_Name"),
        ("Tasks", "Task", "Subject", None),
        ("Calls", "Call", "Subject", None),
        ("Events", "Event", "Event_Title", None),
        ("Notes", "Note", "Note_Title", None),
    )
    for name, singular, display, dup in spec:
        mod = ModuleDef(name, singular, org.new_id(), display, dup)
        org.modules[name] = mod
        _f(org, mod, "Owner", f"{singular} Owner", "ownerlookup")
    m = org.modules
    a = m["Accounts"]
    _f(org, a, "Account_Name", "Account Name", "text", mandatory=True)
    _f(org, a, "Website", "Website", "website")
    industries = sorted({industry(c.industry) for c in org.scenario.companies}) or ["Retail"]
    _f(org, a, "Industry", "Industry", "picklist", options=industries)
    _f(org, a, "Seats_Purchased", "Seats Purchased", "integer", custom=True)
    _f(org, a, "Seats_Active", "Seats Active", "integer", custom=True)
    _f(org, a, "NPS_Score", "NPS Score", "integer", custom=True)
    _f(
        org,
        a,
        "Onboarding_Stage",
        "Onboarding Stage",
        "picklist",
        custom=True,
        options=("Kickoff", "Implementation", "Live"),
    )
    _f(org, a, "Do_Not_Contact", "Do Not Contact", "boolean", custom=True)
    c = m["Contacts"]
    _f(org, c, "First_Name", "First Name", "text", length=40)
    _f(org, c, "Last_Name", "Last Name", "text", mandatory=True, length=80)
    _f(org, c, "Full_Name", "Full Name", "text", read_only=True)
    _f(org, c, "Email", "Email", "email")
    _f(org, c, "Account_Name", "Account Name", "lookup", lookup="Accounts")
    d = m["Deals"]
    _f(org, d, "Deal_Name", "Deal Name", "text", mandatory=True, length=120)
    _f(org, d, "Stage", "Stage", "picklist", mandatory=True, options=tuple(STAGES.values()))
    _f(org, d, "Amount", "Amount", "currency")
    _f(org, d, "Closing_Date", "Closing Date", "date")
    _f(org, d, "Account_Name", "Account Name", "lookup", lookup="Accounts")
    # Multi-currency orgs add Currency and Exchange_Rate to every module with currency fields; the
    # rate is units of the record's currency per unit of the home currency ("Multi Currency Support",
    # https://www.zoho.com/crm/developer/docs/api/v8/multi-currency-support.html).
    _f(org, d, "Currency", "Currency", "picklist", options=tuple(org.currencies))
    _f(org, d, "Exchange_Rate", "Exchange Rate", "double")
    p = m["Products"]
    _f(org, p, "Product_Name", "Product Name", "text", mandatory=True, length=200)
    _f(org, p, "Product_Code", "Product Code", "text", length=40)
    _f(org, p, "Product_Category", "Product Category", "picklist", options=PRODUCT_CATEGORIES.values())
    _f(org, p, "Unit_Price", "Unit Price", "currency")
    _f(org, p, "Product_Active", "Product Active", "boolean")
    t = m["Tasks"]
    _f(org, t, "Subject", "Subject", "text", mandatory=True)
    _f(org, t, "Description", "Description", "textarea")
    _f(org, t, "Due_Date", "Due Date", "date")
    _f(org, t, "Status", "Status", "picklist", options=TASK_STATUSES)
    _f(org, t, "Priority", "Priority", "picklist", options=("Highest", "High", "Normal", "Low", "Lowest"))
    _f(org, t, "What_Id", "Related To", "lookup", lookup="*")
    _f(org, t, "Who_Id", "Contact Name", "lookup", lookup="Contacts")
    k = m["Calls"]
    _f(org, k, "Subject", "Subject", "text", mandatory=True)
    _f(org, k, "Description", "Description", "textarea")
    _f(
        org,
        k,
        "Call_Type",
        "Call Type",
        "picklist",
        mandatory=True,
        options=("Outbound", "Inbound", "Missed"),
    )
    _f(org, k, "Call_Start_Time", "Call Start Time", "datetime", mandatory=True)
    _f(org, k, "Call_Duration", "Call Duration", "text", length=10)
    _f(org, k, "Call_Result", "Call Result", "picklist", options=sorted(set(CALL_RESULTS.values())))
    _f(org, k, "What_Id", "Related To", "lookup", lookup="*")
    _f(org, k, "Who_Id", "Contact Name", "lookup", lookup="Contacts")
    e = m["Events"]
    _f(org, e, "Event_Title", "Title", "text", mandatory=True)
    _f(org, e, "Description", "Description", "textarea")
    _f(org, e, "Start_DateTime", "From", "datetime", mandatory=True)
    _f(org, e, "End_DateTime", "To", "datetime", mandatory=True)
    _f(org, e, "What_Id", "Related To", "lookup", lookup="*")
    _f(org, e, "Who_Id", "Contact Name", "lookup", lookup="Contacts")
    n = m["Notes"]
    _f(org, n, "Note_Title", "Note Title", "text")
    _f(org, n, "Note_Content", "Note Content", "textarea", mandatory=True)
    _f(org, n, "Parent_Id", "Parent ID", "lookup", lookup="*", mandatory=True)
    for mod in m.values():
        _f(org, mod, "Created_By", "Created By", "ownerlookup", read_only=True)
        _f(org, mod, "Modified_By", "Modified By", "ownerlookup", read_only=True)
        _f(org, mod, "Created_Time", "Created Time", "datetime", read_only=True)
        _f(org, mod, "Modified_Time", "Modified Time", "datetime", read_only=True)
