#!/usr/bin/env python3
"""The measuring side of bench/chaos.sh (Python 3 standard library only).

Subcommands:
  probe    every PERIOD seconds, GET /health/ready and POST one valid loan (two threads), one
           JSON line per answer: {"t": sent (epoch s), "k": "ready"|"post", "s": the status, or
           the failure when there is no answer (refused, reset, closed, timeout), "ms": latency,
           "id": the loan id of a 201}; until STOP_FILE exists.
  streams  open N SSE clients on /api/v1/events/stream that never read after the headers,
           hold them, and report how many opened, were refused and were closed by the server.
  slow     open N clients that trickle a POST body one byte per INTERVAL, and report when and
           how the server cut them off.
  summary  one case's figures, from the probe's lines, the fault window, the server log, the
           loadgen report and the database; appends one JSON line to --results.
  table    the results as a Markdown table.

Times are epoch seconds (bash: `date +%s.%N`), so the script and the probe share one clock.
"""

import argparse
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

VALID_BODY = (
    b'{"applicant":{"name":"Chaos Probe","email":"probe@example.com","annual_income":150000,'
    b'"monthly_debts":300},"property":{"address":"12 Harbour Road, Lisbon","declared_value":400000},'
    b'"amount":200000,"term_months":300}'
)
REQUEST_TIMEOUT = 3.0


