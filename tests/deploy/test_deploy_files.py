"""The Dockerfile and compose.yaml agree with the app they run.

No container engine is needed: the files are read as text and YAML and compared with
``config.py``, the production refusals and the ``flask`` commands the app registers. CI also
builds the image (``docker build``) when a container engine answers on the machine.
"""
from __future__ import annotations

import re
import shlex
from urllib.parse import parse_qs, urlsplit
from pathlib import Path

import pytest
import yaml

from config import ProductionConfig
from support import doc_tables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# Services that run the bankapp image, and the commands they run.
APP_SERVICES = ("app", "worker", "scheduler", "migrate")
# Read by tools rather than config.py: the Flask CLI.
TOOL_ENV = {"FLASK_APP"}
# Commands compose runs that another branch of issue 14 adds: checked once registered.
def config_env_names() -> set[str]:
    """Every environment variable config.py reads."""
    text = (ROOT / "config.py").read_text()
    pattern = r"""(?:os\.environ(?:\.get)?[\[(]|_bool\()\s*["']([A-Z][A-Z0-9_]*)["']"""
    return set(re.findall(pattern, text))


def service_env(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in COMPOSE["services"][name]["environment"].items()}


def test_compose_runs_the_app_its_worker_and_every_service_they_need():
    assert {"app", "worker", "migrate", "postgres", "pgbouncer", "redis",
            "mailpit"} <= set(COMPOSE["services"])


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_variable_compose_sets_for_bankapp_is_one_config_reads(service):
    unknown = set(service_env(service)) - config_env_names() - TOOL_ENV
    assert not unknown, f"{service} sets variables bankapp never reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_compose_gives_bankapp_every_setting_production_requires(service, monkeypatch):
    env = service_env(service)
    for name in ("SECRET_KEY", "DATABASE_URL", "PUBLIC_URL", "FIELD_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    required = ProductionConfig.missing_settings()  # all of them, with none set
    assert required and set(required) <= set(env)
    assert env["BANKAPP_ENV"] == "production"
    # Shared by every host and worker: the rate-limit store and a real mail server.
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["MAIL_SERVER"] == "mailpit"


def test_the_app_goes_through_pgbouncer_and_migrations_go_direct():
    assert "@pgbouncer:6432/" in service_env("app")["DATABASE_URL"]
    assert "@postgres:5432/" in service_env("migrate")["DATABASE_URL"]
    ini = (ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode = transaction$", ini, re.M)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_compose_gives_up_connecting_to_a_hung_database_within_seconds(service):
    query = parse_qs(urlsplit(service_env(service)["DATABASE_URL"]).query)
    assert 2 <= int(query["connect_timeout"][0]) <= 3


@pytest.mark.parametrize("service", ["worker", "scheduler", "migrate"])
def test_compose_commands_are_commands_the_flask_cli_has(service, app):
    command = COMPOSE["services"][service]["command"]
    assert command[0] == "flask"
    name = command[1]
    registered = set(app.cli.commands)
    assert name in registered
    result = app.test_cli_runner().invoke(args=[*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_the_image_uses_the_projects_python_and_a_slim_base():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.search(rf"^FROM python:{re.escape(version)}-slim\b", DOCKERFILE, re.M)


def image_command() -> list[str]:
    cmd = re.search(r"^CMD\s+(\[.*?\])\s*$", DOCKERFILE.replace("\\\n", ""), re.M | re.S)
    return yaml.safe_load(cmd.group(1))


@pytest.mark.xfail(strict=True, reason="registry-1.docker.io could not be reached when the pin "
                   "was due: put the digest of python:<version>-slim in the FROM line (the "
                   "Dockerfile says how) and drop this mark")
def test_the_base_image_is_pinned_by_digest():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.search(rf"^FROM python:{re.escape(version)}-slim@sha256:[0-9a-f]{{64}}\s*$",
                     DOCKERFILE, re.M)


def test_the_image_checks_its_own_health_on_healthz():
    healthcheck = re.search(r"^HEALTHCHECK\s+(.*)$", DOCKERFILE.replace("\\\n", ""), re.M)
    assert healthcheck, "no HEALTHCHECK in the Dockerfile"
    assert "127.0.0.1:8000/healthz" in healthcheck.group(1)
    assert re.search(r"--timeout=\d+s", healthcheck.group(1))


def test_the_image_runs_gunicorn_with_the_repositorys_config_and_no_access_log():
    command = image_command()
    assert command[command.index("--config") + 1] == "gunicorn.conf.py"
    assert not any(part.startswith("--access-log") for part in command)
    copied = set()
    for line in re.findall(r"^COPY\s+(.+)$", DOCKERFILE, re.M):
        copied.update(shlex.split(line)[:-1])
    assert "gunicorn.conf.py" in copied


def test_a_gunicorn_worker_takes_the_loaded_app_out_of_garbage_collection():
    import gc
    import runpy

    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    try:
        settings["post_worker_init"](None)
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert frozen > 0


def test_gunicorn_builds_no_access_log_line_it_would_drop(monkeypatch):
    """gunicorn.conf.py turns the access log off; with its logconfig_dict set, gunicorn's own
    logger would still build every request's access-log fields, for a logger that drops them."""
    import runpy

    from gunicorn.config import Config

    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    config = Config()
    for name in ("accesslog", "logconfig_dict", "logger_class"):
        if name in settings:
            config.set(name, settings[name])
    logger = config.logger_class(config)

    def refuse(*args):
        raise AssertionError("access-log fields built")

    monkeypatch.setattr(logger, "atoms", refuse)
    logger.access(None, None, {}, None)


def test_the_image_runs_gunicorn_on_wsgi_app_as_a_non_root_user():
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0")
    command = image_command()
    assert command[0] == "gunicorn" and command[-1] == "wsgi:app"
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^gunicorn==", requirements, re.M)
    # The module gunicorn loads makes ``app``.
    assert re.search(r"^    app = create_app\(\)$", (ROOT / "wsgi.py").read_text(), re.M)


def test_the_image_copies_everything_the_app_imports():
    copied = set()
    for line in re.findall(r"^COPY\s+(.+)$", DOCKERFILE, re.M):
        copied.update(shlex.split(line)[:-1])
    assert {"requirements.txt", "config.py", "wsgi.py", "bankapp", "migrations",
            "public"} <= copied


# ---------------------------------------------------------------- the guide's table


def _compose_table() -> dict[str, str]:
    """Variable -> who sets it ("you" or "compose.yaml"), from docs/deployment.md."""
    return {name: cells[0] for names, cells in doc_tables.table_rows(doc_tables.COMPOSE_TABLE)
            for name in names}


def _asked_of_the_operator(value: str) -> bool:
    return re.fullmatch(r"\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}", value) is not None


def test_the_guides_compose_table_names_every_setting_production_requires(monkeypatch):
    for name in ("SECRET_KEY", "DATABASE_URL", "PUBLIC_URL", "FIELD_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    missing = set(ProductionConfig.missing_settings()) - set(_compose_table())
    assert not missing, f"docs/deployment.md's compose table leaves out {sorted(missing)}"


def test_the_guides_vercel_table_names_every_setting_production_requires(monkeypatch):
    # .ci/vercel_check.py starts the built function with exactly this table's variables.
    for name in ("SECRET_KEY", "DATABASE_URL", "PUBLIC_URL", "FIELD_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    listed = doc_tables.variables(doc_tables.VERCEL_TABLE)
    missing = set(ProductionConfig.missing_settings()) - set(listed)
    assert not missing, f"docs/deployment.md's Vercel table leaves out {sorted(missing)}"


def test_compose_sets_or_asks_for_each_variable_as_the_guides_table_says():
    env = {**service_env("app"), **service_env("backup")}
    for name, set_by in _compose_table().items():
        assert name in env, f"the guide lists {name}, compose.yaml never sets it"
        assert _asked_of_the_operator(env[name]) == (set_by == "you"), (
            f"the guide says {name} is set by {set_by}; compose.yaml has {env[name]!r}")


def test_compose_asks_the_operator_only_for_what_the_guide_lists():
    table = _compose_table()
    for service in (*APP_SERVICES, "backup"):
        for name, value in service_env(service).items():
            if _asked_of_the_operator(value):
                assert table.get(name) == "you", f"{service} asks for {name}; the guide does not"


# ---------------------------------------------------------------- backups


def test_the_backup_service_backs_up_nightly_keeps_some_and_restore_checks_each():
    service = COMPOSE["services"]["backup"]
    script = service["command"][-1]
    assert service["image"] == "bankapp" and "backups:/backups" in service["volumes"]
    assert 'flask backup --keep "$$BACKUP_KEEP"' in script
    assert "flask restore-check" in script and "sleep" in script
    assert "@postgres:5432/" in service_env("backup")["DATABASE_URL"]  # not through PgBouncer
    assert "backups" in COMPOSE["volumes"]


def test_the_backup_commands_compose_runs_are_registered(app):
    for command in ("backup", "restore-check", "restore"):
        result = app.test_cli_runner().invoke(args=[command, "--help"])
        assert result.exit_code == 0, result.output


def test_the_image_has_the_postgresql_client_of_composes_server():
    server = re.fullmatch(r"postgres:(\d+)", COMPOSE["services"]["postgres"]["image"])
    client = re.search(r"^ARG PG_MAJOR=(\d+)$", DOCKERFILE, re.M)
    assert server and client and server.group(1) == client.group(1)
    assert "postgresql-client-${PG_MAJOR}" in DOCKERFILE


# ---------------------------------------------------------------- periodic jobs and metrics


def test_vercel_runs_every_periodic_job_once_a_day():
    import json

    from bankapp.schedule import JOBS

    crons = json.loads((ROOT / "vercel.json").read_text())["crons"]
    assert sorted(cron["path"] for cron in crons) == sorted(
        f"/internal/cron/{job.name}" for job in JOBS)
    for cron in crons:
        # A Hobby project refuses to deploy a cron that runs more than once a day.
        minute, hour, *rest = cron["schedule"].split()
        assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"], cron


def test_compose_schedules_every_job_the_mail_worker_does_not_run():
    command = COMPOSE["services"]["scheduler"]["command"]
    assert command[:3] == ["flask", "run-jobs", "--due"]
    assert command[command.index("--skip") + 1] == "deliver-mail"
    assert COMPOSE["services"]["worker"]["command"] == ["flask", "deliver-mail"]


def test_the_image_gives_its_workers_a_metrics_directory_its_user_owns():
    env = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", DOCKERFILE)
    assert env, "the image runs several gunicorn workers without multiprocess metrics"
    assert re.search(r'chown bankapp:bankapp "\$PROMETHEUS_MULTIPROC_DIR"', DOCKERFILE)


def test_every_alert_rule_is_explained_in_the_operations_guide():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    guide = (ROOT / "docs" / "operations.md").read_text()
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert names
    assert [name for name in names if f"\n### {name}\n" not in guide] == []
