"""Request bodies every sandbox reads the same way: OAuth token forms and ``/__sandbox`` JSON objects."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from starlette.requests import Request

__all__ = ["read_form", "read_json_object"]


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each name, blanks kept), with the
    query string's parameters where the body lacks them; parsed without python-multipart."""
    raw = (await request.body()).decode("utf-8", "replace")
    form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
    for k, v in request.query_params.items():
        form.setdefault(k, v)
    return form


async def read_json_object(request: Request) -> dict[str, Any]:
    """A JSON object body; an empty body or any other JSON value reads as ``{}``."""
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    return data if isinstance(data, dict) else {}
