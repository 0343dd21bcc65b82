#!/usr/bin/env bash
# The chaos suite of issue 15: faults injected under load, on loopback, each bounded in time.
#
#   bench/chaos.sh [--fast] [embedded|postgres|cluster|all] [CASE...]
#
# Cases (each on a fresh node and a fresh database; the modes it runs in by default):
#   pg-restart   the node's PostgreSQL (a private instance this script starts on a spare port)
#                stopped (pg_ctl -m fast) for FAULT seconds, then started     postgres, cluster
#   amqp-close   the vhost's permissions revoked and its connections closed for FAULT seconds,
#                then permissions given back (only this run's own vhost)             cluster
#   kill9        the node killed with SIGKILL, down FAULT seconds, started again on the same
#                database and port                                                   every mode
#   kill9-peer   two nodes on one database and vhost; the second (not the one under load and
#                probes) killed with SIGKILL, down FAULT seconds, started again      cluster
#   sigterm      SIGTERM under load; started again on the same database and port once it has
#                exited (and FAULT seconds have passed)                              every mode
#   disk-full    the SQLite database on a small tmpfs, filled by a filler file for FAULT
#                seconds, then the filler removed                                    embedded
#   streams      STREAMS idle SSE clients (they never read) held for FAULT seconds  every mode
#   slow-body    SLOW clients trickling a POST body, one byte a second, for SLOW_S seconds
#                                                                                    every mode
# --fast (or CHAOS_FAST=1): shorter faults and only the fast selection (embedded: kill9 sigterm
# disk-full streams slow-body; postgres: pg-restart; cluster: amqp-close), under 2 minutes.
#
# During every case, `loanflow loadgen` submits at RATE loans/s (open loop) from before the
# fault until after it, and bench/chaos_probe.py GETs /health/ready and POSTs a loan every
# 100 ms. Printed per case: loans lost (answered 201 but not finished as the contract says),
# duplicated effects (notifications or ApplicantNotified events per loan > 1), loans stuck in
# the database, 5xx during the fault, readiness during the fault, time to recover (fault end to
# first ready 200 and first POST 201), server log lines written during the fault.
# Exit status: 1 when a loan is lost, stuck or an effect duplicated (the hard failures);
# the other figures are printed, not asserted.
#
# Environment: CHAOS_FAULT_S (fault length, 8; fast 4), CHAOS_WARMUP_S (2), CHAOS_AFTER_S
# (load after the fault, 4; fast 3), CHAOS_RATE (loadgen loans/s, 50), CHAOS_SETTLE_S (longest
# wait for loans to finish, 30), CHAOS_STREAMS (500), CHAOS_SLOW (50), CHAOS_SLOW_S (12),
# CHAOS_TMPFS_MB (64), CHAOS_REVISION (the revision of LOANFLOW_BIN, for the results' label),
# CHAOS_LOG_LEVEL (the server's, info: the shipped default), plus those of bench/lib.sh.
# Results: $BENCH_OUT/chaos-<stamp>/ (results.jsonl, results.md, every node's log).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FAST="${CHAOS_FAST:-0}"
ARGS=()
for arg in "$@"; do
    case "$arg" in
    --fast) FAST=1 ;;
    -h | --help)
        sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) ARGS+=("$arg") ;;
    esac
done
set -- "${ARGS[@]+"${ARGS[@]}"}"
WHICH="${1:-all}"
[ $# -gt 0 ] && shift
ONLY_CASES=("$@")
case "$WHICH" in
all) MODES=(embedded postgres cluster) ;;
embedded | postgres | cluster) MODES=("$WHICH") ;;
*) die "usage: $(basename "$0") [--fast] [embedded|postgres|cluster|all] [case...] (got '$WHICH')" ;;
esac
ALL_CASES=(pg-restart amqp-close kill9 kill9-peer sigterm disk-full streams slow-body)
for c in "${ONLY_CASES[@]+"${ONLY_CASES[@]}"}"; do
    [[ " ${ALL_CASES[*]} " == *" $c "* ]] || die "unknown case '$c' (${ALL_CASES[*]})"
done

if [ "$FAST" = 1 ]; then
    FAULT_S="${CHAOS_FAULT_S:-4}" AFTER_S="${CHAOS_AFTER_S:-3}"
