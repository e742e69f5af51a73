"""What every app of a test process compiles alike, compiled once per process, not per test.

Every test builds its own app (``create_app``), about 60 ms of which went to compiling the
same things again:

- **URL builders.** For each of the app's ~120 routes Werkzeug writes and compiles two small
  Python functions that build its URLs: about 95 % of ``create_app``.
- **Templates.** Each app has its own Jinja environment, which compiles every template it
  renders again, tens of milliseconds for a page and the layouts it extends.

Templates go through Jinja's bytecode cache, its public way to share compiled templates
between environments. Jinja checks each entry against the template's source, so an edited
template is compiled afresh.

URL builders have no public cache: ``RuleWithSharedBuilders`` keeps what
``Rule._compile_builder`` returns, keyed by everything that method reads. That method is
Werkzeug's own (3.1, pinned in requirements.txt), and a builder takes the rule as an
argument, so one builder serves every app's copy of a rule.
``tests/platform/test_suite_compiled_once.py`` checks that each shared builder is the code
Werkzeug compiles for its rule and that the apps build the same URLs with and without them,
so a Werkzeug upgrade that changes the method fails there, not in a stray test.
"""
from __future__ import annotations

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from werkzeug.routing import Rule

from bankapp.platform.web import BankApp


class CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, in memory, for every app of this process."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self.compiled.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()

    def clear(self) -> None:
        self.compiled.clear()


class RuleWithSharedBuilders(Rule):
    """A Werkzeug rule whose URL builders are compiled once per process."""

    builders: dict[tuple, object] = {}

    def _compile_builder(self, append_unknown: bool = True):
        # Everything Rule._compile_builder reads: the parsed rule (its trace), the defaults
        # (folded into the URL with their converters), and the rule's text (the name).
        defaults = tuple(sorted((name, repr(value)) for name, value in
                                (self.defaults or {}).items()))
        converters = tuple(sorted((name, type(converter).__qualname__)
                                  for name, converter in self._converters.items()))
        key = (append_unknown, self.rule, tuple(self._trace), defaults, converters)
        builder = self.builders.get(key)
        if builder is None:
            builder = self.builders[key] = super()._compile_builder(append_unknown)
        return builder


def compile_once() -> None:
    """Every app built from now on in this process shares compiled templates and builders."""
    BankApp.jinja_options = {**BankApp.jinja_options, "bytecode_cache": CompiledTemplates()}
    BankApp.url_rule_class = RuleWithSharedBuilders
