"""`make vercel-check`: build the app with the real Vercel CLI, then run and drive what it built.

1. Copies the checkout's files (tracked and untracked, minus .gitignore) to .vercel-check/src,
   as a Git deployment would see them, writes a throwaway .vercel/project.json there and runs
   `vercel build --yes` (the CLI and uv come from .vercel-check/tools, see the Makefile).
2. Reads the built function (.vercel/output/functions/api/index.func/.vc-config.json): runtime
   = .python-version, memory and maxDuration set, no tests/, bench/, .ci/, docs/ or dev-only
   packages in its file map; prints its size and file count and fails over MAX_BUNDLE_MB. Checks
   that the static files are in the CDN output with a long cache header, and that the one cron
   (the mail outbox's) is in the build output.
3. Lays the function out as it is deployed (.vercel-check/function: the `_vendor` packages and
   the app files, from the file map) and starts it with Vercel's own Python runtime
   (vc__handler__python, the runtime's IPC handshake answered here), on a bare Python of the
   function's version, in production settings against the local PostgreSQL (a throwaway
   database, dropped at the end) and Redis, with an SMTP sink for the emails.
4. Drives it over HTTP as Vercel's proxy would (X-Forwarded-Proto: https): login page with HSTS
   and CSP, sign-up and the emailed confirmation link, an API token, two accounts, a deposit,
   one transfer with an Idempotency-Key (and its replay), and the mail cron's route as Vercel
   Cron calls it (GET with the CRON_SECRET bearer; 401 without); the first admin is made with the
   built app's `flask create-user`, and `flask check` must pass.
5. Starts the same function without SECRET_KEY and FIELD_ENCRYPTION_KEY: it must answer 500
   with no stack trace, and one log line must name both.

The function's variables are exactly those of docs/deployment.md's Vercel table (read by
tests/support/doc_tables.py), so a variable the guide leaves out is missing here too; the table
must name every setting production refuses to start without. `flask db upgrade` runs as the
guide's release step (step 8) does, before the function serves.

Any failure exits non-zero. Environment: VERCEL_CHECK_PG (server URL, default
postgresql://postgres@127.0.0.1:5432/postgres), VERCEL_CHECK_REDIS (default
redis://127.0.0.1:6379/14), VERCEL_CHECK_MAX_MB (default 200).
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".vercel-check"
TOOLS = WORK / "tools"
SRC = WORK / "src"
FUNCTION = WORK / "function"
RUNTIME = WORK / "runtime"
VERCEL = TOOLS / "node_modules" / ".bin" / "vercel"
UV_BIN = TOOLS / "uv" / "bin"
FUNCTION_NAME = "api/index"

MAX_BUNDLE_MB = float(os.environ.get("VERCEL_CHECK_MAX_MB", "200"))
# vercel.json's crons, which `vercel build` must carry to .vercel/output/config.json as they
# are (tests/deploy checks them against the job catalogue).
EXPECTED_CRONS = json.loads((ROOT / "vercel.json").read_text())["crons"]
CRON_SECRET = secrets.token_urlsafe(32)
SECRET_KEY = secrets.token_hex(32)
PG_SERVER = os.environ.get("VERCEL_CHECK_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VERCEL_CHECK_REDIS", "redis://127.0.0.1:6379/14")

# Nothing of these may reach the function.
FORBIDDEN_PREFIXES = ("tests/", "bench/", ".ci/", "docs/", "public/", ".venv/", ".vercel-check/",
                      "node_modules/", "instance/", "artifacts/")
DEV_ONLY_PACKAGES = ("pytest", "_pytest", "hypothesis", "schemathesis", "playwright", "aiosmtpd")

HOST = "bankapp-check.vercel.app"
PASSWORD = "Quartz-lantern-meadow-42"   # passes the sign-up policy (length, zxcvbn)
ADMIN_PASSWORD = "Heron-copper-violin-97"

sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]
from e2e_support import free_port  # noqa: E402
from support import doc_tables  # noqa: E402  (the deploy guide's tables)
from support.mail_sink import MailSink  # noqa: E402  (the tests' SMTP sink)


class CheckFailed(Exception):
    pass


def require(condition, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def step(title: str) -> None:
    print(f"\n== vercel-check: {title}", flush=True)


# ---------------------------------------------------------------- 1. build

def stage_source() -> None:
    """The checkout's files as a deployment sees them (no .venv, no caches, no .vercel-check)."""
    if SRC.exists():
        shutil.rmtree(SRC)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout
    count = 0
    for name in sorted(set(filter(None, listed.decode().split("\0")))):
        source = ROOT / name
        if not source.is_file():  # deleted in the work tree but still in the index
            continue
        target = SRC / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
        count += 1
    (SRC / ".vercel").mkdir()
    # A throwaway local project: `vercel build` needs one, and never talks to Vercel with it.
    (SRC / ".vercel" / "project.json").write_text(json.dumps({
        "projectId": "prj_vercelcheck", "orgId": "team_vercelcheck",
        "settings": {"framework": None}}))
    print(f"staged {count} files in {SRC.relative_to(ROOT)}")