else
    FAULT_S="${CHAOS_FAULT_S:-8}" AFTER_S="${CHAOS_AFTER_S:-4}"
fi
WARMUP_S="${CHAOS_WARMUP_S:-2}"
RATE="${CHAOS_RATE:-50}"
SETTLE_S="${CHAOS_SETTLE_S:-30}"
STREAMS="${CHAOS_STREAMS:-500}"
SLOW="${CHAOS_SLOW:-50}"
# Longer than a fault: a server's body timeout is usually several seconds.
SLOW_S="${CHAOS_SLOW_S:-12}"
TMPFS_MB="${CHAOS_TMPFS_MB:-64}"
LOG_LEVEL="${CHAOS_LOG_LEVEL:-info}"
PROBE="$BENCH_DIR/chaos_probe.py"
RUN_OUT="$BENCH_OUT/chaos-$(date +%Y%m%dT%H%M%S)"
RESULTS="$RUN_OUT/results.jsonl"
# The revision the figures are labelled with: the binary's when LOANFLOW_BIN is given (it does not
# say its own), else the checkout's.
REVISION="${CHAOS_REVISION:-$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
mkdir -p "$RUN_OUT"

# The cases a mode runs: the fast selection, or every case that applies to it.
cases_of() {
    local mode=$1
    if [ "$FAST" = 1 ]; then
        case "$mode" in
        embedded) echo kill9 sigterm disk-full streams slow-body ;;
        postgres) echo pg-restart ;;
        cluster) echo amqp-close ;;
        esac
    else
        local c
        for c in "${ALL_CASES[@]}"; do
            if applies "$mode" "$c"; then printf '%s ' "$c"; fi
        done
    fi
}

# applies MODE CASE: whether the case makes sense in that mode.
applies() {
    case "$2" in
    pg-restart) [ "$1" != embedded ] ;;
    amqp-close | kill9-peer) [ "$1" = cluster ] ;;
    disk-full) [ "$1" = embedded ] ;;
    *) true ;;
    esac
}

now() { date +%s.%N; }
# Sleep until the epoch time $1.
sleep_until() { while awk -v t="$1" -v n="$(now)" 'BEGIN {exit !(n < t)}'; do sleep 0.1; done; }
# About how long a case's fault lasts (rabbitmqctl takes a second or two per call).
fault_seconds() {
    case "$1" in
    slow-body) echo "$SLOW_S" ;;
    amqp-close) echo "$((FAULT_S + 5))" ;;
    *) echo "$FAULT_S" ;;
    esac
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- what a case starts, and its cleanup -------------------------------------------------------

BACKGROUND=()   # the probe and the load generator of the running case
TMPFS_DIR=""    # the mounted tmpfs of disk-full
PRIVATE_PG=""   # data directory of the private PostgreSQL instance
PG_BIN=""
PG_PORT=""

stop_background() {
    local pid
    for pid in "${BACKGROUND[@]+"${BACKGROUND[@]}"}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BACKGROUND=()
}

release_tmpfs() {
    if [ -n "$TMPFS_DIR" ]; then
        umount "$TMPFS_DIR" 2>/dev/null || umount -l "$TMPFS_DIR" 2>/dev/null || true
        rmdir "$TMPFS_DIR" 2>/dev/null || true
        TMPFS_DIR=""
    fi
}

