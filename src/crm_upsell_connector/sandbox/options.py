"""What a sandbox is started with: its rate limits, latency, token lifetime and injected faults
(``crm-upsell sandbox serve`` options, steerable at ``/__sandbox/faults``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultOptions(BaseModel):
    """Injected failures; every rate is a probability per request (or per batch input), 0 = never."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    storm_probability: float = Field(0.0, ge=0, le=1)  # chance a request starts a burst of 429s
    storm_length: int = Field(5, ge=1)  # consecutive 429s in one burst
    error_rate: float = Field(0.0, ge=0, le=1)  # 502 / 503 responses
    drop_rate: float = Field(0.0, ge=0, le=1)  # connection dropped mid-response
    partial_batch_rate: float = Field(0.0, ge=0, le=1)  # per batch input: fails inside a 207
    storm_next: int = Field(0, ge=0)  # the next N requests (from now or from a reconfiguration) are a storm
    # A ``Retry-After`` header on every 429 and 503 that has none: "seconds" (delay-seconds) or
    # "date" (an HTTP-date ``retry_after_s`` ahead), the two forms RFC 9110 section 10.2.3 allows.
    retry_after: Literal["none", "seconds", "date"] = "none"
    retry_after_s: float = Field(1.0, ge=0, le=3600)


class SandboxOptions(BaseModel):
    """How a sandbox behaves: size of the scenario, limits, latency, faults and credentials."""

    model_config = ConfigDict(extra="forbid")

    accounts: int = Field(1000, ge=0)
    seed: int = 7
    latency_ms: float = Field(0.0, ge=0)
    rate_limit_max: int = Field(190, ge=1)
    rate_limit_interval_ms: int = Field(10_000, ge=1)
    daily_limit: int = Field(1_000_000, ge=1)
    # CRM search endpoints often have their own, stricter limit (HubSpot: a few requests per second).
    search_rate_limit_max: int = Field(5, ge=1)
    search_rate_limit_interval_ms: int = Field(1_000, ge=1)
    faults: FaultOptions = Field(default_factory=FaultOptions)
    token: str = "sandbox-token"  # noqa: S105 - a well-known sandbox credential
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"  # noqa: S105
    refresh_token: str = "sandbox-refresh-token"  # noqa: S105
    access_token_ttl_s: int = Field(1800, ge=1)
    search_cap: int = Field(10_000, ge=1)
