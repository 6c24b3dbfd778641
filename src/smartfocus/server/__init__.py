"""The web app: FastAPI routes over sessions, videos, focus plans and background jobs.

It holds state and speaks HTTP; all image work is the render, focus and vision packages'.
"""

from smartfocus.server.app import create_app
from smartfocus.server.settings import Settings

__all__ = ["Settings", "create_app"]
