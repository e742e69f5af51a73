"""Strict reading of request bodies, headers and query parameters.

Flask's ``get_json()`` turns ``12.5`` into a float and accepts ``NaN``, ``Infinity`` and
``1e400`` (a float infinity). Here the body is parsed with every JSON number kept as its
text (``JsonNumber``), so an amount sent as a number is refused with a message instead of
reaching the ledger as a float.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from flask import request

from bankapp import ledger
from bankapp.api.problems import Problem
from bankapp.platform.formatting import bank_timezone

MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,64}")
ACCOUNT_NUMBER_RE = re.compile(r"[A-Za-z0-9-]{1,20}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class JsonNumber:
    """A number found in the request JSON, kept as written so it can be refused by name."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, JsonNumber) and other.text == self.text

    def __repr__(self):
        return self.text


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"the key {key!r} appears twice")
        result[key] = value
    return result


def read_json_object() -> dict:
    """The request body as a JSON object, numbers kept as ``JsonNumber``; else a 400 problem."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise Problem(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber,
                          parse_constant=JsonNumber, object_pairs_hook=_object_without_duplicates)
    except _DuplicateKey as error:
        raise Problem(400, f"The request body is not acceptable JSON: {error}.",
                      code="invalid-json") from None
    except UnicodeDecodeError:
        raise Problem(400, "The request body must be UTF-8 encoded JSON.",
                      code="invalid-json") from None
    except json.JSONDecodeError as error:
        raise Problem(400, f"The request body is not valid JSON: {error.msg} at line "
                      f"{error.lineno} column {error.colno}.", code="invalid-json") from None
    except (ValueError, RecursionError):
        raise Problem(400, "The request body is not valid JSON.", code="invalid-json") from None
    if not isinstance(data, dict):
        raise Problem(400, "The request body must be a JSON object.", code="invalid-json")
    return data


def canonical_json(data) -> str:
    """Key order and whitespace do not matter: the same request has the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=repr)


def request_fingerprint(data: dict) -> str:
    text = f"{request.method}\n{request.path}\n{canonical_json(data)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, JsonNumber):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


class Fields:
    """Reads the fields of one JSON object, collecting every error before answering.

    Wrong JSON types answer 400 (``invalid-request``); missing or unacceptable values 422
    (``validation-error``); each error names its field with a JSON pointer.
    """

    def __init__(self, data: dict, allowed: tuple[str, ...]):
        self.data = data
        self.type_errors: list[dict] = []
        self.value_errors: list[dict] = []
        for name in data:
            if name not in allowed:
                self.value_errors.append(_error(name, "Unknown field; allowed: "
                                                + ", ".join(allowed) + "."))

    def _raw(self, name: str, required: bool):
        if name not in self.data:
            if required:
                self.value_errors.append(_error(name, "This field is required."))
            return None
        return self.data[name]

    def text(self, name: str, *, required: bool = True, max_length: int = 255,
             default: str | None = None) -> str | None:
        value = self._raw(name, required)
        if value is None and name not in self.data:
            return default
        if not isinstance(value, str):
            self.type_errors.append(_error(name, f"Must be a string, not {_json_type(value)}."))
            return None
        problem = text_problem(value, max_length)
        if problem:
            self.value_errors.append(_error(name, problem))
            return None
        return value

    def amount(self, name: str = "amount") -> Decimal | None:
        value = self._raw(name, True)
        if name not in self.data:
            return None
        if isinstance(value, JsonNumber):
            self.type_errors.append(_error(
                name, f'Amounts must be JSON strings such as "12.50", not numbers '
                      f'(got {value.text}).'))
            return None
        if not isinstance(value, str):
            self.type_errors.append(_error(
                name, f'Amounts must be JSON strings such as "12.50", not {_json_type(value)}.'))
            return None
        try:
            return ledger.parse_amount(value)
        except ledger.LedgerError as error:
            self.value_errors.append(_error(name, str(error)))
            return None

    def account_number(self, name: str) -> str | None:
        value = self.text(name, max_length=40)
        if value is None:
            return None
        value = value.strip().upper()
        if not ACCOUNT_NUMBER_RE.fullmatch(value):
            self.value_errors.append(_error(name, "Enter an account number such as "
                                                  "ACC-000000001."))
            return None
        return value

    def check(self) -> None:
        """Raise the collected errors: 400 when any type is wrong, else 422."""
        if self.type_errors:
            raise Problem(400, "Some fields have the wrong JSON type.", code="invalid-request",
                          errors=self.type_errors + self.value_errors)
        if self.value_errors:
            raise Problem(422, "Some fields are not acceptable.", code="validation-error",
                          errors=self.value_errors)


