"""escape_like: what a person types is matched literally by a LIKE query, on the real database."""
import pytest
import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.platform.search import escape_like


def contains(haystack: str, needle: str) -> bool:
    pattern = f"%{escape_like(needle)}%"
    return db.session.scalar(sa.select(sa.literal(haystack).like(pattern, escape="\\")))


@pytest.mark.parametrize("text", ["50%", "a_b", "back\\slash", "%_\\"])
def test_escaped_text_finds_itself(app, text):
    assert contains(f"before {text} after", text)


@pytest.mark.parametrize("haystack, needle", [
    ("500", "5%0"), ("axb", "a_b"), ("back/slash", "back\\slash")])
def test_wildcards_in_escaped_text_match_only_themselves(app, haystack, needle):
    assert not contains(haystack, needle)
