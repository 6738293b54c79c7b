#!/usr/bin/env bash
# Side-by-side load benchmark: latchkey (SQLite; PostgreSQL + Redis), node-oidc-provider and a bare
# actix endpoint that only signs the same kind of ES256 JWT. See bench/README.md.
#
#   bash bench/run.sh [--duration SECS] [--connections N] [--threads N] [--tenants N]
#                     [--only SCENARIO[,...]] [--servers SERVER[,...]] [--soak] [--no-build]
#
# Scenarios: cc-jwt, cc-opaque, introspect, discovery, jwks, code-flow (OpenID Connect
#            authorization code + token + userinfo with a browser session), many-discovery,
#            many-jwks, many-cc-jwt (the many-* ones on latchkey only, over --tenants tenants),
#            password-login and cc-jwt-logins (latchkey only: form logins with CSRF and
#            argon2id, and cc-jwt measured while such logins flood the hashing pool).
# Servers:   latchkey-sqlite, latchkey-postgres, node, bare.
# Prints one table and the targets, writes bench/results/latest.md. Exits 0 when everything
# ran and every target passed, 1 when a server or a scenario could not run or answered a
# non-2xx, 2 on bad arguments, 3 when a target failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

ALL_SCENARIOS=(cc-jwt cc-opaque introspect discovery jwks code-flow many-discovery many-jwks
    many-cc-jwt password-login cc-jwt-logins)
BASIC_SCENARIOS=(cc-jwt cc-opaque introspect discovery jwks code-flow)
ALL_SERVERS=(latchkey-sqlite latchkey-postgres node bare)
declare -A SCENARIO_TITLE=(
    [cc-jwt]="client_credentials, JWT access token"
    [cc-opaque]="client_credentials, opaque access token"
    [introspect]="introspection of an opaque token"
    [discovery]="OpenID discovery document"
    [jwks]="JWKS"
    [code-flow]="OpenID Connect code flow with a browser session: authorize (303 with a code), token (code + PKCE verifier, client_secret_basic), userinfo; the rate is flows/s"
    [many-discovery]="discovery of a random tenant out of --tenants"
    [many-jwks]="JWKS of a random tenant out of --tenants"
    [many-cc-jwt]="client_credentials (JWT) at a random tenant out of 50 with a client, among --tenants"
    [one-discovery]="control for many-discovery: the same random-target driver, one tenant"
    [one-jwks]="control for many-jwks: the same random-target driver, one tenant"
    [one-cc-jwt]="control for many-cc-jwt: the same random-target driver, one tenant"
    [password-login]="form login (CSRF token, argon2id at OWASP parameters) answered with a 303, on 8 connections"
    [cc-jwt-logins]="cc-jwt while password-login floods the hashing pool from other connections"
)
# Login connections: enough to keep every hashing thread busy and a queue waiting.
LOGIN_CONNECTIONS=8
BENCH_PASSWORD="load test passphrase $(date +%s)"
# code-flow: browser sessions the authorization requests take in turn (node: split over its
# workers), the client's redirect URI and a fixed PKCE verifier (its S256 challenge is fixed too).
FLOW_SESSIONS=64
CODE_REDIRECT_URI=http://127.0.0.1:9/cb
CODE_VERIFIER=latchkey-bench-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz
FLOW_EXPECT='a code, "access_token" or "sub"'

DURATION=10
DURATION_SET=
SOAK=
TENANTS=10000
CONNECTIONS=64
THREADS=2
WARMUP=2
BUILD=1
SCENARIOS=("${ALL_SCENARIOS[@]}")
SERVERS=("${ALL_SERVERS[@]}")
PGHOST=${BENCH_PGHOST:-127.0.0.1}
PGPORT=${BENCH_PGPORT:-5432}
PGUSER=${BENCH_PGUSER:-postgres}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/}

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

# True if WORD is one of the remaining arguments.
contains() {
    local word=$1 item
    shift
    for item in "$@"; do
        [ "$item" = "$word" ] && return 0
    done
    return 1
}

# Splits the comma-separated LIST given to OPTION into the array named NAME, checking each item
# against ALLOWED...: split_list NAME OPTION LIST ALLOWED...
split_list() {
    local name=$1 option=$2 list=$3 item
    local -a items
    shift 3
    local -n out=$name
    out=()
    IFS=, read -r -a items <<<"$list"
    for item in "${items[@]}"; do
        [ -n "$item" ] || continue
        if ! contains "$item" "$@"; then
            printf 'error: %s: unknown name %s (one of: %s)\n' "$option" "$item" "$*" >&2
            exit 2
        fi
        out+=("$item")
    done
    if [ "${#out[@]}" -eq 0 ]; then
        printf 'error: %s needs a comma-separated list\n' "$option" >&2
        exit 2
    fi
}

positive_int() {
    if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        printf 'error: %s needs a positive integer, not "%s"\n' "$1" "$2" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case $1 in
        --duration) positive_int "$1" "${2-}"; DURATION=$2; DURATION_SET=1; shift 2 ;;
        --tenants) positive_int "$1" "${2-}"; TENANTS=$2; shift 2 ;;
        --soak) SOAK=1; shift ;;
        --connections) positive_int "$1" "${2-}"; CONNECTIONS=$2; shift 2 ;;
        --threads) positive_int "$1" "${2-}"; THREADS=$2; shift 2 ;;
        --only) split_list SCENARIOS "$1" "${2-}" "${ALL_SCENARIOS[@]}"; shift 2 ;;
        --servers) split_list SERVERS "$1" "${2-}" "${ALL_SERVERS[@]}"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'error: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done
# Keep the canonical order whatever the order given.
canonical() { # NAME ALL...
    local -n list=$1
    local -a kept=()
    local item
    shift
    for item in "$@"; do
        contains "$item" "${list[@]}" && kept+=("$item")
    done
    list=("${kept[@]}")
}
canonical SCENARIOS "${ALL_SCENARIOS[@]}"
# A soak runs each scenario for minutes and keeps every non-2xx status and body.
if [ -n "$SOAK" ] && [ -z "$DURATION_SET" ]; then
    DURATION=300
fi
canonical SERVERS "${ALL_SERVERS[@]}"
if [ "$THREADS" -gt "$CONNECTIONS" ]; then
    printf 'error: --threads (%s) must not exceed --connections (%s)\n' "$THREADS" "$CONNECTIONS" >&2
    exit 2
fi

# Scenarios SERVER can run: the bare signer only has a token endpoint.
server_scenarios() {
    case $1 in
        bare) echo cc-jwt ;;
        node) echo "${BASIC_SCENARIOS[@]}" ;;
        *) echo "${ALL_SCENARIOS[@]}" ;;
    esac
}

