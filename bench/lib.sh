# shellcheck shell=bash disable=SC2034  # (variables used by the scripts that source this)
# Helpers shared by the bench scripts; source it, do not run it.
#
# Modes (the first argument of every script):
#   embedded  SQLite in a fresh temporary directory, no broker (the default deployment)
#   postgres  embedded mode on a fresh PostgreSQL database (BENCH_PG, default
#             postgres://postgres@127.0.0.1:5432)
#   cluster   a fresh PostgreSQL database and a fresh RabbitMQ vhost (BENCH_AMQP, default
#             amqp://guest:guest@127.0.0.1:5672); fails clearly when the binary has no cluster mode
#
# Environment:
#   LOANFLOW_BIN       use this binary instead of building one
#   BENCH_ADMIN_TOKEN  the operator token the nodes get (a cluster node refuses to start without one)
#   CARGO_TARGET_DIR   where `cargo build --release` puts it (default /var/tmp/loanflow-target)
#   BENCH_OUT          where results and server logs go (default /tmp/loanflow-bench)
#   BENCH_LOG_LEVEL    the server's log level (default warn)
#   BENCH_QUIET_WAIT   before each server start, wait up to this many seconds for the 1-minute
#                      load average to drop below BENCH_QUIET_LOAD (default 1.0); 0 = don't wait

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/loanflow-target}"
BENCH_OUT="${BENCH_OUT:-/tmp/loanflow-bench}"
BENCH_ADMIN_TOKEN="${BENCH_ADMIN_TOKEN:-bench-operator-token}"
# `loanflow loadgen` reads the loans with it.
export LOADGEN_TOKEN="$BENCH_ADMIN_TOKEN"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
BENCH_AMQP="${BENCH_AMQP:-amqp://guest:guest@127.0.0.1:5672}"
START_TIMEOUT=60
mkdir -p "$BENCH_OUT"

SCRATCH="$(mktemp -d /tmp/loanflow-bench.XXXXXX)"
SERVER_PID=""
SERVER_URL=""
# Databases and vhosts to drop on exit, one per line (files, because the helpers that create
# them usually run in a command substitution, i.e. a subshell).
PG_DATABASES="$SCRATCH/pg-databases"
AMQP_VHOSTS="$SCRATCH/amqp-vhosts"

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf '*** %s\n' "$*" >&2
    exit 1
}

cleanup() {
    stop_server
    local db vhost
    while read -r db; do
        psql -q "$BENCH_PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" </dev/null >/dev/null 2>&1 || true
    done < <(cat "$PG_DATABASES" 2>/dev/null)
    while read -r vhost; do
        # rabbitmqctl reads its standard input: left to it, it would swallow the rest of the list.
        rabbitmqctl -q delete_vhost "$vhost" </dev/null >/dev/null 2>&1 || true
    done < <(cat "$AMQP_VHOSTS" 2>/dev/null)
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check_mode() {
    case "${1:-}" in
    embedded | postgres | cluster) ;;
    *) die "usage: $(basename "$0") embedded|postgres|cluster [...] (got '${1:-}')" ;;
    esac
}

# read_mode_and_scenarios KIND "DEFAULT SCENARIOS" MODE [SCENARIO...]: sets KIND (the reports'
# prefix), MODE, SCENARIOS (the given ones, or the defaults), N, C, SEED, TIMEOUT and STAMP.
read_mode_and_scenarios() {
    KIND=$1
    local defaults=$2
    shift 2
    MODE="${1:-}"
    check_mode "$MODE"
    shift
    SCENARIOS=("$@")
    # shellcheck disable=SC2206  # (the defaults are words)
    [ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=($defaults)
    N="${BENCH_N:-20000}"
    C="${BENCH_C:-64}"
    SEED="${BENCH_SEED:-1}"
    TIMEOUT="${BENCH_TIMEOUT:-1800}"
    STAMP="$(date +%Y%m%dT%H%M%S)"
}

# run_loadgen NAME LOADGEN-ARGS... : one loadgen run against the node started last, its JSON
# kept in $BENCH_OUT and named in LAST_REPORT.
run_loadgen() {
    local name=$1
    shift
    local report="$BENCH_OUT/$KIND-$MODE-$name-$STAMP.json"
    echo
    echo "### $name ($MODE)"
    echo "+ loanflow loadgen --url $SERVER_URL --seed $SEED --timeout-secs $TIMEOUT --json --pids $SERVER_PID $*"
    local status=0
    "$BIN" loadgen --url "$SERVER_URL" --seed "$SEED" --timeout-secs "$TIMEOUT" --json --pids "$SERVER_PID" "$@" \
        >"$report" || status=$?
    echo "report: $report (load now: $(cut -d' ' -f1-3 /proc/loadavg))"
    LAST_REPORT="$report"
    return $status
}

# Print what a figure depends on: date, machine, load, revision.
machine_info() {
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine:  $(nproc) cores, $(free -h | awk '/^Mem:/ {print $2}') RAM, $(uname -sr)"
    echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
    echo "revision: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_DIR" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
}

# Build the release binary (unless LOANFLOW_BIN is set) and copy it to the scratch directory, so
# that another build into the same target directory cannot swap it out during the run.
build_release() {
    if [ -n "${LOANFLOW_BIN:-}" ]; then
        [ -x "$LOANFLOW_BIN" ] || die "LOANFLOW_BIN=$LOANFLOW_BIN is not an executable"
        BIN="$LOANFLOW_BIN"
        return
    fi
    say "cargo build --release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO_DIR" && cargo build --release --quiet)
    cp "$CARGO_TARGET_DIR/release/loanflow" "$SCRATCH/loanflow"
    BIN="$SCRATCH/loanflow"
}

