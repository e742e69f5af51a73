"""Forms as a browser sends them: the CSRF token, the hidden fields, a GET before each POST."""
from __future__ import annotations

import re

from flask.testing import FlaskClient

_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    """Fetch ``url`` like a browser and return the CSRF token its form carries."""
    response = client.get(url)
    match = _CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token in the form at {url} (status {response.status_code})"
    return match.group(1)


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page (csrf token, idempotency key), as a browser would send them."""
    fields = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


def post_form(client, url: str, data: dict, **kwargs):
    """GET the form at ``url``, then POST ``data`` with its hidden fields, like a browser."""
    page = client.get(url)
    fields = form_fields(page.get_data(as_text=True))
    fields.update(data)
    return client.post(url, data=fields, **kwargs)


class ClosingClient(FlaskClient):
    """Flask's test client reading each answer whole and closing it, as a WSGI server does:
    work the app runs after its answer (``call_on_close``: the request's mail) runs before
    the call returns."""

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


def radio_choices(html: str, name: str) -> list[tuple[str, bool, str]]:
    """The radio buttons named ``name`` as (value, checked, the label's words), in page order."""
    found = []
    for label in re.findall(r"<label[^>]*>(.*?)</label>", html, re.S):
        radio = re.search(rf'<input type="radio" name="{name}" value="([^"]*)"([^>]*)>', label)
        if radio:
            words = " ".join(re.sub(r"<[^>]+>", " ", label).split())
            found.append((radio.group(1), "checked" in radio.group(2), words))
    return found


def hidden_radio_values(html: str, name: str) -> list[str]:
    """The values of the radio buttons named ``name`` whose card (label) is drawn hidden."""
    return [value for attributes, value in re.findall(
        rf'<label([^>]*)>\s*<input type="radio" name="{name}" value="([^"]*)"', html)
        if re.search(r"\bhidden\b", attributes)]