# True if SERVER has at least one of the selected scenarios.
server_selected() {
    local scenario
    for scenario in $(server_scenarios "$1"); do
        contains "$scenario" "${SCENARIOS[@]}" && return 0
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# State and clean-up

WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")
SERVER_PID=
LOAD_PID=
PG_DB=
REDIS_PREFIX=
FAILED=0
NODE_WORKER_PORTS=()

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    local pid=$SERVER_PID
    SERVER_PID=
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        lk_say "server $pid did not stop within 10 s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

drop_database() {
    [ -n "$PG_DB" ] || return 0
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -q -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
        lk_say "could not drop database $PG_DB"
    PG_DB=
}

clear_redis_keys() {
    [ -n "$REDIS_PREFIX" ] || return 0
    if command -v redis-cli >/dev/null 2>&1; then
        redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null |
            xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
    fi
    REDIS_PREFIX=
}

cleanup() {
    if [ -n "$LOAD_PID" ]; then
        kill "$LOAD_PID" 2>/dev/null || true
    fi
    stop_server
    drop_database
    clear_redis_keys
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Helpers

# Reads JSON on stdin and prints its top-level string or number FIELD; fails if absent.
json_field() {
    if command -v jq >/dev/null 2>&1; then
        jq -er --arg f "$1" '.[$f] // empty'
    else
        python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
sys.exit(1) if v is None else print(v)' "$1"
    fi
}

# application/x-www-form-urlencoded encoding of one value (RFC 6749 §2.3.1 for Basic auth).
form_encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))' "$1"
}

# Authorization header value for client_secret_basic.
basic_auth() {
    printf 'Basic %s' "$(printf '%s:%s' "$(form_encode "$1")" "$(form_encode "$2")" | base64 -w0)"
}

random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Waits until URL answers 200 to METHOD while the server process lives; 60 s at most.
wait_ready() {
    local method=$1 url=$2 log=$3 status
    for _ in $(seq 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            lk_say "the server exited before it was ready; last lines of $log:"
            tail -n 20 "$log" >&2
            SERVER_PID=
            return 1
        fi
        status=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' -X "$method" "$url" || true)
        [ "$status" = 200 ] && return 0
        sleep 0.2
    done
    lk_say "not ready after 60 s: $method $url; last lines of $log:"
    tail -n 20 "$log" >&2
    return 1
}

# Starts a server in the background: start_bg LOG COMMAND... (SERVER_PID is its pid).
start_bg() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    SERVER_PID=$!
}

# Runs the load: run_load OUTPUT_FILE COMMAND... In the background and waited for, so that a
# signal is handled at once rather than when wrk ends.
run_load() {
    local output=$1 status=0
    shift
    "$@" >"$output" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || status=$?
    LOAD_PID=
    return "$status"
}

# Requests one access token: fetch_token TOKEN_URL AUTH. Prints the access_token; on failure
# prints the status and body on stderr.
fetch_token() {
    local response status body
    response=$(curl -sS --max-time 10 -X POST -H "Authorization: $2" -w '\n%{http_code}' \
        --data 'grant_type=client_credentials&scope=api:read' "$1") || return 1
    status=${response##*$'\n'}
    body=${response%$'\n'*}
    if [ "$status" != 200 ]; then
        printf 'HTTP %s: %s\n' "$status" "$body" >&2
        return 1
    fi
    json_field access_token <<<"$body"
}

# fetch_token, retried for up to 40 s the first time a client is used: a running latchkey may
# take up to its cache TTL (cache.hot_ttl_secs, 30 s) to see a client that the CLI just created.
declare -A CLIENT_OK
first_token() {
    local url=$1 auth=$2 tries=1
    [ -n "${CLIENT_OK[$auth]:-}" ] || tries=40
    for _ in $(seq "$tries"); do
        if fetch_token "$url" "$auth" 2>"$WORK/token.err"; then
            CLIENT_OK[$auth]=1
            return 0
        fi
        sleep 1
    done
    cat "$WORK/token.err" >&2
    return 1
}

# Converts a wrk latency such as 812.00us, 3.21ms, 1.02s or 1.50m to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n
    }'
}

# ---------------------------------------------------------------------------------------------
# Results

declare -A RPS P50 P99 NOTE BAD RSS
MANY_READY=
CREATE_SECS=

# Runs one scenario against the current server and records the result:
# measure SCENARIO SERVER URL METHOD BODY AUTH EXPECT
# With MEASURE_FLOW (a targets file, see bench/wrk/code_flow.lua) it runs authorization-code
# flows (FLOW_AUTHORIZE, FLOW_TOKEN, FLOW_USERINFO; AUTH is the client's) and records flows/s.
measure() {
    local scenario=$1 server=$2 url=$3 method=$4 body=$5 auth=$6 expect=$7
    local key="$scenario|$server" log="$WORK/$server-$scenario.wrk" wrk_cmd
    local rps p50 p99 non2xx sockerr responses badstatus matched flows secs note='' info=''
    local script=request.lua
    [ -n "${MEASURE_TARGETS:-}" ] && script=random.lua
    [ -n "${MEASURE_FLOW:-}" ] && script=code_flow.lua
    wrk_cmd=(env BENCH_METHOD="$method" BENCH_BODY="$body" BENCH_AUTH="$auth"
        BENCH_EXPECT="$expect" BENCH_TARGETS="${MEASURE_TARGETS:-}"
        BENCH_STATUS="${MEASURE_STATUS:-}" BENCH_COOKIE="${MEASURE_COOKIE:-}"
        BENCH_FLOW_TARGETS="${MEASURE_FLOW:-}" BENCH_AUTHORIZE="${FLOW_AUTHORIZE:-}"
        BENCH_TOKEN="${FLOW_TOKEN:-}" BENCH_USERINFO="${FLOW_USERINFO:-}"
        BENCH_REDIRECT_URI="$CODE_REDIRECT_URI" BENCH_VERIFIER="$CODE_VERIFIER"
        BENCH_BAD_LOG="${SOAK:+$WORK/$server-$scenario.bad}"
        wrk -t "$THREADS" -c "$CONNECTIONS" --latency --timeout 2s
        -s "$BENCH/wrk/$script")
    lk_say "$server: $scenario (warm-up ${WARMUP}s, then ${DURATION}s)"
    if ! run_load "$log.warmup" "${wrk_cmd[@]}" -d "${WARMUP}s" "$url" ||
        ! run_load "$log" "${wrk_cmd[@]}" -d "${DURATION}s" "$url"; then
        lk_say "wrk failed for $server $scenario:"
        cat "$log.warmup" "$log" >&2 2>/dev/null || true
        BAD[$key]=1 NOTE[$key]="wrk failed"
        FAILED=1
        return
    fi
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$log")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$log")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$log")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$log")
    # wrk counts the expected 303s as "non-2xx or 3xx"; the script counts what was not expected.
    [ -n "${MEASURE_STATUS:-}${MEASURE_FLOW:-}" ] && non2xx=0
    sockerr=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$log")
    read -r responses badstatus matched < <(sed -n \
        's/^bench: responses=\([0-9]*\) non2xx=\([0-9]*\) matched=\([0-9]*\)\( flows=[0-9]*\)\{0,1\}$/\1 \2 \3/p' \
        "$log") || true
    if [ -n "${MEASURE_FLOW:-}" ]; then
        # The rate of a flow scenario is completed flows per second of wrk's measured time
        # ("N requests in 10.01s"); its requests per second go to the notes.
        flows=$(sed -n 's/^bench: responses=.* flows=\([0-9]*\)$/\1/p' "$log")
        secs=$(awk '/ requests in / { sub(/,$/, "", $4); print $4 }' "$log")
        info="${rps:-?} req/s (3 per flow)"
        rps=$(awk -v f="${flows:-0}" -v ms="$(to_ms "${secs:-0s}")" \
            'BEGIN { if (ms > 0) printf "%.0f", 1000 * f / ms }')
    fi
    RPS[$key]=${rps:-0} P50[$key]=${p50:-0} P99[$key]=${p99:-0}
    if [ -z "${responses:-}" ] || [ "${responses:-0}" -eq 0 ]; then
        note="no responses"
    else
        if [ "${badstatus:-0}" -gt 0 ] || [ "${non2xx:-0}" -gt 0 ]; then
            note="non-2xx: $((badstatus > non2xx ? badstatus : non2xx))"
        fi
        if [ "${sockerr:-0}" -gt 0 ]; then
            note="${note:+$note; }socket errors: $sockerr"
        fi
        if [ "$matched" -lt "$responses" ]; then
            note="${note:+$note; }$(awk -v m="$matched" -v r="$responses" -v e="$expect" \
                'BEGIN { printf "%s in %.1f%% of bodies", e, 100 * m / r }')"
        elif [ "$scenario" = introspect ]; then
            note='"active":true in 100% of bodies'
        fi
        if [ -n "${MEASURE_FLOW:-}" ] && [ "${flows:-0}" -eq 0 ]; then
            note="${note:+$note; }no flow completed"
        fi
    fi
    if [ -n "$SOAK" ] && compgen -G "$WORK/$server-$scenario.bad.*" >/dev/null &&
        cat "$WORK/$server-$scenario.bad".* | grep -q .; then
        mkdir -p "$BENCH/results"
        cat "$WORK/$server-$scenario.bad".* >"$BENCH/results/soak-$server-$scenario.non2xx"
        lk_say "non-2xx statuses and bodies: bench/results/soak-$server-$scenario.non2xx"
    fi
    if [[ $scenario == many-* ]] && [ -n "${SERVER_PID:-}" ]; then
        RSS[$key]=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status" 2>/dev/null || true)
        note="${note:+$note; }RSS ${RSS[$key]:-?} MiB"
    fi
    NOTE[$key]=$note${info:+${note:+; }$info}
    local benign=${note%%RSS*}
    benign=${benign%; }
    if [ -n "$benign" ] && [ "$benign" != '"active":true in 100% of bodies' ]; then
        BAD[$key]=1
        FAILED=1
        lk_say "$server $scenario: FAILED ($note); wrk said:"
        cat "$log" >&2
    fi
}

