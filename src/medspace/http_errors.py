"""What the HTTP APIs answer for a request that does not validate.

FastAPI's default 422 echoes each bad field's `input`: a mistyped date of birth, a name,
an ID or a password would travel back in the response, and into any log or proxy that
keeps responses. The answer names the field and the rule it broke, never its value.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def refuse_without_echo(app: FastAPI) -> None:
    """Answer validation errors with each field's location and rule, not its input."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "loc": [str(part) for part in problem.get("loc", ())],
                "type": str(problem.get("type", "")),
                "msg": str(problem.get("msg", "")),
            }
            for problem in error.errors()
        ]
        where = ", ".join(".".join(f["loc"][1:] or f["loc"]) for f in fields) or "the body"
        return JSONResponse(
            {
                "error": "RequestValidationError",
                "message": f"the request does not validate: fix {where}",
                "detail": fields,
            },
            status_code=422,
        )


__all__ = ["refuse_without_echo"]
