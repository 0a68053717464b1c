"""The application factory: routers, the error table and the gateway, around one `Services`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from flowservice import __version__, ui
from flowservice.api import errors, metrics
from flowservice.api.auth import Gateway
from flowservice.api.flowservice import (
    connections,
    explore,
    flows,
    runs,
    source_connections,
    specs,
    target_connections,
)
from flowservice.api.platform import alerts, catalog, dataprep, export, ims, insights, schemas
from flowservice.scheduler.loop import Scheduler
from flowservice.services import metrics as metrics_service
from flowservice.services.context import Services
from flowservice.services.paging import ContinuationTokens
from flowservice.workers.notifier import Notifier
from flowservice.workers.queue import RunQueue

ROUTERS: tuple[APIRouter, ...] = (
    ims.router,
    specs.router,
    explore.router,
    connections.router,
    source_connections.router,
    target_connections.router,
    flows.router,
    runs.router,
    schemas.router,
    catalog.router,
    dataprep.router,
    export.router,
    alerts.router,
    insights.router,
)

health = APIRouter(tags=["Operations"])


@health.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(
    services: Services,
    *,
    own_services: bool = False,
    queue: RunQueue | None = None,
    scheduler: Scheduler | None = None,
    notifier: Notifier | None = None,
) -> FastAPI:
    """Build the app; it starts and stops `queue` (the workers) with itself, and with `own_services`
    closes the services when it shuts down."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if queue is not None:
            queue.start()
        if scheduler is not None:
            scheduler.start()
        if notifier is not None:
            notifier.start()
        yield
        if notifier is not None:
            notifier.stop()
        if scheduler is not None:
            scheduler.stop()
        if queue is not None:
            queue.stop(timeout=30)
        if own_services:
            services.close()

    app = FastAPI(
        title="flowservice",
        version=__version__,
        description="A self-hosted implementation of Adobe Experience Platform's Flow Service API.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.continuation_tokens = ContinuationTokens(services.settings.secret)
    errors.install(app)
    app.include_router(health)
    app.include_router(metrics.router)
    for router in ROUTERS:
        app.include_router(router)
    ui.mount(app)
    app.add_middleware(Gateway, services=services)
    # outermost: the gateway's refusals are timed too
    app.state.metrics = metrics_service.build(services)
    app.add_middleware(metrics.RequestLatency, histogram=app.state.metrics.http_latency)
    return app