def vercel_build() -> None:
    require(VERCEL.exists(), f"{VERCEL} is missing: run `make vercel-check` (it installs it)")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("VERCEL", "VIRTUAL_ENV", "PYTHON", "UV_"))}
    env.update(PATH=f"{UV_BIN}:{os.environ['PATH']}", VERCEL_TELEMETRY_DISABLED="1")
    started = time.monotonic()
    result = subprocess.run([str(VERCEL), "build", "--yes"], cwd=SRC, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    output = (result.stdout + result.stderr).strip()
    print(output)
    require(result.returncode == 0, f"vercel build failed (exit {result.returncode})")
    print(f"vercel build: {time.monotonic() - started:.0f} s")


# ---------------------------------------------------------------- 2. what was built

def inspect_output() -> dict:
    output = SRC / ".vercel" / "output"
    functions = sorted(p.relative_to(output / "functions").as_posix()
                       for p in (output / "functions").rglob("*.func"))
    require(functions == [f"{FUNCTION_NAME}.func"],
            f"expected one function {FUNCTION_NAME}.func, built: {functions}")
    func_dir = output / "functions" / f"{FUNCTION_NAME}.func"
    config = json.loads((func_dir / ".vc-config.json").read_text())
    file_map: dict[str, str] = config.get("filePathMap") or {}
    require(file_map, "the function has no filePathMap")

    python_version = (ROOT / ".python-version").read_text().strip()
    require(config.get("runtime") == f"python{python_version}",
            f"function runtime {config.get('runtime')!r}, .python-version says {python_version}")
    require(config.get("maxDuration") and config.get("memory"),
            f"maxDuration/memory from vercel.json not applied: {config}")
    print(f"function {FUNCTION_NAME}: runtime {config['runtime']}, memory {config['memory']} MB, "
          f"maxDuration {config['maxDuration']} s, handler {config['handler']}")

    forbidden = sorted(name for name in file_map if name.startswith(FORBIDDEN_PREFIXES))
    dev_packages = sorted({name.split("/")[1] for name in file_map
                           if name.startswith("_vendor/")
                           and name.split("/")[1].split("-")[0] in DEV_ONLY_PACKAGES})
    require(not forbidden, f"the function carries files it must not: {forbidden[:20]}")
    require(not dev_packages, f"the function carries dev-only packages: {dev_packages}")
    for needed in ("wsgi.py", "api/index.py", "config.py", "bankapp/__init__.py",
                   "bankapp/templates/base.html", "migrations/env.py", "_vendor/flask/__init__.py",
                   "bankapp/translations/fr/LC_MESSAGES/messages.mo"):
        require(needed in file_map, f"the function lacks {needed}")

    sizes = {name: (SRC / source).stat().st_size for name, source in file_map.items()}
    own = [p for p in func_dir.rglob("*") if p.is_file()]
    total = sum(sizes.values()) + sum(p.stat().st_size for p in own)
    count = len(file_map) + len(own)
    top = {}
    for name, size in sizes.items():
        parts = name.split("/")
        key = "/".join(parts[:2]) if parts[0] == "_vendor" and len(parts) > 2 else parts[0]
        top[key] = top.get(key, 0) + size
    app_files = sorted(name for name in file_map if not name.startswith("_vendor/"))
    print(f"app files in the function ({len(app_files)}): top level "
          + ", ".join(sorted({n.split('/')[0] for n in app_files})))
    print("largest parts: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in
                                        sorted(top.items(), key=lambda kv: -kv[1])[:8]))
    print(f"BUNDLE SIZE: {total / 1e6:.1f} MB uncompressed in {count} files "
          f"(limit here {MAX_BUNDLE_MB:.0f} MB; Vercel's is 250 MB)")
    require(total <= MAX_BUNDLE_MB * 1e6,
            f"the function is {total / 1e6:.1f} MB, over the {MAX_BUNDLE_MB:.0f} MB limit")

    for asset in ("static/css/app.css", "static/favicon.svg"):
        require((output / "static" / asset).is_file(), f"{asset} is not in the CDN output")
    routes = json.loads((output / "config.json").read_text())
    cached = [r for r in routes.get("routes", []) if "static" in r.get("src", "")
              and "max-age=31536000" in (r.get("headers") or {}).get("Cache-Control", "")]
    require(cached, "no year-long Cache-Control route for /static in config.json")
    require(routes.get("crons") == EXPECTED_CRONS,
            f"crons in the build output: {routes.get('crons')}, expected {EXPECTED_CRONS}")
    print("static files: public/static served by the CDN with "
          f"Cache-Control: {cached[0]['headers']['Cache-Control']}")
    return {"func_dir": func_dir, "config": config, "file_map": file_map}