def split_url(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port or 80


NO_ANSWER = {
    "ConnectionRefusedError": "refused",
    "ConnectionResetError": "reset",
    "RemoteDisconnected": "closed",
    "TimeoutError": "timeout",
    "timeout": "timeout",
}


def no_answer(err):
    """A short name for a request that got no HTTP answer."""
    return NO_ANSWER.get(type(err).__name__, type(err).__name__)


def request(url, method, path, body=None, token=None, timeout=REQUEST_TIMEOUT):
    """One request on a fresh connection: (status or a short name of the failure, body bytes)."""
    host, port = split_url(url)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except Exception as err:  # every failure is a data point: refused, reset, timed out
        return no_answer(err), b""
    finally:
        conn.close()


# --- probe -----------------------------------------------------------------------------------


def probe(args):
    lock = threading.Lock()
    out = open(args.out, "a", buffering=1)
    deadline = time.time() + args.max_seconds

    def record(line):
        with lock:
            out.write(json.dumps(line) + "\n")

    def loop(kind):
        while not os.path.exists(args.stop_file) and time.time() < deadline:
            sent = time.time()
            if kind == "ready":
                status, _ = request(args.url, "GET", "/health/ready")
                line = {"t": sent, "k": kind, "s": status}
            else:
                status, body = request(args.url, "POST", "/api/v1/loans", body=VALID_BODY)
                line = {"t": sent, "k": kind, "s": status}
                if status == 201:
                    try:
                        line["id"] = json.loads(body)["id"]
                    except (ValueError, KeyError):
                        line["s"] = "201-without-id"
            line["ms"] = round((time.time() - sent) * 1000, 1)
            record(line)
            time.sleep(max(0.0, args.period - (time.time() - sent)))

    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in ("ready", "post")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- idle stream clients ---------------------------------------------------------------------


def read_status(sock):
    """The status code of an HTTP response's first line, or a short name of the failure."""
    data = b""
    try:
        while b"\r\n" not in data and len(data) < 4096:
            chunk = sock.recv(1)
            if not chunk:
                return "closed"
            data += chunk
        return int(data.split(b" ")[1])
    except (OSError, ValueError, IndexError) as err:
        return no_answer(err)


def closed_by_peer(sock):
    """Whether the server has closed (or reset) the connection; drains what is buffered."""
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def streams(args):
    host, port = split_url(args.url)
    started = time.time()
    socks, statuses = [], {}
    for _ in range(args.n):
        try:
            sock = socket.create_connection((host, port), timeout=5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(
                (
                    f"GET /api/v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Authorization: Bearer {args.token}\r\nAccept: text/event-stream\r\n\r\n"
                ).encode()
            )
            status = read_status(sock)
        except OSError as err:
            sock, status = None, no_answer(err)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 200:
            socks.append(sock)
        elif sock is not None:
            sock.close()
    opened_at = time.time()
    # Hold them, reading nothing, until the hold is over (or the stop file appears).
    while time.time() < opened_at + args.hold and not os.path.exists(args.stop_file):
        time.sleep(0.2)
    closed = sum(1 for s in socks if closed_by_peer(s))
    for sock in socks:
        sock.close()
    report = {
        "clients": args.n,
        "statuses": statuses,
        "open_seconds": round(opened_at - started, 2),
        "held_seconds": round(time.time() - opened_at, 2),
        "closed_by_server": closed,
    }
    print(json.dumps(report))


# --- slow-body clients -----------------------------------------------------------------------


def slow(args):
    host, port = split_url(args.url)
    body = VALID_BODY
    clients = []
    for _ in range(args.n):
        try:
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(
                (
                    f"POST /api/v1/loans HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
            )
            sock.setblocking(False)
            clients.append({"sock": sock, "sent": 0, "end": None, "how": None})
        except OSError as err:
            clients.append({"sock": None, "sent": 0, "end": 0.0, "how": "connect " + no_answer(err)})
    started = time.time()
    while time.time() < started + args.hold and not os.path.exists(args.stop_file):
        for client in clients:
            if client["end"] is not None:
                continue
            sock = client["sock"]
            try:
                answer = sock.recv(4096)
                client["how"] = answer.split(b"\r\n")[0].decode(errors="replace") if answer else "closed"
                client["end"] = time.time() - started
                continue
            except BlockingIOError:
                pass
            except OSError as err:
                client["how"], client["end"] = no_answer(err), time.time() - started
                continue
            if client["sent"] < len(body) - 1:  # never the last byte: the body stays incomplete
                try:
                    sock.send(body[client["sent"] : client["sent"] + 1])
                    client["sent"] += 1
                except OSError as err:
                    client["how"], client["end"] = no_answer(err), time.time() - started
        time.sleep(args.interval)
    cut = [c for c in clients if c["end"] is not None]
    hows = {}
    for client in cut:
        hows[client["how"]] = hows.get(client["how"], 0) + 1
    for client in clients:
        if client["sock"] is not None:
            client["sock"].close()
    ends = sorted(c["end"] for c in cut)
    report = {
        "clients": args.n,
        "cut_off_by_server": len(cut),
        "still_open_at_end": args.n - len(cut),
        "cut_after_s_median": round(ends[len(ends) // 2], 1) if ends else None,
        "how": hows,
        "held_seconds": round(time.time() - started, 1),
    }
    print(json.dumps(report))


# --- summary ---------------------------------------------------------------------------------


def load_lines(path):
    lines = []
    with open(path) as file:
        for text in file:
            try:
                lines.append(json.loads(text))
            except ValueError:
                pass  # a line cut by the probe's own stop
    return lines


def histogram(statuses):
    counts = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def percentiles(samples):
    """p50 and max of latencies in milliseconds (None without samples)."""
    if not samples:
        return None
    samples = sorted(samples)
    return {"p50": samples[len(samples) // 2], "max": samples[-1]}


def first_after(lines, kind, ok, since):
    times = [line["t"] + line["ms"] / 1000 for line in lines if line["k"] == kind and line["s"] == ok and line["t"] >= since]
    return round(min(times) - since, 2) if times else None


def finished(loan):
    return loan.get("status") in ("approved", "rejected", "cancelled") and loan.get("notified_at") is not None


def unfinished_probe_loans(url, token, ids, deadline):
    """The probe's 201 loans that are not terminal and notified by the deadline."""
    pending = set(ids)
    while pending:
        for loan_id in sorted(pending):
            status, body = request(url, "GET", f"/api/v1/loans/{loan_id}", token=token)
            if status == 200 and finished(json.loads(body)):
                pending.discard(loan_id)
        if not pending or time.time() >= deadline:
            break
        time.sleep(0.5)
    return sorted(pending)


DB_QUERIES = {
    "loans": "SELECT count(*) FROM loans",
    "unfinished": "SELECT count(*) FROM loans WHERE status NOT IN ('approved','rejected','cancelled') "
    "OR notified_at IS NULL",
    "dup_notifications": "SELECT count(*) FROM (SELECT loan_id FROM notifications GROUP BY loan_id "
    "HAVING count(*) > 1) d",
    "dup_notified_events": "SELECT count(*) FROM (SELECT loan_id FROM loan_events WHERE "
    "event_type = 'ApplicantNotified' GROUP BY loan_id HAVING count(*) > 1) d",
    "notified_without_notification": "SELECT count(*) FROM loans l WHERE l.notified_at IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.loan_id = l.id)",
}


def db_figures(db):
    """Counts from the database (SQLite file path or postgres:// URL); None when unreadable."""
    figures = {}
    try:
        if db.startswith("postgres"):
            for name, sql in DB_QUERIES.items():
                out = subprocess.run(["psql", "-At", db, "-c", sql], capture_output=True, text=True, timeout=20)
                figures[name] = int(out.stdout.strip())
        else:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                for name, sql in DB_QUERIES.items():
                    figures[name] = conn.execute(sql).fetchone()[0]
            finally:
                conn.close()
    except (ValueError, OSError, sqlite3.Error, subprocess.SubprocessError) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    return figures


def settled_db_figures(db, deadline):
    """Poll the database until every loan is finished or the deadline passes."""
    while True:
        figures = db_figures(db)
        if figures.get("unfinished") == 0 or time.time() >= deadline:
            return figures
        time.sleep(0.5)


def summary(args):
    lines = load_lines(args.probe)
    t0, t1 = args.t0, args.t1
    during = [line for line in lines if t0 <= line["t"] <= t1]
    posts = [line["s"] for line in during if line["k"] == "post"]
    ready = [line["s"] for line in during if line["k"] == "ready"]
    deadline = time.time() + args.settle
    ids = [line["id"] for line in lines if line["k"] == "post" and line["s"] == 201]
    probe_lost = unfinished_probe_loans(args.url, args.token, ids, deadline)
    loadgen = {}
    if args.loadgen and os.path.exists(args.loadgen):
        try:
            with open(args.loadgen) as file:
                loadgen = json.load(file)
        except ValueError:
            loadgen = {"error": "unreadable report"}
    db = settled_db_figures(args.db, deadline) if args.db else {}
    extra = json.loads(args.extra) if args.extra else {}
    loadgen_lost = loadgen.get("disagreements", 0) if "submitted" in loadgen else None
    lost = len(probe_lost) + (loadgen_lost or 0)
    dups = max(db.get("dup_notifications", 0), db.get("dup_notified_events", 0))
    result = {
        "mode": args.mode,
        "case": args.case,
        "revision": args.revision,
        "fault_seconds": round(t1 - t0, 1),
        "lost": lost,
        "lost_detail": {
            "probe_201_unfinished": len(probe_lost),
            "probe_examples": probe_lost[:5],
            "loadgen_disagreements": loadgen_lost,
            "loadgen_examples": loadgen.get("disagreement_examples", [])[:5],
        },
        "db_unfinished": db.get("unfinished"),
        "duplicated": dups,
        "db": db,
        "post_during_fault": histogram(posts),
        "post_5xx_during_fault": sum(1 for s in posts if isinstance(s, int) and 500 <= s <= 599),
        "post_no_answer_during_fault": sum(1 for s in posts if isinstance(s, str)),
        "post_during_fault_total": len(posts),
        "ready_during_fault": histogram(ready),
        "ready_ms_during_fault": percentiles([line["ms"] for line in during if line["k"] == "ready"]),
        "recover_ready_s": first_after(lines, "ready", 200, t1),
        "recover_post_s": first_after(lines, "post", 201, t1),
        "log_lines_during_fault": args.log_lines,
        "loadgen": {
            k: loadgen.get(k)
            for k in ("submitted", "submit_errors", "finished", "unfinished", "disagreements", "e2e_seconds")
        },
        "extra": extra,
    }
    with open(args.results, "a") as file:
        file.write(json.dumps(result) + "\n")
    print(one_line(result))
    return 1 if (lost or dups or db.get("unfinished") or "error" in db) else 0


def fmt_hist(counts):
    return " ".join(f"{k}×{v}" for k, v in sorted(counts.items())) or "-"


def fmt_seconds(value, unit=""):
    return "never" if value is None else f"{value:.2f}{unit}"


def one_line(r):
    return (
        f"{r['mode']}/{r['case']}: lost {r['lost']}, duplicated {r['duplicated']}, stuck in DB "
        f"{r['db_unfinished']}, POST 5xx during fault {r['post_5xx_during_fault']}/{r['post_during_fault_total']} "
        f"(no answer {r['post_no_answer_during_fault']}), ready during fault {fmt_hist(r['ready_during_fault'])}, "
        f"recovered: ready {fmt_seconds(r['recover_ready_s'], ' s')}, POST {fmt_seconds(r['recover_post_s'], ' s')}; "
        f"log lines during fault {r['log_lines_during_fault']}"
        + (f", {json.dumps(r['extra'])}" if r["extra"] else "")
    )


def table(args):
    rows = load_lines(args.results)
    print(f"revision {', '.join(sorted({r['revision'] for r in rows}))}")
    print()
    print(
        "| mode | case | fault s | lost | dup | stuck | POST 5xx / sent (no answer) | ready during fault "
        "| recover ready s | recover POST s | log lines | loadgen 201 / not accepted |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lg = r.get("loadgen") or {}
        print(
            f"| {r['mode']} | {r['case']} | {r['fault_seconds']} | {r['lost']} | {r['duplicated']} "
            f"| {r['db_unfinished']} | {r['post_5xx_during_fault']} / {r['post_during_fault_total']} "
            f"({r['post_no_answer_during_fault']}) | {fmt_hist(r['ready_during_fault'])} "
            f"| {fmt_seconds(r['recover_ready_s'])} | {fmt_seconds(r['recover_post_s'])} "
            f"| {r['log_lines_during_fault']} | {lg.get('submitted')} / {lg.get('submit_errors')} |"
        )
    extras = [r for r in rows if r.get("extra")]
    if extras:
        print()
        for r in extras:
            print(f"- {r['mode']}/{r['case']}: {json.dumps(r['extra'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--period", type=float, default=0.1)
    p.add_argument("--max-seconds", type=float, default=300)
    p = sub.add_parser("streams")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--hold", type=float, default=10)
    p.add_argument("--stop-file", default="/nonexistent")
    p = sub.add_parser("slow")
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--hold", type=float, default=10)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--stop-file", default="/nonexistent")
    p = sub.add_parser("summary")
    p.add_argument("--mode", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--revision", default="unknown")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--probe", required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--t1", type=float, required=True)
    p.add_argument("--log-lines", type=int, help="server log lines written during the fault")
    p.add_argument("--loadgen")
    p.add_argument("--db")
    p.add_argument("--extra")
    p.add_argument("--settle", type=float, default=30)
    p.add_argument("--results", required=True)
    p = sub.add_parser("table")
    p.add_argument("--results", required=True)
    args = parser.parse_args()
    handler = {"probe": probe, "streams": streams, "slow": slow, "summary": summary, "table": table}[args.command]
    sys.exit(handler(args) or 0)


if __name__ == "__main__":
    main()
