"""RFC 9457 problem details: the one shape of every JSON error, from the API and from the
pages' JSON endpoints alike (``bankapp.api.problems`` adds the API's own problem types)."""
from __future__ import annotations

from http import HTTPStatus

from flask import jsonify

PROBLEM_CONTENT_TYPE = "application/problem+json"


def status_phrase(status: int) -> str:
    """``404`` → ``Not Found``."""
    return HTTPStatus(status).phrase


def problem_response(status: int, body: dict, headers: dict | None = None):
    """A JSON problem answer with ``status``, ``body`` and any extra ``headers``."""
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM_CONTENT_TYPE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def simple_problem(status: int, detail: str):
    """A problem with no type of its own (``about:blank``): its title is the status's phrase."""
    return problem_response(status, {"type": "about:blank", "title": status_phrase(status),
                                     "status": status, "detail": detail})
