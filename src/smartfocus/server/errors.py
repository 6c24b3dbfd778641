"""One error shape for every failure: `{"error": {"code": "...", "message": "..."}}` with a 4xx status.

Clients branch on `code` (stable); `message` is one line for people, saying what to do.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartfocus.errors import MediaError, ModelError, SelectionError, SmartfocusError


class ApiError(Exception):
    """A request the server refuses, with the status and code the client sees."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# errno values that mean the server is out of space, not that the user's input is wrong
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NO_SPACE_MESSAGE = "the server is out of disk space; free some space (or ask its admin to) and try again"


def storage_fault(error: BaseException) -> ApiError | None:
    """The error to answer when `error` is the server's storage failing (a full disk, a database
    that cannot be written), else None: a 507 or 503 with its own code, never the user's fault."""
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return ApiError(507, "insufficient_storage", NO_SPACE_MESSAGE)
    if isinstance(error, sqlite3.OperationalError):
        if "full" in str(error):
            return ApiError(507, "insufficient_storage", NO_SPACE_MESSAGE)
        return ApiError(
            503, "storage_unavailable", "the server's database cannot be written right now; try again"
        )
    if isinstance(error, OSError) and error.errno in (errno.EIO, errno.EROFS):
        return ApiError(503, "storage_unavailable", "the server cannot write its files right now; try again")
    return None


def public_message(message: str, data_dir: Path) -> str:
    """`message` without the server's own paths (an upload's place on disk tells a client nothing
    and a prober too much): each path under `data_dir` becomes "the uploaded video"."""
    for root in {str(data_dir).rstrip("/"), str(data_dir.resolve()).rstrip("/")}:
        message = re.sub(rf"{re.escape(root)}/\S*?(?=[:;,)]?(\s|$))", "the uploaded video", message)
    return message


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found (it may belong to another session or be deleted)")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


_CODES: dict[type[SmartfocusError], str] = {
    MediaError: "invalid_video",
    SelectionError: "invalid_selection",
    ModelError: "model_unavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    """Route every known failure to the one error shape; anything else stays a 500 (a bug)."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message)

    @app.exception_handler(SmartfocusError)
    async def _domain(request: Request, error: SmartfocusError) -> JSONResponse:
        code = next((c for kind, c in _CODES.items() if isinstance(error, kind)), "invalid_request")
        status = 503 if isinstance(error, ModelError) else 422
        data_dir = request.app.state.services.settings.data_dir
        return error_response(status, code, public_message(str(error), data_dir))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ()) if p != 'body') or 'request'}: {item.get('msg')}"
            for item in error.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.OperationalError)
    async def _storage(_: Request, error: Exception) -> JSONResponse:
        fault = storage_fault(error)
        if fault is None:
            raise error  # a bug: the 500 it is
        return error_response(fault.status, fault.code, fault.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and "parsing the body" in str(error.detail):
            # FastAPI's answer to a body its JSON parser gave up on (e.g. nested too deep)
            return error_response(422, "invalid_request", "the request body is not JSON this API reads")
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))
