"""The suite's apps share their compiled URL builders and templates (support/compiled.py)
and build the same URLs and pages as apps that compile their own."""
from __future__ import annotations

from werkzeug.routing import Rule

from bankapp import create_app
from bankapp.platform.web import BankApp
from support.compiled import CompiledTemplates, RuleWithSharedBuilders
from support.database import SuiteConfig


def _builders(app) -> dict[tuple[str, str], tuple]:
    # Rule._build and _build_unknown are the builders Rule.compile makes (Werkzeug 3.1).
    return {(rule.rule, rule.endpoint): (rule._build.__func__.__code__,
                                         rule._build_unknown.__func__.__code__)
            for rule in app.url_map.iter_rules()}


def _every_url(app) -> dict[tuple[str, str], tuple[str, str]]:
    """Each rule's URL built with its defaults and every other argument 7, without and with
    a query (or the error, where 7 is not a value its converter takes)."""
    adapter = app.url_map.bind("bank.test", url_scheme="https")
    urls = {}
    for rule in app.url_map.iter_rules():
        values = {**{name: 7 for name in rule.arguments}, **(rule.defaults or {})}
        try:
            urls[rule.rule, rule.endpoint] = (
                adapter.build(rule.endpoint, values, force_external=True),
                adapter.build(rule.endpoint, {**values, "extra": "a b/ç"}))
        except ValueError as error:
            urls[rule.rule, rule.endpoint] = (repr(error), "")
    return urls


def test_shared_url_builders_are_what_werkzeug_compiles_for_each_rule(app, monkeypatch):
    monkeypatch.setattr(BankApp, "url_rule_class", Rule)
    own = create_app(SuiteConfig)
    assert not any(isinstance(rule, RuleWithSharedBuilders) for rule in own.url_map.iter_rules())
    assert all(isinstance(rule, RuleWithSharedBuilders) for rule in app.url_map.iter_rules())
    assert _builders(app) == _builders(own)
    assert _every_url(app) == _every_url(own)


def test_a_second_app_compiles_no_url_builder_of_its_own(app):
    compiled = len(RuleWithSharedBuilders.builders)
    create_app(SuiteConfig)
    assert compiled > 0
    assert len(RuleWithSharedBuilders.builders) == compiled


def test_a_second_app_renders_pages_from_the_shared_templates(app):
    cache = app.jinja_env.bytecode_cache
    assert isinstance(cache, CompiledTemplates)
    first = app.test_client().get("/accounts/login/")
    compiled = dict(cache.compiled)
    other = create_app(SuiteConfig)
    second = other.test_client().get("/accounts/login/")
    assert first.status_code == second.status_code == 200
    assert compiled and cache.compiled == compiled
    assert other.jinja_env.bytecode_cache is cache