# Creates --tenants tenants through the admin API (timed), a client in 50 of them, and the
# target files of the many-* scenarios: prepare_many SERVER
prepare_many() {
    local server=$1 i slug auth
    lk_say "$server: creating $TENANTS tenants through the admin API"
    if ! CREATE_SECS=$(python3 "$BENCH/many_tenants.py" "$BASE_URL" "$ADMIN_TOKEN" "$TENANTS"); then
        lk_say "$server: tenant creation failed"
        return 1
    fi
    lk_say "$server: $TENANTS tenants in ${CREATE_SECS}s"
    : >"$WORK/many-discovery.targets"
    : >"$WORK/many-jwks.targets"
    : >"$WORK/many-cc.targets"
    printf '/t/t0/.well-known/openid-configuration\t\n' >"$WORK/one-discovery.targets"
    printf '/t/t0/jwks\t\n' >"$WORK/one-jwks.targets"
    for ((i = 0; i < TENANTS; i++)); do
        printf '/t/t%d/.well-known/openid-configuration\t\n' "$i" >>"$WORK/many-discovery.targets"
        printf '/t/t%d/jwks\t\n' "$i" >>"$WORK/many-jwks.targets"
    done
    for ((i = 0; i < 50; i++)); do
        slug=t$(((i * 7919) % TENANTS))
        auth=$(latchkey_client "$ENV_FILE" "bench-$slug" --tenant-override "$slug") || return 1
        printf '/t/%s/token\t%s\n' "$slug" "$auth" >>"$WORK/many-cc.targets"
    done
    head -n 1 "$WORK/many-cc.targets" >"$WORK/one-cc.targets"
    MANY_READY=1
}

# Marks every selected scenario of SERVER as not run, with REASON.
mark_not_run() {
    local server=$1 reason=$2 scenario
    for scenario in $(server_scenarios "$server"); do
        contains "$scenario" "${SCENARIOS[@]}" || continue
        BAD["$scenario|$server"]=1
        NOTE["$scenario|$server"]=$reason
    done
    FAILED=1
}

