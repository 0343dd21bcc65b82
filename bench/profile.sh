#!/usr/bin/env bash
# CPU profile of one loanflow node under `loanflow loadgen`, with perf (Debian `linux-perf`):
# samples the server process only, from before the first submission until every loan is
# finished (not while the load generator reads them back for its check), then prints the hottest symbols (self
# time), the same grouped by library, and (with call graphs) the hottest inclusive paths.
#
#   bench/profile.sh embedded|postgres|cluster [N] [CONCURRENCY]     (defaults 5000, 64)
#
# Environment: PERF_FREQ (499 Hz), PERF_CALLGRAPH (dwarf; "none" for a flat profile), plus
# those of bench/lib.sh. perf.data and the reports land in $BENCH_OUT.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE="${1:-}"
check_mode "$MODE"
N="${2:-5000}"
C="${3:-64}"
FREQ="${PERF_FREQ:-499}"
CALLGRAPH="${PERF_CALLGRAPH:-dwarf}"
command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
perf stat -e instructions true >/dev/null 2>&1 || die "perf cannot count here (perf_event_paranoid or a VM without PMU?)"

build_release
machine_info
start_server "$MODE"

stamp="$(date +%Y%m%dT%H%M%S)"
data="$BENCH_OUT/perf-$MODE-$stamp.data"
graph=()
[ "$CALLGRAPH" = none ] || graph=(--call-graph "$CALLGRAPH,16384")
say "perf record -F $FREQ ${graph[*]} -p $SERVER_PID"
perf record -q -F "$FREQ" "${graph[@]}" -p "$SERVER_PID" -o "$data" 2>/dev/null &
PERF_PID=$!
sleep 1
"$BIN" loadgen --url "$SERVER_URL" --n "$N" --concurrency "$C" --pids "$SERVER_PID" &
LOADGEN_PID=$!
# Stop sampling once every loan is finished, before the load generator reads them back.
until curl -fsS -H "Authorization: Bearer $BENCH_ADMIN_TOKEN" "$SERVER_URL/api/v1/loans/stats" | grep -Eq "\"total\":${N}[,}]"; do sleep 0.5; done
wait_quiet 1800
kill -INT "$PERF_PID"
wait "$PERF_PID" || true
wait "$LOADGEN_PID" || true

report="$BENCH_OUT/perf-$MODE-$stamp.txt"
set +o pipefail # `head` closes the pipe early on purpose
top() { grep '%' | grep -v '^#' | sed 's/ *- *- *$//; s/ *$//' | cut -c1-220 | head -"$1"; }
{
    echo "### self time by symbol"
    perf report -i "$data" --no-children --sort symbol --stdio -g none --percent-limit 0.4 2>/dev/null | top 60
    echo
    echo "### self time by library"
    perf report -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null | top 10
    echo
    echo "### self time by thread"
    perf report -i "$data" --no-children --sort comm --stdio -g none 2>/dev/null | top 10
    if [ "$CALLGRAPH" != none ]; then
        echo
        echo "### inclusive time of loanflow, SQLite, diesel, actix and serde functions (>= 1%)"
        perf report -i "$data" --children --sort symbol --stdio -g none --percent-limit 1 2>/dev/null |
            grep -v '(inlined)' | grep -E 'loanflow::|sqlite3|subjournal|diesel::|actix_http|actix_web|tracing|serde|chrono|rust_decimal|malloc|sys_(fsync|fdatasync|pwrite)' |
            top 80
    fi
} >"$report"
cat "$report"
echo "perf data: $data; report: $report"
