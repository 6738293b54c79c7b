#!/usr/bin/env bash
# The project's one test command: every test, on SQLite and PostgreSQL, with the in-process
# cache and with Redis.
#
#   bash scripts/test.sh [ARGS...]     ARGS go to `cargo test`, e.g. `bash scripts/test.sh postgres`
#
# Services, in order of preference:
#   PostgreSQL: $LATCHKEY_TEST_POSTGRES_URL; else a local server on 127.0.0.1:5432 that lets
#               `postgres` in without a password; else a private throwaway cluster.
#   Redis:      $LATCHKEY_TEST_REDIS_URL; else a local server on 127.0.0.1:6379; else a private
#               throwaway server.
# Private services listen on a free loopback port and are stopped and deleted on exit. If a
# service still does not answer, the run fails: tests are never skipped for want of one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

lk_apt_ensure "${LK_BUILD_PACKAGES[@]}" "${LK_TEST_PACKAGES[@]}"

# --- clean-up of what this script started ------------------------------------------------------

pg_dir=""        # private PostgreSQL cluster: socket, data and log
pg_bindir=""
pg_started=""
redis_dir=""     # private Redis server: pid file and log
redis_port=""
redis_started=""
pg_as=()         # prefix that runs a PostgreSQL server binary as the right OS user

cleanup() {
    local rc=$?
    set +e
    if [ -n "$redis_started" ]; then
        local pid=""
        [ -f "$redis_dir/redis.pid" ] && pid=$(cat "$redis_dir/redis.pid")
        redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1
        if [ -n "$pid" ]; then
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill "$pid" 2>/dev/null
        fi
        lk_say "stopped the private Redis server"
    fi
    if [ -n "$pg_started" ]; then
        (cd / && "${pg_as[@]}" "$pg_bindir/pg_ctl" -D "$pg_dir/data" stop -m fast -w >/dev/null 2>&1)
        lk_say "stopped the private PostgreSQL cluster"
    fi
    [ -n "$redis_dir" ] && rm -rf "$redis_dir"
    [ -n "$pg_dir" ] && rm -rf "$pg_dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- PostgreSQL --------------------------------------------------------------------------------

# True if a session can be opened with the URL (not merely that a server listens).
pg_url_works() {
    if command -v psql >/dev/null 2>&1; then
        PGCONNECT_TIMEOUT=5 psql "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1
    else
        pg_isready -q -t 5 -d "$1"
    fi
}

# The directory of the newest installed PostgreSQL server binaries.
find_pg_bindir() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    else
        return 1
    fi
}

