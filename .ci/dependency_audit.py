"""Known vulnerabilities in the installed, pinned dependencies (ASVS 5.0 V15.2.1): pip-audit
over the environment CI tests (requirements.txt and requirements-dev.txt as installed, with
the packages they pull in), against PyPI's advisory data.

Three outcomes, so an advisory service that does not answer never makes CI flaky:
- a dependency with a known vulnerability: its name, version, advisory and fixed versions are
  printed and the check fails (exit 1);
- every dependency audited and none affected: one line, exit 0;
- the advisory source did not answer (unreachable, timed out, or it knew none of the
  packages): a line starting "DEPENDENCY AUDIT SKIPPED" says why and points to the monthly
  check (docs/operations.md); exit 0.
Usage: python .ci/dependency_audit.py [PIP_AUDIT_ARGS...] (make audit-deps).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TIMEOUT_SECONDS = 120
# The pip-audit beside this Python (the venv's); PIP_AUDIT names another (the tests' stand-ins).
PIP_AUDIT = os.environ.get("PIP_AUDIT") or str(Path(sys.executable).with_name("pip-audit"))
MONTHLY = "run `make audit-deps` from a host that reaches PyPI (docs/operations.md, monthly)"


def skipped(why: str) -> int:
    print(f"DEPENDENCY AUDIT SKIPPED: {why}; {MONTHLY}")
    return 0


def main(extra: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "audit.json"
        command = [PIP_AUDIT, "--local", "--skip-editable", "--progress-spinner", "off",
                   "--format", "json", "--output", str(report), *extra]
        try:
            run = subprocess.run(command, capture_output=True, text=True,
                                 timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return skipped(f"no answer within {TIMEOUT_SECONDS} s")
        if not report.exists():
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            return skipped(f"pip-audit stopped ({last[:200]})")
        dependencies = json.loads(report.read_text())["dependencies"]
    audited = [d for d in dependencies if "skip_reason" not in d]
    affected = [d for d in audited if d.get("vulns")]
    for dependency in affected:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']} "
                  f"(fixed in {fixed})")
    if affected:
        print(f"dependency audit: {len(affected)} of {len(audited)} packages have known "
              f"vulnerabilities: update their pins (remediation times: SECURITY.md)")
        return 1
    if not audited:
        return skipped(f"the advisory source knew none of the {len(dependencies)} packages")
    print(f"dependency audit: {len(audited)} packages audited, no known vulnerability"
          f" ({len(dependencies) - len(audited)} not known to the advisory source)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
