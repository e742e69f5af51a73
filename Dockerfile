# bankapp for any container host: gunicorn serving wsgi:app as a non-root user.
# The Python version is .python-version's (3.12); compose.yaml shows the services it needs.
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

COPY config.py wsgi.py ./
COPY bankapp ./bankapp
COPY migrations ./migrations
COPY public ./public

# Several gunicorn workers: /metrics adds up the values each one writes here (gunicorn.conf.py
# empties it when the server starts).
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bankapp \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" && chown bankapp:bankapp "$PROMETHEUS_MULTIPROC_DIR"
USER bankapp

EXPOSE 8000
# Logs go to stdout; a worker stuck longer than 30 s is replaced.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30", \
     "--access-logfile", "-", "wsgi:app"]
