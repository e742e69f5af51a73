"""Releases and the expand → migrate → contract rule (docs/operations.md, "Releases and
upgrades"): which migrations came after the previous release, and whether one contracts the
schema (drops or renames what the previous release's code still reads).

Used by tests/deploy/test_migrations.py and the upgrade drill (bench/drills.py).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE_FILE = REPO / ".ci" / "previous-release"
VERSIONS = REPO / "migrations" / "versions"

# What a migration may not do while the previous release still runs: anything that removes or
# renames a table, column or constraint. Such a step ships in a later release, marked
# ``CONTRACT = True``, once no running code needs the old shape.
CONTRACT_OPERATIONS = re.compile(
    r"\bop\.(drop_table|drop_column|rename_table|drop_constraint)\b|\bnew_column_name\s*=|"
    r"\bbatch_op\.(drop_column|drop_constraint)\b|\bDROP\s+(TABLE|COLUMN)\b|"
    r"\bRENAME\s+(TO|COLUMN)\b", re.IGNORECASE)


def previous_release() -> tuple[str, str]:
    """(commit, version) of the previous release, from .ci/previous-release."""
    first = PREVIOUS_RELEASE_FILE.read_text().splitlines()[0].split()
    return first[0], first[1]


def has_commit(commit: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO,
                          capture_output=True).returncode == 0


def migrations_since(commit: str) -> list[str]:
    """File names of the migrations this checkout has and ``commit`` had not."""
    listed = subprocess.run(["git", "ls-tree", "--name-only", commit, "migrations/versions/"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    before = {Path(name).name for name in listed.split()}
    return sorted(p.name for p in VERSIONS.glob("*.py") if p.name not in before)


def contract_operation(source: str) -> str | None:
    """The first schema-contracting operation in a migration's ``upgrade()``, if any.

    A migration marked ``WIDENS_CONSTRAINTS = True`` may drop a CHECK constraint to put a
    looser one in its place (more account types allowed, say): the previous release's rows
    and writes still pass, so that is an expand step; its other drops still count."""
    upgrade = source.split("def downgrade", 1)[0]
    for found in CONTRACT_OPERATIONS.finditer(upgrade):
        if found.group(0).lower().endswith("drop_constraint") and widens_constraints(source):
            continue
        return found.group(0)
    return None


def widens_constraints(source: str) -> bool:
    return re.search(r"^WIDENS_CONSTRAINTS\s*=\s*True\b", source, re.MULTILINE) is not None


def marked_contract(source: str) -> bool:
    return re.search(r"^CONTRACT\s*=\s*True\b", source, re.MULTILINE) is not None
