"""Playing the field's part in a sandbox: reps complete some of the product's tasks, customers open
and win deals for the proposed product, and some customers buy without being asked.

The logic is the same for every CRM; each connector's sandbox supplies a small
:class:`OutcomeBackend` (find the product's open tasks, complete one, open a deal with one line
item) and mounts :func:`outcome_route` at ``POST /__sandbox/play-outcomes``. The demo and the tests
call it over HTTP (:func:`request_play`), so the loop closes through the CRM as in real life: the
next sync reads the completed tasks and the new deals.

Deterministic: the same seed and the same sandbox state play the same outcomes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PLAY_PATH = "/__sandbox/play-outcomes"


class PlayOptions(BaseModel):
    """What share of the field acts: each share is a probability, drawn per task or per account."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    #: of the product's open tasks, the share the reps complete.
    complete_share: float = Field(0.6, ge=0, le=1)
    #: of the completed tasks, the share whose customer opens a deal for the proposed product.
    deal_share: float = Field(0.5, ge=0, le=1)
    #: of the deals opened (also the organic ones), the share won (the rest: half lost, half open).
    win_share: float = Field(0.6, ge=0, le=1)
    #: accounts (CRM id -> SKU) that may buy that product on their own, without any task.
    organic: dict[str, str] = Field(default_factory=dict)
    #: of the ``organic`` accounts, the share that opens a deal for it.
    organic_share: float = Field(0.0, ge=0, le=1)


@dataclass(frozen=True)
class OpenTask:
    """A task the product created and nobody has completed: its company and the product proposed."""

    task_id: str
    company_id: str
    product_sku: str | None


@dataclass(frozen=True)
class ProductInfo:
    sku: str
    name: str
    annual_price: float


@dataclass(frozen=True)
class PlayedDeal:
    company_id: str
    deal_id: str
    product_sku: str
    stage: str  # won, lost, open
    amount: float
    task_id: str | None  # None: an organic purchase


@dataclass
class PlayReport:
    completed: list[str] = field(default_factory=list)
    deals: list[PlayedDeal] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"completed": self.completed, "deals": [asdict(d) for d in self.deals]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlayReport:
        return cls(list(data["completed"]), [PlayedDeal(**d) for d in data["deals"]])


class OutcomeBackend(Protocol):
    """What a CRM sandbox supplies to play outcomes (called under the sandbox's lock)."""

    def open_product_tasks(self) -> list[OpenTask]: ...
    def products(self) -> Mapping[str, ProductInfo]: ...
    def complete_task(self, task_id: str) -> None: ...
    def open_deal(self, company_id: str, product: ProductInfo, stage: str) -> str: ...


def _stage(rng: random.Random, win_share: float) -> str:
    if rng.random() < win_share:
        return "won"
    return "lost" if rng.random() < 0.5 else "open"


def play_outcomes(backend: OutcomeBackend, options: PlayOptions) -> PlayReport:
    """Complete a share of the product's open tasks; open (and win) deals for the proposed product."""
    rng = random.Random(options.seed)
    catalogue = backend.products()
    report = PlayReport()
    for task in sorted(backend.open_product_tasks(), key=lambda t: (len(t.task_id), t.task_id)):
        if rng.random() >= options.complete_share:
            continue
        backend.complete_task(task.task_id)
        report.completed.append(task.task_id)
        product = catalogue.get(task.product_sku or "")
        if product is None or rng.random() >= options.deal_share:
            continue
        stage = _stage(rng, options.win_share)
        deal_id = backend.open_deal(task.company_id, product, stage)
        report.deals.append(
            PlayedDeal(task.company_id, deal_id, product.sku, stage, product.annual_price, task.task_id)
        )
    for company_id in sorted(options.organic, key=lambda c: (len(c), c)):
        product = catalogue.get(options.organic[company_id])
        if product is None or rng.random() >= options.organic_share:
            continue
        stage = _stage(rng, options.win_share)
        deal_id = backend.open_deal(company_id, product, stage)
        report.deals.append(PlayedDeal(company_id, deal_id, product.sku, stage, product.annual_price, None))
    return report


def outcome_route(backend: Callable[[], OutcomeBackend], lock: Any) -> Route:
    """``POST /__sandbox/play-outcomes`` with a :class:`PlayOptions` body; answers the PlayReport."""

    async def play(request: Request) -> Response:
        raw = await request.body()
        try:
            options = PlayOptions.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            return JSONResponse({"error": str(exc.errors()[0]["msg"])}, status_code=400)
        with lock:
            report = play_outcomes(backend(), options)
        return JSONResponse(report.to_json())

    return Route(PLAY_PATH, play, methods=["POST"])


def request_play(base_url: str, options: PlayOptions, timeout: float = 60.0) -> PlayReport:
    """Ask the sandbox at ``base_url`` (loopback) to play outcomes; returns what it played."""
    response = httpx.post(
        base_url.rstrip("/") + PLAY_PATH, content=options.model_dump_json(), timeout=timeout
    )
    response.raise_for_status()
    return PlayReport.from_json(response.json())
