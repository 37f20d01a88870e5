"""``[http]`` settings shared by every connector's client."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HttpSettings(BaseModel):
    """``[http]`` in config.toml."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(30.0, gt=0, description="seconds before one request is abandoned")
    max_attempts: int = Field(8, ge=1, le=20, description="tries per request, the first included")
    backoff_initial_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(60.0, gt=0)
    retry_after_max_s: float = Field(
        300.0,
        gt=0,
        le=900,
        description="the longest wait a Retry-After (seconds or an HTTP-date) is honoured for",
    )
    max_in_flight: int = Field(8, ge=1, le=64, description="requests in flight at once")