start_private_postgres() {
    pg_bindir=$(find_pg_bindir) ||
        lk_die "PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package"
    pg_dir=$(mktemp -d /tmp/latchkey-test-pg.XXXXXX)
    local port
    port=$(lk_free_port 55432)
    if [ "$(id -u)" -eq 0 ]; then
        # initdb and postgres refuse to run as root.
        id postgres >/dev/null 2>&1 ||
            lk_die "running as root, but there is no 'postgres' OS user to run a private cluster as"
        chown postgres: "$pg_dir"
        pg_as=(runuser -u postgres --)
    fi
    lk_say "starting a private PostgreSQL cluster on 127.0.0.1:$port ($pg_dir)"
    if ! (cd "$pg_dir" && "${pg_as[@]}" "$pg_bindir/initdb" -D "$pg_dir/data" --auth=trust -U postgres \
        -E UTF8 --locale=C --no-sync >"$pg_dir/initdb.log" 2>&1); then
        cat "$pg_dir/initdb.log" >&2
        lk_die "initdb failed"
    fi
    # A throwaway cluster: durability settings off for speed.
    if ! (cd "$pg_dir" && "${pg_as[@]}" "$pg_bindir/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 60 \
        -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null); then
        tail -n 30 "$pg_dir/postgres.log" >&2 || true
        lk_die "the private PostgreSQL cluster did not start"
    fi
    pg_started=1
    pg_url="postgres://postgres@127.0.0.1:$port/postgres"
    pg_source="private cluster, stopped on exit"
}

local_pg="postgres://postgres@127.0.0.1:5432/postgres"
if [ -n "${LATCHKEY_TEST_POSTGRES_URL:-}" ]; then
    pg_url=$LATCHKEY_TEST_POSTGRES_URL
    pg_source="from LATCHKEY_TEST_POSTGRES_URL"
elif command -v pg_isready >/dev/null 2>&1 && pg_isready -q -t 5 -h 127.0.0.1 -p 5432 &&
    pg_url_works "$local_pg"; then
    pg_url=$local_pg
    pg_source="local server on 127.0.0.1:5432"
else
    if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -t 5 -h 127.0.0.1 -p 5432; then
        lk_say "PostgreSQL on 127.0.0.1:5432 does not let 'postgres' in without a password; using a private cluster"
    fi
    start_private_postgres
fi
pg_url_works "$pg_url" ||
    lk_die "PostgreSQL does not answer at $(lk_mask_url "$pg_url") ($pg_source); set LATCHKEY_TEST_POSTGRES_URL to a server that does"

# --- Redis -------------------------------------------------------------------------------------

redis_ping() {
    [ "$(timeout 5 redis-cli -u "$1" ping 2>/dev/null)" = "PONG" ]
}

start_private_redis() {
    command -v redis-server >/dev/null 2>&1 || lk_die "redis-server not found: install the redis-server package"
    redis_dir=$(mktemp -d /tmp/latchkey-test-redis.XXXXXX)
    redis_port=$(lk_free_port 56379)
    lk_say "starting a private Redis server on 127.0.0.1:$redis_port ($redis_dir)"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize yes --pidfile "$redis_dir/redis.pid" --dir "$redis_dir" \
        --logfile "$redis_dir/redis.log" ||
        lk_die "the private Redis server did not start"
    redis_started=1
    redis_url="redis://127.0.0.1:$redis_port"
    redis_source="private server, stopped on exit"
    for _ in $(seq 100); do
        redis_ping "$redis_url" && return 0
        sleep 0.1
    done
    tail -n 30 "$redis_dir/redis.log" >&2 || true
}

command -v redis-cli >/dev/null 2>&1 || lk_die "redis-cli not found: install the redis-tools package"
if [ -n "${LATCHKEY_TEST_REDIS_URL:-}" ]; then
    redis_url=$LATCHKEY_TEST_REDIS_URL
    redis_source="from LATCHKEY_TEST_REDIS_URL"
elif redis_ping "redis://127.0.0.1:6379"; then
    redis_url="redis://127.0.0.1:6379"
    redis_source="local server on 127.0.0.1:6379"
else
    start_private_redis
fi
redis_ping "$redis_url" ||
    lk_die "Redis does not answer PING at $(lk_mask_url "$redis_url") ($redis_source); set LATCHKEY_TEST_REDIS_URL to a server that does"

# --- tests -------------------------------------------------------------------------------------

export LATCHKEY_TEST_POSTGRES_URL=$pg_url
export LATCHKEY_TEST_REDIS_URL=$redis_url
lk_say "PostgreSQL: $(lk_mask_url "$pg_url") ($pg_source)"
lk_say "Redis:      $(lk_mask_url "$redis_url") ($redis_source)"

lk_say "cargo build --workspace --bins"
cargo build --workspace --bins
lk_say "cargo test --workspace --all-targets $*"
# --all-targets: every unit and integration test, without the (empty) doc-test run, so the
# runner's closing line reports the tests that ran.
log=$(mktemp /tmp/latchkey-test-log.XXXXXX)
status=0
cargo test --workspace --all-targets "$@" 2>&1 | tee "$log" || status=$?
echo
# The plain closing line: totals over every test binary.
awk '/^test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
