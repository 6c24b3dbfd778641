"""One error shape for every failure: `{"error": {"code": "...", "message": "..."}}` with a 4xx status.

Clients branch on `code` (stable); `message` is one line for people, saying what to do.
"""

from __future__ import annotations

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
    async def _domain(_: Request, error: SmartfocusError) -> JSONResponse:
        code = next((c for kind, c in _CODES.items() if isinstance(error, kind)), "invalid_request")
        status = 503 if isinstance(error, ModelError) else 422
        return error_response(status, code, str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ()) if p != 'body') or 'request'}: {item.get('msg')}"
            for item in error.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))
