#!/usr/bin/env bash
# Prepare this machine's local services for Anima's test suite.
#
# Debian bookworm, run as root. Idempotent: a second run only checks and is fast.
#   - pgvector ("vector" extension) for the local PostgreSQL 15, built from
#     Debian trixie's pgvector source package (bookworm has no PG15 build)
#   - PostgreSQL 15/main and Redis running and answering on 127.0.0.1
#   - database anima_test with the vector extension
#   - Debian's chromium (/usr/bin/chromium) for the browser tests
set -euo pipefail

PG_MAJOR=15
PG_CLUSTER=main
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
PG_CONFIG=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config
VECTOR_CONTROL=/usr/share/postgresql/${PG_MAJOR}/extension/vector.control
VECTOR_LIB=/usr/lib/postgresql/${PG_MAJOR}/lib/vector.so
DB_NAME=anima_test
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
TRIXIE_SRC_LIST=/etc/apt/sources.list.d/anima-trixie-src.sources
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
WAIT_SECONDS=${SETUP_SERVICES_WAIT_SECONDS:-60}

export DEBIAN_FRONTEND=noninteractive
export PGCONNECT_TIMEOUT=5

log() { printf '[setup-services] %s\n' "$*"; }
die() { printf '[setup-services] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get, make install, starting services)"

APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    apt-get "${APT_OPTS[@]}" update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
}
is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}
apt_install() {
  local missing=() p
  for p in "$@"; do is_installed "$p" || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  apt_update
  log "apt-get install ${missing[*]}"
  apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }
redis_ready() { [ "$(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -X -q -v ON_ERROR_STOP=1 "$@"; }

wait_for() { # wait_for NAME CHECK_FN
  local name=$1 check=$2 deadline=$((SECONDS + WAIT_SECONDS))
  until "$check"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
  log "$name is up"
}

START=$SECONDS

# ---------------------------------------------------------------- pgvector
if [ -f "$VECTOR_CONTROL" ] && [ -f "$VECTOR_LIB" ]; then
  log "pgvector already installed for PostgreSQL ${PG_MAJOR} ($(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$VECTOR_CONTROL"))"
else
  log "pgvector missing for PostgreSQL ${PG_MAJOR}: building it from Debian trixie's source package"
  [ -f "$DEBIAN_KEYRING" ] || apt_install debian-archive-keyring
  # deb-src only: this never makes trixie *binary* packages installable.
  want_src=$(printf '%s\n' \
    'Types: deb-src' \
    'URIs: http://deb.debian.org/debian' \
    'Suites: trixie' \
    'Components: main' \
    "Signed-By: ${DEBIAN_KEYRING}")
  if [ ! -f "$TRIXIE_SRC_LIST" ] || [ "$(cat "$TRIXIE_SRC_LIST")" != "$want_src" ]; then
    log "writing $TRIXIE_SRC_LIST (deb-src trixie main)"
    printf '%s\n' "$want_src" >"$TRIXIE_SRC_LIST"
  fi
  apt_update # also fetches the trixie Sources index
  apt-cache showsrc pgvector 2>/dev/null | grep '^Package: pgvector' >/dev/null \
    || die "trixie deb-src index has no pgvector (did apt-get update fetch trixie/main Sources?)"
  apt_install postgresql-server-dev-${PG_MAJOR} build-essential ca-certificates
  # Sanity: deb-src trixie must not have made trixie binaries installable.
  if apt-cache policy "postgresql-server-dev-${PG_MAJOR}" | grep trixie >/dev/null; then
    die "apt offers postgresql-server-dev-${PG_MAJOR} from trixie; check $TRIXIE_SRC_LIST is deb-src only"
  fi
  [ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found after installing postgresql-server-dev-${PG_MAJOR}"

  build_dir=$(mktemp -d /tmp/anima-pgvector.XXXXXX)
  trap 'rm -rf "$build_dir"' EXIT
  log "downloading pgvector source (trixie)"
  ( cd "$build_dir" && apt-get "${APT_OPTS[@]}" -o APT::Sandbox::User=root -qq source --download-only pgvector/trixie >/dev/null ) \
    || die "apt-get source --download-only pgvector/trixie failed"
  orig=$(find "$build_dir" -maxdepth 1 -name 'pgvector_*.orig.tar.*' | head -n1)
  [ -n "$orig" ] || die "no pgvector .orig tarball downloaded"
  mkdir "$build_dir/src"
  tar -xf "$orig" -C "$build_dir/src" --strip-components=1
  log "building $(basename "$orig") against $("$PG_CONFIG" --version)"
  # OPTFLAGS= : no -march=native, so the library also runs on another CPU (as Debian builds it).
  make -s -C "$build_dir/src" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" OPTFLAGS= >"$build_dir/build.log" 2>&1 \
    || { tail -n 40 "$build_dir/build.log" >&2; die "pgvector build failed"; }
  make -s -C "$build_dir/src" PG_CONFIG="$PG_CONFIG" OPTFLAGS= install >>"$build_dir/build.log" 2>&1 \
    || { tail -n 40 "$build_dir/build.log" >&2; die "pgvector install failed"; }
  if [ ! -f "$VECTOR_CONTROL" ] || [ ! -f "$VECTOR_LIB" ]; then
    die "pgvector install did not produce $VECTOR_CONTROL and $VECTOR_LIB"
  fi
  rm -rf "$build_dir"
  trap - EXIT
  log "pgvector installed ($(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$VECTOR_CONTROL"))"
