"""The environment-variable tables of the deploy guides (docs/deployment.md), read the way
an operator reads them, so a check and the guide it checks cannot drift apart.

A table is found by its caption, text in the paragraph just above it; each row's first cell
names one or more variables in backticks (`` `MAIL_SERVER`, `MAIL_PORT` ``), the other cells
are returned as they are. Used by tests/deploy/test_deploy_files.py (compose) and
.ci/vercel_check.py (Vercel).
"""
from __future__ import annotations

import re
from pathlib import Path

DEPLOYMENT_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
VERCEL_TABLE = "Environment variables for Vercel"
COMPOSE_TABLE = "Environment variables for compose"


def table_rows(caption: str, path: Path = DEPLOYMENT_GUIDE) -> list[tuple[list[str], list[str]]]:
    """(variable names, other cells) for each row of the table under ``caption``."""
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if caption in line), None)
    if start is None:
        raise LookupError(f"{path.name} has no table captioned {caption!r}")
    rows = []
    in_table = False
    for line in lines[start + 1:]:
        stripped = line.strip()
        if not in_table:
            if stripped.startswith("#"):
                break  # the caption's section ended before any table
            in_table = stripped.startswith("|")
            if not in_table:
                continue  # the rest of the caption's paragraph
        if not stripped.startswith("|"):
            break
        cells = [cell.strip() for cell in stripped.strip("|").split("|")]
        if set(cells[0]) <= set("-: ") or cells[0] == "Variable":
            continue  # the header and its rule
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        if names:
            rows.append((names, cells[1:]))
    if not rows:
        raise LookupError(f"the table captioned {caption!r} in {path.name} has no rows")
    return rows


def variables(caption: str, path: Path = DEPLOYMENT_GUIDE) -> list[str]:
    """Every variable the table under ``caption`` names, in its order."""
    return [name for names, _ in table_rows(caption, path) for name in names]