chaos_cleanup() {
    say "cleaning up"
    stop_background
    stop_peer
    stop_server
    release_tmpfs
    if [ -n "$PRIVATE_PG" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PRIVATE_PG/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PRIVATE_PG"
    fi
    cleanup
}
trap chaos_cleanup EXIT

# --- the node ----------------------------------------------------------------------------------

NODE_LOGS=()

# node_start: start the case's node on $PORT with $DB_URL (and $AMQP_URL), wait until it listens.
node_start() {
    local log
    log="$CASE_OUT/node-$((${#NODE_LOGS[@]} + 1)).log"
    NODE_LOGS+=("$log")
    local -a env=("LOANFLOW__HTTP__PORT=$PORT" LOANFLOW__HTTP__HOST=127.0.0.1 "LOANFLOW__ADMIN__TOKEN=$BENCH_ADMIN_TOKEN"
        LOANFLOW__DECISION__REVIEW_BELOW_SCORE=0
        "LOANFLOW__LOG__LEVEL=$LOG_LEVEL" "LOANFLOW__NODE__ID=chaos-$MODE${NODE_SUFFIX:-}" "LOANFLOW__DATABASE__URL=$DB_URL")
    [ -z "$AMQP_URL" ] || env+=("LOANFLOW__BROKER__URL=$AMQP_URL")
    env -u LOANFLOW__BROKER__URL -u RUST_LOG "${env[@]}" "$BIN" >"$log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT))
    until grep -q 'listening on http' "$log" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || die "loanflow exited before listening ($log): $(tail -5 "$log")"
        ((SECONDS < deadline)) || die "loanflow did not listen within ${START_TIMEOUT}s ($log)"
        sleep 0.1
    done
}

PEER_PID=""
PEER_PORT=""

# peer_start: a second node on the case's database and vhost, on PEER_PORT (kill9-peer).
peer_start() {
    local port=$PORT pid=$SERVER_PID
    PORT=$PEER_PORT NODE_SUFFIX=-peer
    node_start
    PEER_PID=$SERVER_PID
    PORT=$port SERVER_PID=$pid NODE_SUFFIX=""
}

stop_peer() {
    if [ -n "$PEER_PID" ]; then
        kill "$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" 2>/dev/null || true
        PEER_PID=""
    fi
}

wait_ready() {
    local deadline=$((SECONDS + 30))
    until curl -fs -o /dev/null "$URL/health/ready"; do
        ((SECONDS < deadline)) || die "$URL/health/ready did not answer 200 within 30 s"
        sleep 0.2
    done
}

# Wait at most $1 seconds for the node to exit (after a signal); sets EXITED_AFTER (seconds, or
# "not within N") and clears SERVER_PID once it has exited.
wait_exit() {
    local limit=$1 started
    started=$(now)
    while kill -0 "$SERVER_PID" 2>/dev/null && awk -v s="$started" -v n="$(now)" -v l="$limit" 'BEGIN {exit !(n - s < l)}'; do
        sleep 0.05
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        EXITED_AFTER="not within $limit"
        return
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    EXITED_AFTER="$(awk -v s="$started" -v n="$(now)" 'BEGIN {printf "%.2f", n - s}')"
}

log_count() { cat "${NODE_LOGS[@]}" 2>/dev/null | wc -l; }

# --- the private PostgreSQL instance (pg-restart) ------------------------------------------------

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

private_pg_ctl() {
    as_postgres "$PG_BIN/pg_ctl" -D "$PRIVATE_PG/data" -l "$PRIVATE_PG/postgres.log" -w -t 30 \
        -o "-p $PG_PORT -k $PRIVATE_PG -c listen_addresses=127.0.0.1" "$@" >/dev/null
}

# Start the private instance once per run; prints nothing, sets PG_PORT.
private_pg() {
    [ -z "$PRIVATE_PG" ] || return 0
    PG_BIN="$(find /usr/lib/postgresql/*/bin -maxdepth 0 2>/dev/null | sort -V | tail -1)"
    [ -x "$PG_BIN/initdb" ] || die "pg-restart needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)"
    [ "$(id -u)" = 0 ] || [ "$(id -un)" = postgres ] || die "pg-restart runs initdb as user postgres: run as root or postgres"
    PRIVATE_PG="$(mktemp -d /tmp/loanflow-chaos-pg.XXXXXX)"
    [ "$(id -u)" != 0 ] || chown postgres: "$PRIVATE_PG"
    as_postgres "$PG_BIN/initdb" -D "$PRIVATE_PG/data" -A trust -U postgres >"$PRIVATE_PG/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -5 "$PRIVATE_PG/initdb.log")"
    PG_PORT="$(free_port)"
    private_pg_ctl start || die "the private PostgreSQL did not start: $(tail -5 "$PRIVATE_PG/postgres.log")"
    say "private PostgreSQL $PG_PORT ($PRIVATE_PG)"
}

# --- the faults: each runs from t0 for about FAULT_S seconds and sets T1 when it ends ------------

EXTRA='{}'

# The fault starts now (a fault function calls it again when its injection takes a while).
fault_begins() {
    T0=$(now)
    LINES0=$(log_count)
}

fault_pg_restart() {
    private_pg_ctl -m fast stop
    sleep "$FAULT_S"
    private_pg_ctl start
    T1=$(now)
}

fault_amqp_close() {
    local vhost=${AMQP_URL##*/} user="${BENCH_AMQP_USER:-guest}"
    rabbitmqctl -q clear_permissions -p "$vhost" "$user" >/dev/null
    rabbitmqctl -q close_all_connections --vhost "$vhost" "loanflow chaos suite" >/dev/null
    # Each rabbitmqctl call takes a second or two: the fault starts once the connections are closed.
    fault_begins
    sleep "$FAULT_S"
    rabbitmqctl -q set_permissions -p "$vhost" "$user" '.*' '.*' '.*' >/dev/null
    T1=$(now)
}

fault_kill9() {
    kill -9 "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    sleep "$FAULT_S"
    T1=$(now)
    node_start
}

fault_kill9_peer() {
    # What the peer holds when it dies: its live actors and messages in flight.
    local actors
    actors="$(curl -s --max-time 2 "http://127.0.0.1:$PEER_PORT/health/ready" |
        python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["checks"]["actors"]))' 2>/dev/null || echo null)"
    kill -9 "$PEER_PID"
    wait "$PEER_PID" 2>/dev/null || true
    PEER_PID=""
    sleep "$FAULT_S"
    T1=$(now)
    peer_start
    EXTRA="{\"peer_actors_at_kill\": $actors}"
}