# Runs the selected scenarios against the current server. Uses the globals set by the start_*
# function: TOKEN_URL, INTROSPECT_URL, DISCOVERY_URL, JWKS_URL, JWT_AUTH, OPAQUE_AUTH,
# INTROSPECT_AUTH (the client that gets the introspected token and calls introspection), and for
# code-flow FLOW_URL and FLOW_THREADS (its client and sessions are made by prepare_flow_*).
run_scenarios() {
    local server=$1 form='grant_type=client_credentials&scope=api:read' scenario auth token
    for scenario in $(server_scenarios "$server"); do
        contains "$scenario" "${SCENARIOS[@]}" || continue
        # Every token scenario starts with one token request, to see that the client works.
        case $scenario in
            cc-jwt | cc-jwt-logins) auth=$JWT_AUTH ;;
            cc-opaque) auth=$OPAQUE_AUTH ;;
            introspect) auth=$INTROSPECT_AUTH ;;
            *) auth='' ;;
        esac
        if [ -n "$auth" ] && ! token=$(first_token "$TOKEN_URL" "$auth"); then
            lk_say "$server: $scenario: the client could not get an access token"
            BAD["$scenario|$server"]=1 NOTE["$scenario|$server"]="no access token"
            FAILED=1
            continue
        fi
        case $scenario in
            cc-jwt | cc-opaque)
                measure "$scenario" "$server" "$TOKEN_URL" POST "$form" "$auth" '"access_token"'
                ;;
            introspect)
                # node copies this token to its other workers through its primary process.
                sleep 0.5
                measure "$scenario" "$server" "$INTROSPECT_URL" POST \
                    "token=$(form_encode "$token")" "$auth" '"active":true'
                ;;
            discovery)
                measure "$scenario" "$server" "$DISCOVERY_URL" GET "" "" '"issuer"'
                ;;
            jwks)
                measure "$scenario" "$server" "$JWKS_URL" GET "" "" '"keys"'
                ;;
            code-flow)
                if ! "prepare_flow_${server%%-*}" "$server"; then
                    lk_say "$server: code-flow: the client or the sessions could not be made"
                    BAD["$scenario|$server"]=1 NOTE["$scenario|$server"]="no client or session"
                    FAILED=1
                    continue
                fi
                if ! first_flow "$server"; then
                    lk_say "$server: code-flow: an authorization-code flow did not go through"
                    BAD["$scenario|$server"]=1 NOTE["$scenario|$server"]="no code flow"
                    FAILED=1
                    continue
                fi
                MEASURE_FLOW=$FLOW_TARGETS THREADS=$FLOW_THREADS measure "$scenario" "$server" \
                    "$FLOW_URL" GET "" "$FLOW_AUTH" "$FLOW_EXPECT"
                ;;
            password-login)
                MEASURE_STATUS=303 MEASURE_COOKIE=$LOGIN_COOKIE CONNECTIONS=$LOGIN_CONNECTIONS \
                    measure "$scenario" "$server" "$LOGIN_URL" POST "$LOGIN_BODY" "" ""
                ;;
            cc-jwt-logins)
                flood_logins "$server" &
                local flood=$!
                sleep 1
                measure "$scenario" "$server" "$TOKEN_URL" POST "$form" "$auth" '"access_token"'
                wait "$flood" || true
                local logins
                logins=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/$server-flood.wrk")
                NOTE["$scenario|$server"]="${NOTE["$scenario|$server"]:+${NOTE["$scenario|$server"]}; }meanwhile ${logins:-?} logins/s"
                ;;
            many-*)
                if [ -z "$MANY_READY" ] && ! prepare_many "$server"; then
                    BAD["$scenario|$server"]=1 NOTE["$scenario|$server"]="tenants not created"
                    FAILED=1
                    continue
                fi
                # Each many-tenant run is paired with a one-tenant control through the same
                # random-target driver (one-*), so the comparison is of tenants, not of wrk's
                # Lua (which costs wrk CPU that, on two cores, the server loses).
                case $scenario in
                    many-discovery)
                        MEASURE_TARGETS=$WORK/many-discovery.targets measure "$scenario" \
                            "$server" "$BASE_URL" GET "" "" '"issuer"'
                        MEASURE_TARGETS=$WORK/one-discovery.targets measure one-discovery \
                            "$server" "$BASE_URL" GET "" "" '"issuer"' ;;
                    many-jwks)
                        MEASURE_TARGETS=$WORK/many-jwks.targets measure "$scenario" \
                            "$server" "$BASE_URL" GET "" "" '"keys"'
                        MEASURE_TARGETS=$WORK/one-jwks.targets measure one-jwks \
                            "$server" "$BASE_URL" GET "" "" '"keys"' ;;
                    many-cc-jwt)
                        MEASURE_TARGETS=$WORK/many-cc.targets measure "$scenario" \
                            "$server" "$BASE_URL" POST "$form" "" '"access_token"'
                        MEASURE_TARGETS=$WORK/one-cc.targets measure one-cc-jwt \
                            "$server" "$BASE_URL" POST "$form" "" '"access_token"' ;;
                esac
                ;;
        esac
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            lk_say "$server died during $scenario"
            SERVER_PID=
            return 1
        fi
    done
}

# Password logins for the length of a measurement plus its warm-up, from their own connections,
# into $WORK/SERVER-flood.wrk: flood_logins SERVER
flood_logins() {
    local server=$1
    env BENCH_METHOD=POST BENCH_BODY="$LOGIN_BODY" BENCH_STATUS=303 BENCH_COOKIE="$LOGIN_COOKIE" \
        BENCH_EXPECT="" BENCH_AUTH="" BENCH_TARGETS="" \
        wrk -t 1 -c "$LOGIN_CONNECTIONS" --latency --timeout 5s -s "$BENCH/wrk/request.lua" \
        -d "$((WARMUP + DURATION + 1))s" "$LOGIN_URL" >"$WORK/$server-flood.wrk" 2>&1
}

# A user and a login form for the password scenarios: sets LOGIN_URL, LOGIN_BODY (CSRF token,
# username, password) and LOGIN_COOKIE (the CSRF binding cookie the token is bound to).
prepare_login() {
    local env_file=$1 issuer=$2 page token cookie
    local -a env_vars
    mapfile -t env_vars <"$env_file"
    printf '%s' "$BENCH_PASSWORD" | (cd "$WORK" && timeout 120 env "${env_vars[@]}" \
        "$LATCHKEY_BIN" user create --tenant default --username bench --password-stdin) \
        >/dev/null || return 1
    page=$(curl -sS --max-time 10 --fail -D "$WORK/login.headers" "$issuer/login") || return 1
    token=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$page" | head -n1)
    cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \(latchkey-csrf=[^;]*\).*/\1/p' "$WORK/login.headers" | head -n1)
    [ -n "$token" ] && [ -n "$cookie" ] || return 1
    LOGIN_URL=$issuer/login
    LOGIN_COOKIE=$cookie
    LOGIN_BODY="csrf=$(form_encode "$token")&username=bench&password=$(form_encode "$BENCH_PASSWORD")&return_to="
}

# The query of code-flow's authorization request for CLIENT_ID: flow_query CLIENT_ID
flow_query() {
    printf 'response_type=code&client_id=%s&redirect_uri=%s&scope=openid&state=s&code_challenge=%s&code_challenge_method=S256' \
        "$(form_encode "$1")" "$(form_encode "$CODE_REDIRECT_URI")" "$CODE_CHALLENGE"
}

