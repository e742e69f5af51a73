# bankapp for any container host: gunicorn serving wsgi:app as a non-root user.
# The Python version is .python-version's (3.12); compose.yaml shows the services it needs.
# To pin: the tag's digest (`docker buildx imagetools inspect python:3.12-slim`) as
# python:3.12-slim@sha256:<digest>; tests/deploy checks it (docs/deployment.md, "The image").
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=wsgi \
    BANKAPP_ENV=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/bankapp-metrics

WORKDIR /app
# Dependencies first: this layer is rebuilt only when requirements.txt changes. Binary wheels
# only (psycopg2-binary, argon2-cffi, cryptography): no compiler in the image.
COPY requirements.txt .
RUN pip install --only-binary=:all: -r requirements.txt

# pg_dump/pg_restore for `flask backup` and `flask restore` (compose's backup service): the
# client of compose's PostgreSQL major version (postgres:16), from the PostgreSQL project's
# apt repository (Debian's own is another major version; pg_dump refuses a newer server).
ARG PG_MAJOR=16
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-${PG_MAJOR} \
    && rm -rf /var/lib/apt/lists/*

COPY config.py wsgi.py gunicorn.conf.py ./
COPY bankapp ./bankapp
COPY migrations ./migrations
COPY public ./public

# Several gunicorn workers: /metrics adds up the values each one writes here (gunicorn.conf.py
# empties it when the server starts). /backups is where compose's backup service writes.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bankapp \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" /backups \
    && chown bankapp:bankapp "$PROMETHEUS_MULTIPROC_DIR" /backups
USER bankapp

EXPOSE 8000
# Liveness only (/healthz touches no database): a hung worker pool is restarted, a database
# outage is not. Load balancers ask /readyz themselves.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
# gunicorn.conf.py: every line JSON on stdout, no access log (it printed emailed tokens);
# a worker stuck longer than 30 s is replaced.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--timeout", "30", "wsgi:app"]