fault_sigterm() {
    local started
    started=$(now)
    kill -TERM "$SERVER_PID"
    # The node's own bound (actors.shutdown_timeout_ms, 10 s) plus a margin.
    wait_exit 20
    if [ -n "$SERVER_PID" ]; then
        say "the node did not exit within 20 s of SIGTERM: SIGKILL"
        kill -9 "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    sleep_until "$(awk -v s="$started" -v f="$FAULT_S" 'BEGIN {printf "%.3f", s + f}')"
    EXTRA="{\"exit_after_sigterm_s\": \"$EXITED_AFTER\"}"
    T1=$(now)
    node_start
}

fault_disk_full() {
    # Fill what is left; dd stops at ENOSPC.
    dd if=/dev/zero of="$TMPFS_DIR/filler" bs=1M status=none 2>/dev/null || true
    local free
    free="$(df -k --output=avail "$TMPFS_DIR" | tail -1 | tr -d ' ')"
    sleep "$FAULT_S"
    rm -f "$TMPFS_DIR/filler"
    EXTRA="{\"free_kib_while_full\": $free}"
    T1=$(now)
}

fault_streams() {
    python3 "$PROBE" streams --url "$URL" --token "$BENCH_ADMIN_TOKEN" --n "$STREAMS" --hold "$FAULT_S" \
        >"$CASE_OUT/streams.json"
    T1=$(now)
    EXTRA="$(cat "$CASE_OUT/streams.json")"
}

fault_slow_body() {
    python3 "$PROBE" slow --url "$URL" --n "$SLOW" --hold "$SLOW_S" --interval 1 >"$CASE_OUT/slow.json"
    T1=$(now)
    EXTRA="$(cat "$CASE_OUT/slow.json")"
}

# --- one case ------------------------------------------------------------------------------------

FAILED=0

