"""The Dockerfile and compose.yaml agree with the app they run.

No container engine is needed: the files are read as text and YAML and compared with
``config.py``, the production refusals and the ``flask`` commands the app registers. CI also
builds the image (``docker build``) when a container engine answers on the machine.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from config import ProductionConfig

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


def test_the_image_runs_gunicorn_on_wsgi_app_as_a_non_root_user():
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0")
    cmd = re.search(r"^CMD\s+(\[.*?\])\s*$", DOCKERFILE.replace("\\\n", ""), re.M | re.S)
    command = yaml.safe_load(cmd.group(1))
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