ensure_oha() {
    if ! command -v oha >/dev/null 2>&1; then
        say "oha is missing: cargo install oha --locked (about 5 minutes of CPU)"
        cargo install oha --locked
    fi
}

# A fresh PostgreSQL database; prints its URL.
fresh_pg_database() {
    command -v psql >/dev/null || die "psql is missing (apt-get install postgresql-client)"
    local name
    name="loanflow_bench_$(date +%s)_$RANDOM"
    psql -q "$BENCH_PG/postgres" -c "CREATE DATABASE $name" >/dev/null ||
        die "cannot create a database on $BENCH_PG (is PostgreSQL running?)"
    echo "$name" >>"$PG_DATABASES"
    echo "$BENCH_PG/$name"
}

# A fresh RabbitMQ vhost, so no queue of an earlier run interferes; prints the broker URL.
fresh_amqp_vhost() {
    command -v rabbitmqctl >/dev/null || die "rabbitmqctl is missing: cluster mode needs a local RabbitMQ"
    local vhost user="${BENCH_AMQP_USER:-guest}"
    vhost="loanflow_bench_$(date +%s)_$RANDOM"
    rabbitmqctl -q add_vhost "$vhost" >/dev/null || die "cannot create a RabbitMQ vhost (is RabbitMQ running?)"
    echo "$vhost" >>"$AMQP_VHOSTS"
    rabbitmqctl -q set_permissions -p "$vhost" "$user" '.*' '.*' '.*' >/dev/null
    echo "$BENCH_AMQP/$vhost"
}

# Other work on the machine skews every figure: optionally wait for a quiet moment.
wait_for_quiet_machine() {
    local limit="${BENCH_QUIET_WAIT:-0}" threshold="${BENCH_QUIET_LOAD:-1.0}" deadline
    ((limit > 0)) || return 0
    deadline=$((SECONDS + limit))
    while awk -v t="$threshold" '{exit !($1 >= t)}' /proc/loadavg && ((SECONDS < deadline)); do
        sleep 5
    done
    say "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# start_server MODE [VAR=VALUE...]: start loanflow on a free port with a fresh database and the
# given extra settings; sets SERVER_PID and SERVER_URL.
start_server() {
    local mode=$1
    shift
    wait_for_quiet_machine
    local log
    log="$BENCH_OUT/server-$mode-$(date +%Y%m%dT%H%M%S).log"
    # The rules decide every loan: the workloads play no underwriter.
    local -a env=(LOANFLOW__HTTP__PORT=0 LOANFLOW__HTTP__HOST=127.0.0.1 "LOANFLOW__ADMIN__TOKEN=$BENCH_ADMIN_TOKEN"
        LOANFLOW__DECISION__REVIEW_BELOW_SCORE=0
        "LOANFLOW__LOG__LEVEL=${BENCH_LOG_LEVEL:-warn}")
    case "$mode" in
    embedded) env+=("LOANFLOW__DATABASE__URL=$SCRATCH/db-$RANDOM/loanflow.db") ;;
    postgres) env+=("LOANFLOW__DATABASE__URL=$(fresh_pg_database)") ;;
    cluster) env+=("LOANFLOW__DATABASE__URL=$(fresh_pg_database)" "LOANFLOW__BROKER__URL=$(fresh_amqp_vhost)") ;;
    esac
    if [ "$mode" = embedded ]; then
        mkdir -p "$(dirname "${env[3]#*=}")"
    fi
    say "starting loanflow ($mode): ${env[*]:3} $*"
    env -u LOANFLOW__BROKER__URL -u RUST_LOG "${env[@]}" "$@" "$BIN" >"$log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT))
    until SERVER_URL="$(grep -o -m1 'listening on http://[0-9.:]*' "$log" 2>/dev/null | sed 's/^listening on //')" && [ -n "$SERVER_URL" ]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            SERVER_PID=""
            if grep -q 'cluster mode (RabbitMQ) is not available' "$log"; then
                die "cluster mode is not implemented in this build yet (LOANFLOW__BROKER__URL is refused); run 'embedded' or 'postgres'"
            fi
            die "loanflow exited before listening; its log ($log):
$(tail -20 "$log")"
        fi
        ((SECONDS < deadline)) || die "loanflow did not print 'listening on' within ${START_TIMEOUT}s (log: $log)"
        sleep 0.2
    done
    say "loanflow pid $SERVER_PID at $SERVER_URL (log: $log)"
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

# Wait until the server has no loan left in flight (so a benchmark does not measure the tail of
# the previous one).
wait_quiet() {
    local deadline=$((SECONDS + ${1:-600})) stats
    while ((SECONDS < deadline)); do
        stats="$(curl -fsS -H "Authorization: Bearer $BENCH_ADMIN_TOKEN" "$SERVER_URL/api/v1/loans/stats")" || true
        if printf '%s' "$stats" | grep -q '"submitted":0' && printf '%s' "$stats" | grep -q '"evaluating":0'; then
            return 0
        fi
        sleep 1
    done
    say "warning: loans still in flight after ${1:-600}s: $stats"
}

# A valid application (approved by the rules).
VALID_BODY='{"applicant":{"name":"Barbara Liskov","email":"barbara@example.com","annual_income":150000,"monthly_debts":300},"property":{"address":"12 Harbour Road, Lisbon","declared_value":400000},"amount":200000,"term_months":300}'