run_case() {
    MODE=$1 CASE=$2
    CASE_OUT="$RUN_OUT/$MODE-$CASE"
    mkdir -p "$CASE_OUT"
    NODE_LOGS=()
    EXTRA='{}'
    AMQP_URL=""
    echo
    echo "### $MODE / $CASE (fault ${FAULT_S}s, load $RATE loans/s)"
    case "$MODE" in
    embedded)
        if [ "$CASE" = disk-full ]; then
            TMPFS_DIR="$(mktemp -d /tmp/loanflow-chaos-tmpfs.XXXXXX)"
            mount -t tmpfs -o "size=${TMPFS_MB}m" loanflow-chaos "$TMPFS_DIR" ||
                die "disk-full mounts a tmpfs (mount -t tmpfs): needs root"
            DB_URL="$TMPFS_DIR/loanflow.db"
        else
            DB_URL="$CASE_OUT/loanflow.db"
        fi
        ;;
    postgres | cluster)
        if [ "$CASE" = pg-restart ]; then
            private_pg
            DB_URL="$(BENCH_PG="postgres://postgres@127.0.0.1:$PG_PORT" fresh_pg_database)"
        else
            DB_URL="$(fresh_pg_database)"
        fi
        [ "$MODE" = postgres ] || AMQP_URL="$(fresh_amqp_vhost)"
        ;;
    esac
    PORT="$(free_port)"
    URL="http://127.0.0.1:$PORT"
    node_start
    if [ "$CASE" = kill9-peer ]; then
        PEER_PORT="$(free_port)"
        peer_start
    fi
    wait_ready

    # The load spans the warm-up, the fault and AFTER_S seconds after it.
    local stop="$CASE_OUT/stop" n span
    span=$((WARMUP_S + $(fault_seconds "$CASE") + AFTER_S))
    n="$(awk -v r="$RATE" -v s="$span" 'BEGIN {printf "%d", r * s}')"
    python3 "$PROBE" probe --url "$URL" --out "$CASE_OUT/probe.jsonl" --stop-file "$stop" \
        --max-seconds "$((span + SETTLE_S + 60))" &
    BACKGROUND+=($!)
    timeout -k 5 "$((span + SETTLE_S + 120))" \
        "$BIN" loadgen --url "$URL" --n "$n" --rate "$RATE" --timeout-secs "$SETTLE_S" --json --pids "$SERVER_PID" \
        >"$CASE_OUT/loadgen.json" 2>"$CASE_OUT/loadgen.err" &
    local loadgen=$!
    BACKGROUND+=("$loadgen")
    sleep "$WARMUP_S"

    fault_begins
    "fault_${CASE//-/_}"
    local lines1
    lines1=$(log_count)
    say "fault from $T0 to $T1; waiting for the load to end and the loans to settle"
    # The probe watches the recovery for AFTER_S seconds at least, whatever the load does.
    sleep_until "$(awk -v t="$T1" -v a="$AFTER_S" 'BEGIN {printf "%.3f", t + a}')"
    wait "$loadgen" 2>/dev/null || true
    touch "$stop"
    stop_background

    local status=0
    python3 "$PROBE" summary --mode "$MODE" --case "$CASE" --revision "$REVISION" --url "$URL" \
        --token "$BENCH_ADMIN_TOKEN" --probe "$CASE_OUT/probe.jsonl" --t0 "$T0" --t1 "$T1" \
        --log-lines "$((lines1 - LINES0))" --loadgen "$CASE_OUT/loadgen.json" --db "$DB_URL" \
        --extra "$EXTRA" --settle "$SETTLE_S" --results "$RESULTS" || status=$?
    if [ "$status" != 0 ]; then
        echo "*** $MODE/$CASE: a loan lost or stuck, or an effect duplicated (details: $RESULTS)"
        FAILED=1
    fi
    stop_peer
    stop_server
    release_tmpfs
}

build_release
machine_info
echo "binary:   $BIN (figures labelled $REVISION)"
echo "chaos:    fault ${FAULT_S}s, warm-up ${WARMUP_S}s, after ${AFTER_S}s, $RATE loans/s, settle ≤ ${SETTLE_S}s, server log level $LOG_LEVEL"
echo "results:  $RUN_OUT"
for mode in "${MODES[@]}"; do
    for case_name in $(cases_of "$mode"); do
        if [ ${#ONLY_CASES[@]} -gt 0 ] && [[ " ${ONLY_CASES[*]} " != *" $case_name "* ]]; then
            continue
        fi
        run_case "$mode" "$case_name"
    done
    # A case named on the command line that is not in the selection but applies: run it too.
    for case_name in "${ONLY_CASES[@]+"${ONLY_CASES[@]}"}"; do
        if [[ " $(cases_of "$mode") " != *" $case_name "* ]] && applies "$mode" "$case_name"; then
            run_case "$mode" "$case_name"
        fi
    done
done

echo
if [ -s "$RESULTS" ]; then
    python3 "$PROBE" table --results "$RESULTS" | tee "$RUN_OUT/results.md"
else
    echo "no case ran (none of the cases named applies to the mode(s) chosen)"
fi
exit $FAILED