def _error(name: str, detail: str) -> dict:
    return {"pointer": "#/" + name.replace("~", "~0").replace("/", "~1"), "detail": detail}


def text_problem(value: str, max_length: int) -> str | None:
    """Why ``value`` cannot be stored as text (length, control characters, lone surrogates)."""
    if len(value) > max_length:
        return f"At most {max_length} characters."
    if _CONTROL_RE.search(value):
        return "Control characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Not valid Unicode text."
    return None


# ---------------------------------------------------------------- headers and query


def idempotency_key() -> str:
    """The required ``Idempotency-Key`` header (1–64 visible ASCII characters)."""
    key = request.headers.get("Idempotency-Key")
    if key is None or key == "":
        raise Problem(400, "This request needs an Idempotency-Key header (for example a "
                           "UUID) so that a retry cannot post twice.", code="invalid-request",
                      errors=[{"header": "Idempotency-Key", "detail": "This header is required."}])
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise Problem(400, "The Idempotency-Key header must be 1 to 64 visible ASCII "
                           "characters.", code="invalid-request",
                      errors=[{"header": "Idempotency-Key",
                               "detail": "1 to 64 visible ASCII characters."}])
    return key


def _param_error(status: int, name: str, detail: str) -> Problem:
    code = "invalid-request" if status == 400 else "validation-error"
    return Problem(status, f"The query parameter {name!r} is not acceptable.", code=code,
                   errors=[{"parameter": name, "detail": detail}])


def limit_param(default: int = 50, maximum: int = 200) -> int:
    text = request.args.get("limit")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise _param_error(400, "limit", f"Must be a whole number from 1 to {maximum}.")
    value = int(text)
    if not 1 <= value <= maximum:
        raise _param_error(422, "limit", f"Must be from 1 to {maximum}.")
    return value


def time_param(name: str, *, end: bool) -> datetime | None:
    """``start``/``end``: a date (in the bank's time zone, ``end`` through that whole day)
    or an RFC 3339 date-time with an offset."""
    text = request.args.get(name)
    if text is None or text == "":
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), tzinfo=bank_timezone()).astimezone(timezone.utc)
        if len(text) > 40 or not text.isascii():
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise _param_error(400, name, "Use a date (2026-11-25) or a date-time with an offset "
                                      "(2026-11-25T14:00:00Z).") from None
    if moment.tzinfo is None:
        raise _param_error(400, name, "A date-time needs an offset, such as Z or +01:00.")
    try:
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise _param_error(400, name, "The date-time is out of range.") from None


def encode_cursor(timestamp: datetime, row_id: int) -> str:
    text = json.dumps([timestamp.astimezone(timezone.utc).isoformat(), row_id])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[datetime, int] | None:
    """The position a ``cursor`` query parameter points after, or a 400 problem."""
    if text is None or text == "":
        return None
    try:
        if len(text) > 200 or not text.isascii():
            raise ValueError(text)
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        stamp, row_id = json.loads(raw)
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None or not isinstance(row_id, int) or isinstance(row_id, bool) \
                or not 0 < row_id < 2**63:
            raise ValueError(text)
        return moment.astimezone(timezone.utc), row_id
    except (ValueError, TypeError, binascii.Error, RecursionError, OverflowError):
        raise _param_error(400, "cursor", "Not a cursor this API returned.") from None


def search_param(name: str = "q", max_length: int = 100) -> str:
    text = (request.args.get(name) or "").strip()
    problem = text_problem(text, max_length)
    if problem:
        raise _param_error(422, name, problem)
    return text
