"""Real-browser end-to-end fixtures: the real app, a real SMTP sink, Debian's Chromium.

`make e2e` (E2E=1) runs these; the ordinary `make test` does not collect this folder.

- ``mail_sink``: an aiosmtpd server on 127.0.0.1 that keeps every message, so emails travel
  over SMTP exactly as in production.
- ``live_server``: gunicorn serving ``wsgi:app`` on 127.0.0.1 with a fresh, migrated SQLite
  file and ``MAIL_SERVER`` pointed at the sink. ``live_server.bank`` prepares data the walk needs
  but does not itself create (staff, another customer) through the CLI or the app's own code.
- ``browser`` / ``new_page``: headless Chromium pages that record console errors, uncaught page
  errors, CSP violations and 5xx answers; any of them fails the test that was running.
- ``snap(page, name)``: a full-page screenshot in ``artifacts/e2e/`` (not committed).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_support import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, Bank, BrowserWatch,
                         LiveServer, free_port, open_context, server_env, wait_until_answers)
from support.mail_sink import running_mail_sink


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def mail_sink():
    with running_mail_sink() as sink:
        yield sink


def pytest_configure(config):
    # artifacts/e2e/ is emptied once a run, by the one process or pytest-xdist's controller:
    # `make e2e` runs the files in several workers, which share the folder.
    if os.environ.get("E2E") and not hasattr(config, "workerinput"):
        shutil.rmtree(ARTIFACTS, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, mail_sink, artifacts_dir):
    database = tmp_path_factory.mktemp("e2e-db") / "bankapp.db"
    env = server_env(database, mail_sink)
    migrated = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, f"flask db upgrade failed:\n{migrated.stderr}"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # One server per worker (PYTEST_XDIST_WORKER: gw0, gw1, ...), each with its own log.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    log_path = artifacts_dir / (f"server-{worker}.log" if worker else "server.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--timeout", "30", "--graceful-timeout", "5", "--access-logfile", "-", "wsgi:app"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answers(url, process, log_path)
        server = LiveServer(url=url, env=env, process=process, log_path=log_path)
        server.bank = Bank(server)
        LiveServer.running = server
        yield server
    finally:
        LiveServer.running = None
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: nothing left to finish
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, live_server):
    """Open pages in fresh browser profiles; each is watched and closed after the test."""
    opened: list[BrowserWatch] = []

    def make():
        watch, page = open_context(browser, live_server)
        opened.append(watch)
        return page

    yield make
    for watch in opened:
        watch.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail the test when its pages logged an error, threw, broke the CSP or got a 5xx."""
    try:
        result = yield
    except BaseException:
        # Taken from the watch even so, so that a later step is not blamed for them.
        problems = _take_problems()
        if problems:
            print("the browser also reported:\n  " + "\n  ".join(problems))
        raise
    problems = _take_problems()
    if problems:
        raise AssertionError("the browser reported problems:\n  " + "\n  ".join(problems))
    return result


def _take_problems() -> list[str]:
    return [problem for watch in BrowserWatch.active for problem in watch.new_problems()]


# Steps of one journey (a class marked ``incremental``) build on each other: after a failed
# step the later ones are skipped instead of failing for the same reason.
def pytest_runtest_setup(item):
    if item.get_closest_marker("incremental") and item.cls is not None:
        failed = getattr(item.cls, "_failed_step", None)
        if failed:
            pytest.skip(f"an earlier step failed: {failed}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, keep a screenshot of every open page and print the server log's tail."""
    report = yield
    if report.failed and item.get_closest_marker("incremental") and item.cls is not None:
        item.cls._failed_step = item.name
    if report.when == "call" and report.failed:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)
        for n, watch in enumerate(BrowserWatch.active):
            for m, page in enumerate(watch.context.pages):
                try:
                    page.screenshot(path=ARTIFACTS / f"FAILED-{name}-{n}{m}.png", full_page=True)
                except Exception:  # a crashed page must not hide the real failure
                    pass
        server = LiveServer.running
        if server is not None:
            report.sections.append(("server log (tail)", server.log_tail()))
    return report


@pytest.fixture(scope="session")
def snap(artifacts_dir):
    """``snap(page, name)``: a full-page screenshot of what the user sees, in artifacts/e2e/."""
    def take(page, name: str) -> Path:
        path = artifacts_dir / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take
