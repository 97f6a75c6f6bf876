#!/usr/bin/env bash
# bench/business-queries.sh — times each default business query of
# deploy/opsmon.yml on a SmarTalk database of about ROWS events (default 1M).
#
# Starts its own PostgreSQL in a temp dir on a free loopback port (never the
# machine's), loads deploy/sql/schema.sql and deploy/sql/demo-data.sql, then
# runs each query RUNS times (default 7) and prints a markdown table of the
# median and max execution times that EXPLAIN ANALYZE reports, plus the top
# plan node. Target from the project's issue: each < 50 ms at 1M rows.
#
# Usage: bench/business-queries.sh [ROWS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
RUNS=${2:-7}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
STATE=$(mktemp -d /tmp/opsmon-bench-business.XXXXXX)
chown postgres "$STATE" 2>/dev/null || true
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_pg "$PGBIN/pg_ctl" -D "$STATE/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$STATE"; }
trap cleanup EXIT

as_pg "$PGBIN/initdb" -D "$STATE/data" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$STATE/data" -l "$STATE/log" -w \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -k $STATE -c fsync=off -c shared_buffers=256MB" start >/dev/null
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE smartalk_db" >/dev/null
"${PSQL[@]}" -d smartalk_db -f deploy/sql/schema.sql >/dev/null
# demo-data.sql makes about 6.5 events per user.
USERS=$(( ROWS * 10 / 65 ))
echo "loading about $ROWS events ($USERS users)..." >&2
"${PSQL[@]}" -d smartalk_db -v users="$USERS" -f deploy/sql/demo-data.sql >/dev/null
"${PSQL[@]}" -d smartalk_db -c "VACUUM ANALYZE analytics_events" >/dev/null
ACTUAL=$("${PSQL[@]}" -d smartalk_db -A -t -c "SELECT count(*) FROM analytics_events")

python3 - "$ACTUAL" "$RUNS" "${PSQL[@]}" <<'PY'
import json, statistics, subprocess, sys
rows, runs, psql = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
text = open("deploy/opsmon.yml").read()
# The business queries: name and SQL block, read from the shipped config.
queries, lines, i = [], text[text.index("\n  business:\n"):].splitlines(), 0
while i < len(lines):
    line = lines[i]
    if line.strip().startswith("- name: ") and line.startswith("      - name:"):
        name = line.split(":", 1)[1].strip()
    if line.strip() == "sql: |":
        indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
        body = []
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) >= indent):
            body.append(lines[i][indent:])
            i += 1
        queries.append((name, "\n".join(body)))
        continue
    i += 1
print(f"Business queries on {rows} analytics_events rows, {runs} runs each (EXPLAIN ANALYZE execution time):\n")
print("| query | median ms | max ms | top plan node | < 50 ms |")
print("|---|--:|--:|---|---|")
for name, sql in queries:
    times, top = [], ""
    for _ in range(runs):
        out = subprocess.run(psql + ["-d", "smartalk_db", "-A", "-t", "-c", f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"],
                             check=True, capture_output=True, text=True).stdout
        plan = json.loads(out)[0]
        times.append(plan["Execution Time"])
        top = plan["Plan"]["Node Type"]
    median = statistics.median(times)
    print(f"| {name} | {median:.1f} | {max(times):.1f} | {top} | {'yes' if median < 50 else 'NO'} |")
PY