def lay_out_function(built: dict) -> None:
    """The function's directory as Vercel deploys it (/var/task): mapped files + handler."""
    if FUNCTION.exists():
        shutil.rmtree(FUNCTION)
    for name, source in built["file_map"].items():
        target = FUNCTION / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(SRC / source, target)
        except OSError:
            shutil.copy2(SRC / source, target)
    for own in built["func_dir"].iterdir():
        if own.is_file() and own.name != ".vc-config.json":
            shutil.copy2(own, FUNCTION / own.name)


def bare_python(runtime: str) -> Path:
    """A Python of the function's version with nothing installed (like the function's)."""
    python = RUNTIME / "bin" / "python"
    wanted = runtime.removeprefix("python")
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(RUNTIME)], check=True)
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    require(version == wanted, f"the runtime Python is {version}, the function needs {wanted}")
    return python


# ---------------------------------------------------------------- 3. the database

def admin_connection():
    import psycopg2

    connection = psycopg2.connect(PG_SERVER, connect_timeout=10)
    connection.autocommit = True
    return connection


def create_database() -> str:
    name = "bankapp_vercel_" + secrets.token_hex(4)
    connection = admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    parts = urlsplit(PG_SERVER)
    return parts._replace(path="/" + name).geturl()


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    connection = admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        connection.close()
    print(f"dropped database {name}")


# ---------------------------------------------------------------- 4. running the function

# Set by Vercel on every function, not by the operator.
PLATFORM_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
                "PYTHONPATH": "_vendor", "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1", "VERCEL": "1", "VERCEL_ENV": "production"}
# The check's own choices, not deployment settings: the walk's customer uses the API without
# a second factor and funds their own account (no teller walks here; production's default
# refuses it), and the SMTP sink speaks plain SMTP without a login.
WALK_ENV = {"CUSTOMER_2FA": "optional", "CUSTOMER_SELF_DEPOSITS": "1", "MAIL_USE_TLS": "0",
            "MAIL_USE_SSL": "0"}
# Rows of the guide's table the check leaves empty, with the reason.
LEFT_EMPTY = {"MAIL_USERNAME": "the sink needs no login", "MAIL_PASSWORD": "the sink needs no "
              "login"}


