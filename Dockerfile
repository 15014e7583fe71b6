# vocab's container image. Build: `docker build -t vocab .`; run: `docker compose up` (see README).
# Classic Dockerfile instructions only, so both BuildKit and the legacy builder take it.

# --- Build stage: the dependencies, in a virtual environment that is copied as a whole ---
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
# requirements.txt alone first: this layer is rebuilt only when the pins change.
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# --- Runtime stage: Python, the venv and the app; no build tools, no pip cache ---
FROM python:3.11-slim
# The image runs in production mode on its own (SQLite and the generated key in /data); compose
# points it at PostgreSQL. SECRET_KEY_FILE is a path, not a secret (hence the DL3064 waiver).
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    DATABASE_URL=sqlite:///data/vocab.sqlite3 \
    SECRET_KEY_FILE=/data/secret_key
# A fixed numeric uid, so volume ownership and `runAsUser`-style policies are predictable.
# /data is the one writable place: the generated signing key (and SQLite, if used) live there.
RUN groupadd --gid 10001 vocab \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin vocab \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY vocab.py models.py ./
COPY migrations/ migrations/
COPY static/ static/
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# Migrations first (one process, before any worker starts), then `exec` so uvicorn is PID 1 and
# receives SIGTERM itself. Workers: WEB_CONCURRENCY (uvicorn's own variable, default 1).
# --proxy-headers trusts X-Forwarded-* only from FORWARDED_ALLOW_IPS (default 127.0.0.1,::1); the
# app applies the same variable itself, so both agree on the client.
CMD ["sh", "-c", "python vocab.py migrate && exec uvicorn vocab:app --host 0.0.0.0 --port 8000 --proxy-headers --no-server-header --timeout-graceful-shutdown 20"]
