#!/usr/bin/env bash
# HTTP load with oha against one fresh loanflow node: POST /api/v1/loans (a valid body) then,
# once every loan it created has finished, GET /api/v1/loans/{id}. Loopback only; each run is a
# fixed number of requests, so it stops by itself.
#
#   bench/oha.sh embedded|postgres|cluster [REQUESTS] [CONCURRENCY]
#
# Defaults: 20000 POSTs, 50000 GETs (REQUESTS sets both), 64 connections.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE="${1:-}"
check_mode "$MODE"
POSTS="${2:-20000}"
GETS="${2:-50000}"
CONCURRENCY="${3:-64}"

ensure_oha
build_release
machine_info
start_server "$MODE"

echo
echo "### POST /api/v1/loans: $POSTS requests, $CONCURRENCY connections ($MODE)"
echo "+ oha --no-tui -n $POSTS -c $CONCURRENCY -m POST -T application/json -d '<valid body>' $SERVER_URL/api/v1/loans"
oha --no-tui -n "$POSTS" -c "$CONCURRENCY" -m POST -T application/json -d "$VALID_BODY" "$SERVER_URL/api/v1/loans"

say "waiting for the $POSTS loans to finish before reading"
wait_quiet 900
ID="$(curl -fsS -X POST -H 'Content-Type: application/json' -d "$VALID_BODY" "$SERVER_URL/api/v1/loans" |
    grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)"
[ -n "$ID" ] || die "could not create a loan to read"
wait_quiet 60

echo
echo "### GET /api/v1/loans/{id}: $GETS requests, $CONCURRENCY connections ($MODE)"
echo "+ oha --no-tui -n $GETS -c $CONCURRENCY -H 'Authorization: Bearer <operator token>' $SERVER_URL/api/v1/loans/$ID"
oha --no-tui -n "$GETS" -c "$CONCURRENCY" -H "Authorization: Bearer $BENCH_ADMIN_TOKEN" "$SERVER_URL/api/v1/loans/$ID"
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