def guide_variables() -> list[str]:
    """The variables docs/deployment.md tells a Vercel operator to set; every one production
    requires must be among them."""
    from config import ProductionConfig

    names = doc_tables.variables(doc_tables.VERCEL_TABLE)
    saved = {name: os.environ.pop(name, None) for name in
             ("SECRET_KEY", "DATABASE_URL", "PUBLIC_URL", "FIELD_ENCRYPTION_KEY")}
    try:
        required = ProductionConfig.missing_settings()  # all of them, with none set
    finally:
        os.environ.update({name: value for name, value in saved.items() if value is not None})
    missing = sorted(set(required) - set(names))
    require(not missing, f"docs/deployment.md's Vercel table leaves out {missing}: a deployment "
                         "made by the guide would answer 500 on every request")
    return names


def function_env(database_url: str, sink: MailSink, **overrides) -> dict:
    """What the function sees: the platform's variables and exactly the guide's table, filled
    with this check's values (a variable the guide leaves out is not set here either)."""
    values = {"BANKAPP_ENV": "production",
              "SECRET_KEY": SECRET_KEY,
              "FIELD_ENCRYPTION_KEY": "q1vOQm3Xh2mQmS0t3f3qk3B2cHk0c1J5dEx4b0ZkR1k=",
              "DATABASE_URL": database_url,
              "DATABASE_NULLPOOL": "1",
              "PUBLIC_URL": f"https://{HOST}",
              "TRUSTED_HOSTS": "bankapp-check-alias.vercel.app",
              "REDIS_URL": REDIS_URL,
              "MAIL_SERVER": sink.host, "MAIL_PORT": str(sink.port),
              "MAIL_DEFAULT_SENDER": "bankapp <no-reply@bank.test>",
              "CRON_SECRET": CRON_SECRET}
    names = guide_variables()
    unknown = [name for name in names if name not in values and name not in LEFT_EMPTY]
    require(not unknown, f"the guide's Vercel table names {unknown}, for which vercel-check "
                         "has no value: add one to function_env")
    env = {**PLATFORM_ENV, **{name: values[name] for name in names if name in values},
           **WALK_ENV}
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def flask_cli(python: Path, env: dict, *args: str) -> str:
    """A `flask` command of the built app, from the function's directory and packages."""
    result = subprocess.run([str(python), "-m", "flask", "--app", "wsgi", *args], cwd=FUNCTION,
                            env=env, capture_output=True, text=True, timeout=120)
    output = (result.stdout + result.stderr).strip()
    print(f"$ flask {' '.join(a if a != ADMIN_PASSWORD else '***' for a in args)}\n{output}")
    require(result.returncode == 0, f"flask {args[0]} failed (exit {result.returncode})")
    return output


class RunningFunction:
    """The function started by Vercel's Python runtime, which reports to us over its IPC socket."""

    def __init__(self, python: Path, env: dict, label: str) -> None:
        self.label = label
        self.messages: list[dict] = []
        self.port: int | None = None
        self._started = threading.Event()
        self.ipc_path = WORK / f"ipc-{secrets.token_hex(4)}.sock"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.ipc_path))
        self.server.listen(1)
        self.stderr_path = WORK / f"{label}.stderr.log"
        self._stderr = open(self.stderr_path, "w")
        # As the platform loads the handler named in .vc-config.json, from the function's root.
        bootstrap = "import vc__handler__python"
        self.process = subprocess.Popen([str(python), "-c", bootstrap], cwd=FUNCTION,
                                        env={**env, "VERCEL_IPC_PATH": str(self.ipc_path)},
                                        stdout=self._stderr, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read_ipc, daemon=True).start()
        deadline = time.monotonic() + 60
        while not self._started.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CheckFailed(f"the function ({label}) did not start "
                                  f"(exit {self.process.returncode}):\n{self.log_text()}")
        print(f"function ({label}) started by vc__handler__python, serving on port {self.port}")

    def _read_ipc(self) -> None:
        connection, _ = self.server.accept()
        buffer = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                self.messages.append(message)
                if message.get("type") == "server-started":
                    self.port = message["payload"]["httpPort"]
                    self._started.set()

    def logs(self) -> str:
        """Everything the function logged: IPC log messages and its own stdout/stderr."""
        lines = []
        for message in list(self.messages):
            payload = message.get("payload", {})
            if message.get("type") == "log":
                lines.append(base64.b64decode(payload.get("message", "")).decode(errors="replace"))
            elif message.get("type") == "unrecoverable-error":
                lines.append(payload.get("message", ""))
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def log_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.logs() + self.stderr_path.read_text(errors="replace")

    def peak_memory_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        if self._stderr.closed:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
        self.server.close()
        self.ipc_path.unlink(missing_ok=True)


