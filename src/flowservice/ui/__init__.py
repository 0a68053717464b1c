"""The monitoring pages under `/ui`: server-rendered, readable without JavaScript, live with it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flowservice.ui import alerts, flows, runs, signin
from flowservice.ui.web import HERE


def mount(app: FastAPI) -> None:
    """Add the pages and their assets (served from the package: no CDN) to `app`."""
    for module in (signin, flows, runs, alerts):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
