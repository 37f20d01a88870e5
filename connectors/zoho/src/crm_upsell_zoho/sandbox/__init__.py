"""A Zoho CRM API emulator over a scenario (v8 records, related lists, notes, deleted records, users,
fields, org and currencies, merges, COQL, OAuth), one module per API area.

One app serves both the accounts server (``POST /oauth/v2/token``) and the API domain (``/crm/v8/...``);
the token response's ``api_domain`` is the sandbox's own base URL. Shapes follow Zoho's OpenAPI
descriptions (``zoho/crm-oas``, v8.0): 19-digit string ids, lookups as ``{"name", "id"}``, datetimes with
seconds and a UTC offset, ``{data, info}`` pages, 204 when nothing matches, per-record
``{code, details, message, status}`` write results with 201/200, 207 when mixed and 400 when all fail.

What an account owns: a standard org has no product subform on Deals; each Deal's Products related
list (``GET /Deals/{id}/Products``, see ``related``) holds the products the scenario's line items name,
and Products have no tier field. Deals carry ``Currency`` and ``Exchange_Rate`` (a multi-currency org
with the scenario's home currency and rates: each deal's amount, currency and rate as the scenario
gives them, and orders and invoices in their deal's currency). Notes hold rich
text (``<div>`` paragraphs and ``<br>``). Scenario e-mails are not served: Zoho keeps e-mails outside
the record modules.

Each API area is a module: ``auth``, ``fields``, ``organization``, ``records`` (+ ``coql``),
``writes``, ``merge``, ``related``, ``notes``, ``users``, ``deleted``; ``app`` wires them (``AREAS``).
Every rule the sandbox enforces names the Zoho documentation page it follows beside it.

Paging: ``page``/``per_page`` reach the first 2,000 records (``discrete_limit``); past that, 400
``DISCRETE_PAGINATION_LIMIT_EXCEEDED`` and the caller must follow ``next_page_token`` (keyset tokens
bound to module, sort and If-Modified-Since, valid 24 h, up to 100,000 records). ``If-Modified-Since``
is inclusive at second precision. The default sort is ``id`` ``desc``, as in Zoho's examples.

API credits (a per-lifetime budget of ``options.daily_limit``; Zoho's window is a rolling 24 h):

==========================================  =======
call                                        credits
==========================================  =======
GET records / deleted / users / fields      1
POST/PUT/DELETE records, upsert (<=100)     1
POST settings/fields (at most 5 fields)     1
GET {module}/{id}/{related list}            1
COQL, LIMIT <= 200 / <= 1000 / <= 2000      1 / 2 / 3
POST /oauth/v2/token                        0
==========================================  =======

Exhausted credits answer 429 ``LIMIT_EXCEEDED``; more than ``concurrency_limit`` requests in flight, the
rolling window (``rate_limit_max`` per ``rate_limit_interval_ms``) and injected storms answer 429
``TOO_MANY_REQUESTS``. Zoho's v8 docs describe no rate-limit headers, so none are sent.
"""

from crm_upsell_zoho.sandbox.app import AREAS, create_app, delete, sandbox_state, set_fields, touch, zoho_id
from crm_upsell_zoho.sandbox.state import ZohoSandbox
from crm_upsell_zoho.sandbox.store import MODULES

__all__ = [
    "AREAS",
    "MODULES",
    "ZohoSandbox",
    "create_app",
    "delete",
    "sandbox_state",
    "set_fields",
    "touch",
    "zoho_id",
]