# One authorization-code flow with curl, as bench/wrk/code_flow.lua makes them, at BASE
# (http://HOST:PORT) with the session COOKIE: check_flow BASE COOKIE. Uses FLOW_AUTHORIZE,
# FLOW_TOKEN, FLOW_USERINFO and FLOW_AUTH; on failure prints the step, status and answer on
# stderr.
check_flow() {
    local base=$1 cookie=$2 response status location code body token
    response=$(curl -sS --max-time 10 -o /dev/null -H "Cookie: $cookie" \
        -w '%{http_code} %{redirect_url}' "$base$FLOW_AUTHORIZE") || return 1
    status=${response%% *} location=${response#* }
    code=$(sed -n 's/.*[?&]code=\([^&#]*\).*/\1/p' <<<"$location")
    if { [ "$status" != 302 ] && [ "$status" != 303 ]; } || [ -z "$code" ]; then
        printf 'authorization request: HTTP %s, Location: %s\n' "$status" "${location:-(none)}" >&2
        return 1
    fi
    response=$(curl -sS --max-time 10 -X POST -H "Authorization: $FLOW_AUTH" -w '\n%{http_code}' \
        --data "grant_type=authorization_code&code=$code&redirect_uri=$(form_encode "$CODE_REDIRECT_URI")&code_verifier=$(form_encode "$CODE_VERIFIER")" \
        "$base$FLOW_TOKEN") || return 1
    status=${response##*$'\n'} body=${response%$'\n'*}
    if [ "$status" != 200 ] || ! token=$(json_field access_token <<<"$body" 2>/dev/null); then
        printf 'token request: HTTP %s: %s\n' "$status" "$body" >&2
        return 1
    fi
    response=$(curl -sS --max-time 10 -H "Authorization: Bearer $token" -w '\n%{http_code}' \
        "$base$FLOW_USERINFO") || return 1
    status=${response##*$'\n'} body=${response%$'\n'*}
    if [ "$status" != 200 ] || [[ $body != *'"sub"'* ]]; then
        printf 'userinfo request: HTTP %s: %s\n' "$status" "$body" >&2
        return 1
    fi
}

# One flow through each HOST:PORT of FLOW_TARGETS (with its first session), to see that the
# client and the sessions work before the load: first_flow SERVER. For latchkey the first is
# retried for up to 40 s, as first_token: the running server may take up to cache.hot_ttl_secs
# to see the client that the CLI created.
first_flow() {
    local tries=1 hostport cookie i
    [[ $1 == latchkey-* ]] && tries=40
    while IFS=$'\t' read -r hostport cookie; do
        for ((i = 1; ; i++)); do
            check_flow "http://$hostport" "$cookie" 2>"$WORK/flow.err" && break
            if [ "$i" -ge "$tries" ]; then
                cat "$WORK/flow.err" >&2
                return 1
            fi
            sleep 1
        done
        tries=1
    done < <(sort -u -t $'\t' -k1,1 "$FLOW_TARGETS")
}

# code-flow at latchkey: a first-party client (no consent) made with the CLI, and FLOW_SESSIONS
# browser sessions, each a form login of the password scenarios' user (prepare_login). Sets
# FLOW_AUTH, FLOW_AUTHORIZE, FLOW_TOKEN, FLOW_USERINFO and the targets file FLOW_TARGETS (every
# session on the one port): prepare_flow_latchkey SERVER
prepare_flow_latchkey() {
    local server=$1 json id secret headers cookie i
    local -a env_vars
    mapfile -t env_vars <"$ENV_FILE"
    # ES256 ID tokens, as node's clientDefaults (RS256, the OIDC default, costs ~10x more).
    printf '{"id_token_signed_response_alg": "ES256"}\n' >"$WORK/flow-client.json"
    json=$(cd "$WORK" && timeout 120 env "${env_vars[@]}" "$LATCHKEY_BIN" client create \
        --tenant default --name bench-rp --grant-type authorization_code \
        --redirect-uri "$CODE_REDIRECT_URI" --auth-method client_secret_basic --scope openid \
        --metadata-file "$WORK/flow-client.json" --first-party --json) || return 1
    id=$(json_field client_id <<<"$json") || return 1
    secret=$(json_field client_secret <<<"$json") || return 1
    FLOW_AUTH=$(basic_auth "$id" "$secret")
    FLOW_AUTHORIZE="/t/default/authorize?$(flow_query "$id")"
    FLOW_TOKEN=/t/default/token
    FLOW_USERINFO=/t/default/userinfo
    FLOW_TARGETS=$WORK/$server-flow.targets
    : >"$FLOW_TARGETS"
    for ((i = 0; i < FLOW_SESSIONS; i++)); do
        headers=$(curl -sS --max-time 30 -o /dev/null -D - -H "Cookie: $LOGIN_COOKIE" \
            --data "$LOGIN_BODY" "$LOGIN_URL" | tr -d '\r') || return 1
        cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: *\(\(__Host-\)\{0,1\}latchkey[-_]session[^=]*=[^;]*\).*/\1/p' \
            <<<"$headers" | head -n1)
        if [ -z "$cookie" ]; then
            lk_say "$server: the login set no session cookie: $(head -n1 <<<"$headers")"
            return 1
        fi
        printf '%s\t%s\n' "${FLOW_URL#http://}" "$cookie" >>"$FLOW_TARGETS"
    done
}

# code-flow at node-oidc-provider: its sessions, codes and tokens are in one worker's memory, so
# FLOW_SESSIONS / workers sessions are made on each worker's own port (bench/node/session.js)
# and code_flow.lua keeps each wrk thread on one of those ports. Sets what prepare_flow_latchkey
# sets: prepare_flow_node SERVER
prepare_flow_node() {
    local server=$1 port per
    FLOW_AUTH=$(basic_auth bench-code "$NODE_SECRET")
    FLOW_AUTHORIZE="$NODE_AUTHORIZE_PATH?$(flow_query bench-code)"
    FLOW_TOKEN=$NODE_TOKEN_PATH
    FLOW_USERINFO=$NODE_USERINFO_PATH
    FLOW_TARGETS=$WORK/$server-flow.targets
    : >"$FLOW_TARGETS"
    per=$(((FLOW_SESSIONS + ${#NODE_WORKER_PORTS[@]} - 1) / ${#NODE_WORKER_PORTS[@]}))
    for port in "${NODE_WORKER_PORTS[@]}"; do
        node "$BENCH/node/session.js" "http://127.0.0.1:$port$FLOW_AUTHORIZE" "$per" |
            sed "s/^/127.0.0.1:$port\t/" >>"$FLOW_TARGETS" || return 1
    done
}

# ---------------------------------------------------------------------------------------------
# Servers. Each start_* starts one server, waits until it is ready and sets the globals that
# run_scenarios uses; it returns non-zero if the server could not be started.

LATCHKEY_BIN=${BENCH_LATCHKEY_BIN:-$ROOT/target/release/latchkey}
SIGNER_BIN=$ROOT/target/bench/release/latchkey-bench-signer
JWK_FILE=$WORK/es256.private.jwk

# Creates a client with the latchkey CLI: latchkey_client ENV_FILE NAME [EXTRA ARGS...].
# Prints the Authorization header value for it.
latchkey_client() {
    local env_file=$1 name=$2 json id secret tenant=default
    shift 2
    if [ "${1:-}" = --tenant-override ]; then
        tenant=$2
        shift 2
    fi
    local -a env_vars
    mapfile -t env_vars <"$env_file"
    json=$(cd "$WORK" && timeout 120 env "${env_vars[@]}" "$LATCHKEY_BIN" client create \
        --tenant "$tenant" --name "$name" --grant-type client_credentials \
        --auth-method client_secret_basic --scope "api:read api:write" "$@" --json) || return 1
    id=$(json_field client_id <<<"$json") || return 1
    secret=$(json_field client_secret <<<"$json") || return 1
    basic_auth "$id" "$secret"
}

# start_latchkey SERVER [LATCHKEY__ASSIGNMENT...]
start_latchkey() {
    local server=$1 port data env_file log base issuer
    shift
    port=$(lk_free_port 20000)
    data=$WORK/$server-data
    env_file=$WORK/$server.env
    log=$WORK/$server.log
    base=http://127.0.0.1:$port
    mkdir -p "$data"
    ADMIN_TOKEN=bench-admin-$(random_hex 16)
    printf '%s\n' "LATCHKEY__DATA_DIR=$data" "LATCHKEY__SERVER__BIND=127.0.0.1:$port" \
        "LATCHKEY__SERVER__PUBLIC_URL=$base" "LATCHKEY__LOG__FILTER=warn" \
        "LATCHKEY__ADMIN__TOKEN=$ADMIN_TOKEN" \
        "LATCHKEY__PASSWORDS__ATTEMPTS_PER_MINUTE=100000000" "$@" >"$env_file"
    BASE_URL=$base ENV_FILE=$env_file MANY_READY=
    FLOW_URL=$base FLOW_THREADS=$THREADS
    local -a env_vars
    mapfile -t env_vars <"$env_file"
    # The working directory is empty, so no config/latchkey.toml is picked up.
    # shellcheck disable=SC2016 # expanded by the inner bash
    start_bg "$log" bash -c 'cd "$1" && shift && exec env "$@"' _ "$WORK" "${env_vars[@]}" \
        "$LATCHKEY_BIN" serve
    wait_ready GET "$base/readyz" "$log" || return 1
    issuer=$base/t/default
    # wrk's URL for the many-* scenarios: the path comes from the target file.
    JWT_AUTH=$(latchkey_client "$env_file" bench-jwt) || return 1
    OPAQUE_AUTH=$(latchkey_client "$env_file" bench-opaque --access-token-format opaque) ||
        return 1
    INTROSPECT_AUTH=$OPAQUE_AUTH
    prepare_login "$env_file" "$issuer" || return 1
    TOKEN_URL=$issuer/token
    INTROSPECT_URL=$issuer/introspect
    DISCOVERY_URL=$issuer/.well-known/openid-configuration
    JWKS_URL=$issuer/jwks
}

start_latchkey_sqlite() {
    start_latchkey latchkey-sqlite
}

start_latchkey_postgres() {
    local master_key
    if ! psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qtA -c 'SELECT 1' >/dev/null; then
        lk_say "PostgreSQL is not reachable at $PGUSER@$PGHOST:$PGPORT"
        return 1
    fi
    if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
        lk_say "Redis is not reachable at $REDIS_URL"
        return 1
    fi
    PG_DB=latchkey_bench_$(random_hex 6)
    REDIS_PREFIX=bench-$(random_hex 6):
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$PG_DB\"" || return 1
    master_key=$("$LATCHKEY_BIN" master-key generate) || return 1
    start_latchkey latchkey-postgres \
        "LATCHKEY__DATABASE__URL=postgres://$PGUSER@$PGHOST:$PGPORT/$PG_DB" \
        "LATCHKEY__REDIS__URL=$REDIS_URL" \
        "LATCHKEY__REDIS__KEY_PREFIX=$REDIS_PREFIX" \
        "LATCHKEY__SECURITY__MASTER_KEY=$master_key"
}

start_node() {
    local port secret log base discovery
    port=$(lk_free_port 20000)
    secret=$(random_hex 32)
    log=$WORK/node.log
    base=http://127.0.0.1:$port
    start_bg "$log" env NODE_ENV=production BENCH_CLIENT_SECRET="$secret" \
        node "$BENCH/node/server.js" "$JWK_FILE" "$port"
    wait_ready GET "$base/.well-known/openid-configuration" "$log" || return 1
    # Every worker listens (on the shared port and on its own) before the primary prints this
    # line, which ends with the workers' own ports: "...; worker ports P1,P2".
    for _ in $(seq 100); do
        grep -q 'node-oidc-provider ready' "$log" && break
        sleep 0.1
    done
    IFS=, read -r -a NODE_WORKER_PORTS < <(sed -n \
        's/^node-oidc-provider ready: .*; worker ports \([0-9,]*\)$/\1/p' "$log") || true
    if [ "${#NODE_WORKER_PORTS[@]}" -eq 0 ]; then
        lk_say "node-oidc-provider did not say its worker ports; last lines of $log:"
        tail -n 20 "$log" >&2
        return 1
    fi
    discovery=$(curl -sS --max-time 10 --fail "$base/.well-known/openid-configuration") || return 1
    TOKEN_URL=$(json_field token_endpoint <<<"$discovery")
    INTROSPECT_URL=$(json_field introspection_endpoint <<<"$discovery")
    DISCOVERY_URL=$base/.well-known/openid-configuration
    JWKS_URL=$(json_field jwks_uri <<<"$discovery")
    JWT_AUTH=$(basic_auth bench-jwt "$secret")
    OPAQUE_AUTH=$(basic_auth bench-opaque "$secret")
    INTROSPECT_AUTH=$(basic_auth bench-introspect "$secret")
    NODE_SECRET=$secret
    NODE_AUTHORIZE_PATH=$(json_field authorization_endpoint <<<"$discovery")
    NODE_AUTHORIZE_PATH=${NODE_AUTHORIZE_PATH#"$base"}
    NODE_TOKEN_PATH=${TOKEN_URL#"$base"}
    NODE_USERINFO_PATH=$(json_field userinfo_endpoint <<<"$discovery")
    NODE_USERINFO_PATH=${NODE_USERINFO_PATH#"$base"}
    # code-flow: each wrk thread stays on one worker, so the threads are a multiple of the
    # workers (rounded up; no more than the connections) and every worker gets the same load.
    local workers=${#NODE_WORKER_PORTS[@]}
    FLOW_URL=$base
    FLOW_THREADS=$(((THREADS + workers - 1) / workers * workers))
    [ "$FLOW_THREADS" -le "$CONNECTIONS" ] || FLOW_THREADS=$CONNECTIONS
}

start_bare() {
    local port log base
    port=$(lk_free_port 20000)
    log=$WORK/bare.log
    base=http://127.0.0.1:$port
    start_bg "$log" "$SIGNER_BIN" "$JWK_FILE" "127.0.0.1:$port" "$base/t/default"
    wait_ready POST "$base/token" "$log" || return 1
    TOKEN_URL=$base/token
    JWT_AUTH=$(basic_auth bench-jwt unused)
    OPAQUE_AUTH='' INTROSPECT_AUTH='' INTROSPECT_URL='' DISCOVERY_URL='' JWKS_URL=''
}

# ---------------------------------------------------------------------------------------------
# Preparation: tools, builds, the shared key

RUN_SERVERS=()
for server in "${SERVERS[@]}"; do
    server_selected "$server" && RUN_SERVERS+=("$server")
done
if [ "${#RUN_SERVERS[@]}" -eq 0 ]; then
    lk_die "none of the selected servers runs any of the selected scenarios"
fi
uses() {
    contains "$1" "${RUN_SERVERS[@]}"
}
uses_latchkey() {
    uses latchkey-sqlite || uses latchkey-postgres
}

packages=(wrk curl)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
uses latchkey-postgres && packages+=(postgresql-client redis-tools)
[ "$BUILD" = 1 ] && uses_latchkey && packages+=("${LK_BUILD_PACKAGES[@]}")
[ "$BUILD" = 1 ] && uses bare && packages+=("${LK_BUILD_PACKAGES[@]}")
lk_apt_ensure "${packages[@]}"
command -v node >/dev/null 2>&1 || lk_die "node (Node.js 20 or later) and npm are needed"

if [ "$BUILD" = 1 ]; then
    if uses_latchkey; then
        lk_say "building latchkey (release)"
        (cd "$ROOT" && cargo build --release --bin latchkey)
    fi
    if uses bare; then
        lk_say "building the bare signer (release)"
        (cd "$ROOT" && cargo build --release --manifest-path bench/signer/Cargo.toml \
            --target-dir target/bench)
    fi
fi
if uses_latchkey && [ ! -x "$LATCHKEY_BIN" ]; then
    lk_die "$LATCHKEY_BIN is missing (run without --no-build)"
fi
if uses bare && [ ! -x "$SIGNER_BIN" ]; then
    lk_die "$SIGNER_BIN is missing (run without --no-build)"
fi
if uses node && [ ! -d "$BENCH/node/node_modules" ]; then
    lk_say "installing node-oidc-provider (npm ci)"
    (cd "$BENCH/node" && npm ci --no-audit --no-fund)
fi

node "$BENCH/node/genkey.js" >"$JWK_FILE"
# code-flow's PKCE challenge (RFC 7636 S256), the same for every request.
CODE_CHALLENGE=$(python3 -c 'import base64, hashlib, sys
print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' \
    "$CODE_VERIFIER")

# ---------------------------------------------------------------------------------------------
# The run, one server at a time

DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
OIDC_VERSION=$(node -p 'require(process.argv[1]).version' \
    "$BENCH/node/node_modules/oidc-provider/package.json" 2>/dev/null || echo unknown)
WRK_VERSION=$( (wrk --version 2>&1 || true) | awk 'NR == 1 { print $2 }')
HEADER=(
    "latchkey side-by-side benchmark, $DATE, latchkey $COMMIT"
    "machine: $(nproc) cores ($CPU); load: wrk $WRK_VERSION, -t $THREADS -c $CONNECTIONS -d ${DURATION}s after a ${WARMUP}s warm-up, loopback, one server at a time"
    "signing: ES256 (P-256) everywhere; node and bare share one key made for this run, latchkey signs with its tenant's own ES256 key (same algorithm and curve, same cost)"
)
if uses node; then
    HEADER+=("node: node-oidc-provider $OIDC_VERSION on Node.js $(node --version), NODE_ENV=production, one cluster worker per core, default in-memory adapter; the introspected token is copied to every worker; code-flow keeps each wrk thread on one worker's own port, with sessions made there (bench/README.md)")
fi
if uses latchkey-postgres; then
    HEADER+=("latchkey-postgres: PostgreSQL $PGUSER@$PGHOST:$PGPORT (a fresh database), Redis $REDIS_URL")
fi
printf '%s\n' "${HEADER[@]}"

for server in "${RUN_SERVERS[@]}"; do
    lk_section "$server"
    if ! "start_${server//-/_}"; then
        lk_say "$server could not be started or set up"
        stop_server
        mark_not_run "$server" "could not start"
        continue
    fi
    if ! run_scenarios "$server"; then
        for scenario in $(server_scenarios "$server"); do
            contains "$scenario" "${SCENARIOS[@]}" || continue
            [ -z "${RPS[$scenario|$server]:-}" ] || continue
            BAD["$scenario|$server"]=1 NOTE["$scenario|$server"]="server died"
        done
        FAILED=1
    fi
    stop_server
    if [ "$server" = latchkey-postgres ]; then
        drop_database
        clear_redis_keys
    fi
done

# ---------------------------------------------------------------------------------------------
# Report

# ratio A B: A / B with 2 decimals, empty if either is missing or B is 0.
ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b }'
}

# The value for KEY in RPS etc., empty when the scenario failed.
good() {
    local -n map=$1
    if [ -z "${BAD[$2]:-}" ]; then
        printf '%s' "${map[$2]:-}"
    fi
}

# The scenarios shown: the selected ones, each many-* followed by its one-tenant control.
SHOWN=()
for scenario in "${SCENARIOS[@]}"; do
    SHOWN+=("$scenario")
    [[ $scenario == many-* ]] && SHOWN+=("one-${scenario#many-}")
done

TABLE=()
TABLE+=("| scenario | server | req/s | p50 ms | p99 ms | vs node | vs bare | notes |")
TABLE+=("|---|---|---:|---:|---:|---:|---:|---|")
for scenario in "${SHOWN[@]}"; do
    for server in "${RUN_SERVERS[@]}"; do
        key="$scenario|$server"
        [ -n "${RPS[$key]:-}${NOTE[$key]:-}" ] || continue
        vs_node='' vs_bare=''
        if [[ $server == latchkey-* ]]; then
            x=$(ratio "$(good RPS "$key")" "$(good RPS "$scenario|node")")
            [ -n "$x" ] && vs_node="${x}x"
            if [ "$scenario" = cc-jwt ]; then
                x=$(ratio "$(good RPS "$key")" "$(good RPS "$scenario|bare")")
                [ -n "$x" ] && vs_bare=$(awk -v r="$x" 'BEGIN { printf "%.0f%%", 100 * r }')
            fi
        fi
        status=${NOTE[$key]:-}
        [ -n "${BAD[$key]:-}" ] && status="FAILED: $status"
        TABLE+=("$(printf '| %-10s | %-17s | %8s | %6s | %6s | %7s | %7s | %s |' "$scenario" \
            "$server" "${RPS[$key]:--}" "${P50[$key]:--}" "${P99[$key]:--}" "$vs_node" \
            "$vs_bare" "$status")")
    done
done

# Targets, for each latchkey server that ran. A target is SKIP when what it compares against was
# not measured, FAIL when latchkey's own scenario failed.
TARGETS=("| server | target | measured | |" "|---|---|---|---|")
target() { # SERVER DESCRIPTION MEASURED VERDICT
    TARGETS+=("$(printf '| %-17s | %-38s | %-26s | %-4s |' "$@")")
}
# ratio_target SERVER SCENARIO OTHER MIN DESCRIPTION: SERVER's req/s at least MIN times OTHER's.
ratio_target() {
    local server=$1 scenario=$2 other=$3 min=$4 desc=$5 r shown
    if ! contains "$scenario" "${SCENARIOS[@]}"; then
        target "$server" "$desc" "not measured" SKIP
    elif [ -n "${BAD[$scenario|$server]:-}" ]; then
        target "$server" "$desc" "$scenario failed" FAIL
    elif ! uses "$other" || [ -n "${BAD[$scenario|$other]:-}" ]; then
        target "$server" "$desc" "no $other result" SKIP
    else
        r=$(ratio "${RPS[$scenario|$server]}" "${RPS[$scenario|$other]}")
        if [ "$other" = bare ]; then
            shown=$(awk -v r="$r" 'BEGIN { printf "%.0f%%", 100 * r }')
        else
            shown="${r}x"
        fi
        if awk -v r="$r" -v m="$min" 'BEGIN { exit !(r + 0 >= m + 0) }'; then
            target "$server" "$desc" "$shown" PASS
        else
            target "$server" "$desc" "$shown" FAIL
        fi
    fi
}
# p99_target SERVER: p99 under 15 ms in each scenario SERVER ran (code-flow has its own).
p99_target() {
    local server=$1 scenario p worst='' worst_at='' failed=''
    for scenario in "${SHOWN[@]}"; do
        # A login's latency is its argon2id hash and the queue for it, by design.
        [ "$scenario" = password-login ] && continue
        # code-flow's requests include a session lookup, a code and an ID token; 25 ms below.
        [ "$scenario" = code-flow ] && continue
        if [ -n "${BAD[$scenario|$server]:-}" ]; then
            failed="${failed:+$failed, }$scenario"
            continue
        fi
        p=${P99[$scenario|$server]:-}
        [ -n "$p" ] || continue
        if [ -z "$worst" ] || awk -v a="$p" -v b="$worst" 'BEGIN { exit !(a + 0 > b + 0) }'; then
            worst=$p worst_at=$scenario
        fi
    done
    if [ -n "$failed" ]; then
        target "$server" "p99 < 15 ms in every scenario" "$failed failed" FAIL
    elif [ -z "$worst" ]; then
        target "$server" "p99 < 15 ms in every scenario" "not measured" SKIP
    elif awk -v p="$worst" 'BEGIN { exit !(p + 0 < 15) }'; then
        target "$server" "p99 < 15 ms in every scenario" "max $worst ms ($worst_at)" PASS
    else
        target "$server" "p99 < 15 ms in every scenario" "max $worst ms ($worst_at)" FAIL
    fi
}
# flow_p99_target SERVER: code-flow's request p99 under 25 ms.
flow_p99_target() {
    local server=$1 desc="code-flow p99 < 25 ms"
    if ! contains code-flow "${SCENARIOS[@]}"; then
        target "$server" "$desc" "not measured" SKIP
    elif [ -n "${BAD[code-flow|$server]:-}" ]; then
        target "$server" "$desc" "code-flow failed" FAIL
    elif awk -v p="${P99[code-flow|$server]:-}" 'BEGIN { exit !(p != "" && p + 0 < 25) }'; then
        target "$server" "$desc" "${P99[code-flow|$server]} ms" PASS
    else
        target "$server" "$desc" "${P99[code-flow|$server]:-?} ms" FAIL
    fi
}
# many_target SERVER MANY PLAIN: the many-tenant scenario within 10% of the one-tenant figure,
# measured by its control (one-*, the same driver); the plain one-tenant scenario's ratio is
# shown beside it.
many_target() {
    local server=$1 many=$2 plain=$3 one="one-${2#many-}" desc="$2 within 10% of one tenant" r p shown
    if ! contains "$many" "${SCENARIOS[@]}"; then
        target "$server" "$desc" "not measured" SKIP
    elif [ -n "${BAD[$many|$server]:-}" ] || [ -n "${BAD[$one|$server]:-}" ]; then
        target "$server" "$desc" "a scenario failed" FAIL
    else
        r=$(ratio "${RPS[$many|$server]}" "${RPS[$one|$server]}")
        shown=$(awk -v r="$r" 'BEGIN { printf "%.0f%% of %s", 100 * r, "'"$one"'" }')
        if [ -n "${RPS[$plain|$server]:-}" ] && [ -z "${BAD[$plain|$server]:-}" ]; then
            p=$(ratio "${RPS[$many|$server]}" "${RPS[$plain|$server]}")
            shown="$shown ($(awk -v r="$p" 'BEGIN { printf "%.0f%%", 100 * r }') of $plain)"
        fi
        if awk -v r="$r" 'BEGIN { exit !(r + 0 >= 0.9) }'; then
            target "$server" "$desc" "$shown" PASS
        else
            target "$server" "$desc" "$shown" FAIL
        fi
    fi
}
for server in latchkey-sqlite latchkey-postgres; do
    uses "$server" || continue
    ratio_target "$server" cc-jwt bare 0.9 "cc-jwt >= 90% of bare"
    ratio_target "$server" cc-opaque node 1.3 "cc-opaque (durable) >= 1.3x node (memory)"
    ratio_target "$server" introspect node 4 "introspect >= 4x node"
    ratio_target "$server" discovery node 4 "discovery >= 4x node"
    ratio_target "$server" jwks node 4 "jwks >= 4x node"
    ratio_target "$server" code-flow node 3 "code-flow >= 3x node (flows/s)"
    flow_p99_target "$server"
    many_target "$server" many-discovery discovery
    many_target "$server" many-jwks jwks
    many_target "$server" many-cc-jwt cc-jwt
    p99_target "$server"
    if contains password-login "${SCENARIOS[@]}" && [ -z "${BAD[password-login|$server]:-}" ]; then
        target "$server" "password logins/s (hashing capacity)" "${RPS[password-login|$server]:-?} logins/s" INFO
    fi
    if contains cc-jwt-logins "${SCENARIOS[@]}" && [ -n "${P99[cc-jwt-logins|$server]:-}" ]; then
        if awk -v p="${P99[cc-jwt-logins|$server]}" 'BEGIN { exit !(p + 0 < 15) }'; then
            verdict=PASS
        else
            verdict=FAIL
        fi
        target "$server" "cc-jwt p99 < 15 ms during a login flood" \
            "${P99[cc-jwt-logins|$server]} ms (without: ${P99[cc-jwt|$server]:-?} ms)" "$verdict"
    fi
done

NOTES=()
if [ -n "$CREATE_SECS" ]; then
    NOTES+=("Creating $TENANTS tenants through the admin API took ${CREATE_SECS}s (the last server that ran many-*).")
fi
if [ "$CONNECTIONS" != 64 ]; then
    NOTES+=("The targets are defined at 64 connections; this run used $CONNECTIONS.")
fi
if [ "${#SCENARIOS[@]}" -ne "${#ALL_SCENARIOS[@]}" ] && [ "${#TARGETS[@]}" -gt 2 ]; then
    NOTES+=("Only some scenarios ran (--only): SKIP means not measured.")
fi

{
    echo
    printf '%s\n' "${TABLE[@]}"
    if [ "${#TARGETS[@]}" -gt 2 ]; then
        echo
        echo "Targets (this run):"
        printf '%s\n' "${TARGETS[@]}"
    fi
    [ "${#NOTES[@]}" -eq 0 ] || printf '%s\n' "" "${NOTES[@]}"
}

mkdir -p "$BENCH/results"
{
    echo "# latchkey benchmark"
    echo
    for line in "${HEADER[@]}"; do
        printf -- '- %s\n' "$line"
    done
    echo
    for scenario in "${SHOWN[@]}"; do
        printf -- '- %s: %s\n' "\`$scenario\`" "${SCENARIO_TITLE[$scenario]}"
    done
    echo
    printf '%s\n' "${TABLE[@]}"
    if [ "${#TARGETS[@]}" -gt 2 ]; then
        echo
        echo "## Targets"
        echo
        printf '%s\n' "${TARGETS[@]}"
    fi
    [ "${#NOTES[@]}" -eq 0 ] || printf '%s\n' "" "${NOTES[@]}"
} >"$BENCH/results/latest.md"
lk_say "written: bench/results/latest.md"

if [ "$FAILED" != 0 ]; then
    lk_say "some servers or scenarios could not run or answered non-2xx (see FAILED above)"
    exit 1
fi
if printf '%s\n' "${TARGETS[@]}" | grep -q '| FAIL |'; then
    lk_say "some targets failed"
    exit 3
fi