class Visitor:
    """HTTP through the function as Vercel's edge sends it: HTTPS, one proxy hop, cookies kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        # A client address of its own per run, so rate limits in the shared Redis never collide.
        self.ip = f"198.51.100.{secrets.randbelow(250) + 1}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, proto: str = "https"):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = {"Host": HOST, "X-Forwarded-Host": HOST, "X-Forwarded-Proto": proto,
                "X-Forwarded-For": self.ip, "X-Vercel-Id": "dev1::check-" + secrets.token_hex(4)}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        sent.update(headers or {})
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def page(self, path: str, expect: int = 200):
        status, headers, data = self.request("GET", path)
        require(status == expect, f"GET {path}: {status}, expected {expect}\n{data[:500]!r}")
        return headers, data.decode()

    def form(self, path: str, fields: dict, expect: int = 302):
        _, html = self.page(path)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
            re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        require(token, f"no CSRF token on {path}")
        body = urlencode({"csrf_token": token.group(1), **fields}).encode()
        status, headers, data = self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded",
                                 "Origin": f"https://{HOST}", "Referer": f"https://{HOST}{path}"})
        require(status == expect, f"POST {path}: {status}, expected {expect}\n"
                                  f"{data.decode(errors='replace')[:2000]}")
        return headers

    def api(self, method: str, path: str, payload=None, token: str | None = None,
            key: str | None = None, expect: int = 200) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key:
            headers["Idempotency-Key"] = key
        body = None if payload is None else json.dumps(payload).encode()
        status, response_headers, data = self.request(method, path, body, headers)
        require(status == expect, f"{method} {path}: {status}, expected {expect}\n"
                                  f"{data.decode(errors='replace')[:1000]}")
        return json.loads(data) if data else {}


# ---------------------------------------------------------------- 5. the walk

def walk(function: RunningFunction, sink: MailSink) -> None:
    visitor = Visitor(function.port)

    headers, html = visitor.page("/accounts/login/")
    hsts = headers.get("strict-transport-security", "")
    csp = headers.get("content-security-policy", "")
    require("max-age=31536000" in hsts, f"no year-long HSTS on the login page: {hsts!r}")
    require("default-src 'self'" in csp and "frame-ancestors 'none'" in csp,
            f"no CSP on the login page: {csp!r}")
    require("/static/css/app.css" in html, "the login page does not link the stylesheet")
    print(f"login page: 200, HSTS {hsts!r}, CSP {csp[:60]!r}…")

    status, headers, _ = visitor.request("GET", "/accounts/login/", proto="http")
    require(status in (301, 302) and headers.get("location", "").startswith("https://"),
            f"plain HTTP was not sent to HTTPS: {status} {headers.get('location')}")
    print(f"plain http: {status} to {headers['location']}")

    email = f"walker-{secrets.token_hex(4)}@example.com"
    visitor.form("/accounts/signup/", {
        "email": email, "password1": PASSWORD, "password2": PASSWORD,
        "phone_number": "+442071838750", "date_of_birth": "1990-05-17",
        "first_name": "Vera", "last_name": "Cell"})
    message = sink.wait_for(email, "confirm")
    link = MailSink.link_path(message, "/accounts/verify/")
    require(f"https://{HOST}/accounts/verify/" in message.get_body(
        preferencelist=("plain", "html")).get_content(),
            "the emailed link does not point at the public https host")
    print(f"sign-up: confirmation email to {email} through the SMTP sink, link {link[:40]}…")
    status, location_headers, _ = visitor.request("GET", link)
    require(status == 302, f"the confirmation link answered {status}")
    print(f"confirmation link: {status} to {location_headers.get('location')}")

    token = visitor.api("POST", "/api/v1/token", {"email": email, "password": PASSWORD})
    access = token["access_token"]
    require(token.get("token_type") == "Bearer", f"odd token answer: {token}")
    print(f"API token: {token['token_type']}, expires in {token['expires_in']} s")

    checking = visitor.api("POST", "/api/v1/accounts", {"account_type": "checking"},
                           token=access, expect=201)["account_number"]
    savings = visitor.api("POST", "/api/v1/accounts", {"account_type": "savings"},
                          token=access, expect=201)["account_number"]
    deposit = visitor.api("POST", f"/api/v1/accounts/{checking}/deposits",
                          {"amount": "250.00", "description": "Opening deposit"},
                          token=access, key=secrets.token_hex(16), expect=201)
    require(deposit["balance_after"] == "250.00", f"deposit: {deposit}")
    key = secrets.token_hex(16)
    body = {"from_account": checking, "to_account": savings, "amount": "40.00",
            "description": "vercel-check"}
    transfer = visitor.api("POST", "/api/v1/transfers", body, token=access, key=key, expect=201)
    require(transfer["balance_after"] == "210.00", f"transfer: {transfer}")
    replay = visitor.api("POST", "/api/v1/transfers", body, token=access, key=key, expect=201)
    require(replay["reference"] == transfer["reference"],
            f"the replayed Idempotency-Key posted again: {replay}")
    balances = {number: visitor.api("GET", f"/api/v1/accounts/{number}", token=access)["balance"]
                for number in (checking, savings)}
    require(balances == {checking: "210.00", savings: "40.00"}, f"balances: {balances}")
    # The mail cron as Vercel Cron calls it: GET, user agent vercel-cron/1.0, the bearer secret.
    cron = "/internal/cron/deliver-mail"
    status, _, _ = visitor.request("GET", cron, headers={"User-Agent": "vercel-cron/1.0"})
    require(status == 401, f"the mail cron without CRON_SECRET answered {status}, not 401")
    status, _, data = visitor.request("GET", cron, headers={
        "User-Agent": "vercel-cron/1.0", "Authorization": f"Bearer {CRON_SECRET}"})
    require(status == 200, f"the mail cron answered {status}: {data[:300]!r}")
    print(f"mail cron: 401 without the secret, 200 with it: {data.decode().strip()}")
    # Every other job, as its cron calls it, runs on the function and answers 200.
    for job in EXPECTED_CRONS:
        if job["path"] == cron:
            continue
        status, _, data = visitor.request("GET", job["path"], headers={
            "User-Agent": "vercel-cron/1.0", "Authorization": f"Bearer {CRON_SECRET}"})
        require(status == 200, f"the cron {job['path']} answered {status}: {data[:300]!r}")
    print(f"{len(EXPECTED_CRONS) - 1} other crons answered 200")
    print(f"accounts {checking} and {savings}; deposit 250.00; transfer 40.00 "
          f"({transfer['reference']}), replayed once with the same Idempotency-Key; "
          f"balances {balances}")


def unconfigured(python: Path, env: dict) -> None:
    """Without two required settings: a plain 500, and one log line naming both at once."""
    dropped = ("SECRET_KEY", "FIELD_ENCRYPTION_KEY")
    function = RunningFunction(python, {k: v for k, v in env.items() if k not in dropped},
                               "no-secret-key")
    try:
        visitor = Visitor(function.port)
        for path in ("/accounts/login/", "/api/v1/accounts"):
            status, headers, data = visitor.request("GET", path)
            text = data.decode(errors="replace")
            require(status == 500, f"without {' and '.join(dropped)} GET {path} answered "
                                   f"{status}")
            require("Traceback" not in text and not any(name in text for name in dropped),
                    f"the visitor was shown internals: {text[:500]}")
        time.sleep(0.3)
        logs = function.log_text()
        line = next((line for line in logs.splitlines()
                     if all(name in line for name in dropped) and "answered 500" in line), None)
        require(line, f"the function log does not name {' and '.join(dropped)} together:\n"
                      f"{logs}")
        require("Traceback" not in logs, f"the function log has a stack trace:\n{logs}")
        print(f"without {' and '.join(dropped)}: 500 to the visitor (no stack trace); log: "
              f"{line.strip()}")
    finally:
        function.stop()


def gates_fail_when_they_should() -> None:
    """The size gate and the build gate, each shown refusing (the issue's bad input)."""
    global MAX_BUNDLE_MB
    saved, MAX_BUNDLE_MB = MAX_BUNDLE_MB, 1
    try:
        inspect_output()
    except CheckFailed as refused:
        require("over the 1 MB limit" in str(refused),
                f"the size gate refused for another reason: {refused}")
        print(f"size gate at 1 MB: refused ({refused})")
    else:
        raise CheckFailed("a function over the size limit passed the check")
    finally:
        MAX_BUNDLE_MB = saved
    # A vercel.json whose function matches no file: Vercel refuses to build it.
    broken = {"functions": {"api/missing.py": {"maxDuration": 10}}}
    (SRC / "vercel.json").write_text(json.dumps(broken))
    try:
        vercel_build()
    except CheckFailed as refused:
        print(f"build gate with a broken vercel.json: refused ({refused})")
    else:
        raise CheckFailed("a vercel.json naming a missing function built without error")


def main() -> int:
    started = time.monotonic()
    database_url = None
    controller = None
    function = None
    try:
        step("stage the checkout and run `vercel build --yes`")
        stage_source()
        vercel_build()

        step("inspect the built function")
        built = inspect_output()
        lay_out_function(built)
        python = bare_python(built["config"]["runtime"])

        step("migrate a throwaway PostgreSQL database with the built app's `flask`")
        from aiosmtpd.controller import Controller

        sink = MailSink()
        controller = Controller(sink, hostname="127.0.0.1", port=free_port())
        controller.start()
        sink.port = controller.port
        database_url = create_database()
        env = function_env(database_url, sink)
        print("the function's variables, from docs/deployment.md's Vercel table: "
              + ", ".join(sorted(set(env) - set(PLATFORM_ENV) - set(WALK_ENV))))
        # The guide's release step (step 8): `flask db upgrade` over the direct URL before the
        # deployment is promoted, with the built function's own code and packages.
        step("release step: `flask db upgrade` before promotion (docs/deployment.md, step 8)")
        flask_cli(python, env, "db", "upgrade")
        flask_cli(python, env, "create-user", "--email", "admin@example.com", "--role", "admin",
                  "--password", ADMIN_PASSWORD, "--first-name", "First", "--last-name", "Admin")
        flask_cli(python, env, "check", "--user", "admin@example.com")

        step("start the function with Vercel's Python runtime and walk it over HTTP")
        function = RunningFunction(python, env, "production")
        walk(function, sink)
        print(f"function peak memory (VmHWM): {function.peak_memory_mb():.0f} MB "
              f"(vercel.json gives it {built['config']['memory']} MB)")
        function.stop()
        logs = function.log_text()
        require("Traceback" not in logs, f"the function logged a stack trace:\n{logs}")
        function = None

        step("bad input: the same function without SECRET_KEY and FIELD_ENCRYPTION_KEY")
        unconfigured(python, env)

        step("bad input: a bundle over the size limit, a build that fails")
        gates_fail_when_they_should()
    except CheckFailed as failure:
        print(f"\nvercel-check FAILED: {failure}", file=sys.stderr)
        if function is not None:
            print(f"--- function log ---\n{function.log_text()[-6000:]}", file=sys.stderr)
        return 1
    finally:
        if function is not None:
            function.stop()
        if controller is not None:
            controller.stop()
        if database_url:
            drop_database(database_url)
    print(f"\nvercel-check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
