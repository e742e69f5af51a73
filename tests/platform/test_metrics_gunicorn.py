"""Under gunicorn with several workers, /metrics adds up what every worker counted.

A real server: ``gunicorn wsgi:app`` with two workers, ``PROMETHEUS_MULTIPROC_DIR`` and the
repository's ``gunicorn.conf.py``, on a fresh migrated SQLite file.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.net import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-for-the-gunicorn-test-0123456789"
REQUESTS = 40


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def server(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # Left by an earlier run: gunicorn.conf.py must empty the directory before workers start.
    (metrics_dir / "counter_999999.db").write_bytes(b"not a metrics file")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("TEST_", "REDIS", "VERCEL", "PROMETHEUS"))}
    env.update(BANKAPP_ENV="development", FLASK_APP="wsgi", SECRET_KEY="gunicorn-test",
               DATABASE_URL=f"sqlite:///{tmp_path / 'bankapp.db'}", METRICS_TOKEN=TOKEN,
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), LOG_FORMAT="json")
    migrated = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
               "--workers", "2", "--timeout", "30", "wsgi:app"]
    with serving(command, env, ROOT, port, log_path, stop=signal.SIGINT, stop_seconds=10):
        yield f"http://127.0.0.1:{port}", log_path


def login_page_requests(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "bankapp_http_requests_total"
                    and sample.labels == {"endpoint": "auth.login", "method": "GET",
                                          "status": "200"}):
                return sample.value
    return 0.0


def test_every_scrape_counts_the_requests_of_every_worker(server):
    url, log_path = server
    # Sent concurrently, so that both workers answer some (one after the other, the same
    # worker tends to take them all).
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: get(f"{url}/accounts/login/")[0], range(REQUESTS)))
    assert statuses == [200] * REQUESTS
    # Whichever worker answers the scrape, it reports all of them.
    for _ in range(6):
        status, text = get(f"{url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        assert login_page_requests(text) == REQUESTS
    lines = [json.loads(line) for line in log_path.read_text().splitlines()
             if line.startswith("{")]
    assert sum(1 for line in lines if line.get("endpoint") == "auth.login") == REQUESTS


def test_after_a_restart_labelled_counters_are_scraped_at_zero(server):
    # An increase() alert on dead mail or failed jobs needs the series before the first event.
    url, _ = server
    status, text = get(f"{url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(text) for sample in family.samples}
    assert samples[("bankapp_mail_messages_total", (("outcome", "dead"),))] == 0
    assert samples[("bankapp_job_runs_total", (("job", "reconcile"), ("outcome", "failed")))] == 0
    assert samples[("bankapp_job_late", (("job", "reconcile"),))] == 1
