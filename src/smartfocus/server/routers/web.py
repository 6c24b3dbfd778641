"""Health check and the page (static files, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from smartfocus import __version__
from smartfocus.server.schemas import Health

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
router = APIRouter()


@router.get("/health", response_model=Health, tags=["health"])
def health() -> Health:
    return Health(version=__version__)


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    """Browsers and tools ask for it whatever the page links: an answer, not a 404 in the console."""
    return FileResponse(WEB_DIR / "favicon.svg", media_type="image/svg+xml")