fi

# ---------------------------------------------------------------- PostgreSQL
command -v pg_ctlcluster >/dev/null || die "pg_ctlcluster not found: PostgreSQL ${PG_MAJOR} is not installed"
if pg_ready; then
  log "PostgreSQL is accepting connections on ${PG_HOST}:${PG_PORT}"
else
  log "starting PostgreSQL ${PG_MAJOR}/${PG_CLUSTER}"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$PG_CLUSTER" start \
    || log "pg_ctlcluster start returned non-zero (may already be starting); waiting"
  wait_for PostgreSQL pg_ready \
    || die "PostgreSQL did not accept connections on ${PG_HOST}:${PG_PORT} within ${WAIT_SECONDS}s (see /var/log/postgresql/postgresql-${PG_MAJOR}-${PG_CLUSTER}.log)"
fi

# ---------------------------------------------------------------- Redis
command -v redis-server >/dev/null || die "redis-server not found: Redis is not installed"
command -v redis-cli >/dev/null || die "redis-cli not found: Redis is not installed"
if redis_ready; then
  log "Redis is answering on ${REDIS_HOST}:${REDIS_PORT}"
else
  log "starting Redis"
  install -d /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log \
    || log "redis-server returned non-zero; waiting anyway"
  wait_for Redis redis_ready \
    || { tail -n 20 /var/log/redis/ci.log >&2 2>/dev/null || true
         die "Redis did not answer PING on ${REDIS_HOST}:${REDIS_PORT} within ${WAIT_SECONDS}s (see /var/log/redis/ci.log)"; }
fi

# ---------------------------------------------------------------- database
if [ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'")" = 1 ]; then
  log "database ${DB_NAME} exists"
else
  log "creating database ${DB_NAME}"
  psql_admin -d postgres -c "CREATE DATABASE ${DB_NAME}" || die "could not create database ${DB_NAME}"
fi
psql_admin -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS vector" \
  || die "CREATE EXTENSION vector failed in ${DB_NAME}"
# After a rebuild with a newer pgvector, bring the extension in the database up to date.
if [ "$(psql_admin -d "$DB_NAME" -tAc "SELECT 1 FROM pg_available_extensions WHERE name = 'vector' AND installed_version IS DISTINCT FROM default_version")" = 1 ]; then
  log "updating vector extension in ${DB_NAME}"
  psql_admin -d "$DB_NAME" -c "ALTER EXTENSION vector UPDATE" || die "ALTER EXTENSION vector UPDATE failed"
fi
ext_ver=$(psql_admin -d "$DB_NAME" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
[ -n "$ext_ver" ] || die "vector extension not present in ${DB_NAME}"
log "vector extension ${ext_ver} enabled in ${DB_NAME}"

# ---------------------------------------------------------------- chromium
if [ -x /usr/bin/chromium ]; then
  log "chromium present ($(dpkg-query -W -f='${Version}' chromium 2>/dev/null || echo '?'))"
else
  apt_install chromium
  [ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing after installing chromium"
  log "chromium installed ($(dpkg-query -W -f='${Version}' chromium))"
fi

log "done in $((SECONDS - START))s"
echo "DATABASE_URL=postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${DB_NAME}"
echo "REDIS_URL=redis://${REDIS_HOST}:${REDIS_PORT}/0"
