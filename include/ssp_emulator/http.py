"""What every emulated API answers with: JSON errors, and money as exact decimal text."""

from __future__ import annotations

from flask import Response, jsonify


def error_response(status: int, code: str, message: str = "",
                   headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def decimal_text(micros: int) -> str:
    """Micros as a decimal string with 6 places, exactly (no float on the way)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(int(micros)), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"
