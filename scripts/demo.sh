#!/usr/bin/env bash
# scripts/demo.sh — the whole opsmon stack on this machine, for a first look.
#
# Starts, on 127.0.0.1 in one temp dir: PostgreSQL with the SmarTalk schema,
# demo data and the monitoring role (deploy/sql/), Redis, a stand-in API and
# CDN (scripts/demo/*.js, plain Node), an nginx-format access log being
# written, opsmon-exporter with the shipped deploy/opsmon.yml (only ports and
# paths changed; the DSN comes through DATA_SOURCE_NAME as in production),
# Prometheus with the shipped scrape config and the generated rules, and
# Alertmanager with the generated routing. Prints the URLs, then runs until
# Ctrl-C (or --for SECONDS) and stops everything and removes the temp dir.
#
# Usage: scripts/demo.sh [--for SECONDS] [--exporters N]
#   --for SECONDS   stop by itself after SECONDS (default: run until Ctrl-C)
#   --exporters N   run N exporters (1–8) as N scraped instances of job
#                   opsmon, to look at the dashboards with several hosts
# Environment:
#   DEMO_PORT_BASE      use BASE, BASE+1, … instead of the usual ports (3000,
#                       8443, 5432, 6379, 9090, 9093, 19100…); a taken port is
#                       always replaced by the next free one, with a message
#   OPSMON_EXPORTER_BIN the exporter to run (default: cargo build --release)
#   DEMO_USERS          demo-data users (default 5000)
#
# Needs the Debian packages scripts/test.sh installs (postgresql, redis-server,
# prometheus, prometheus-alertmanager, nodejs) and openssl; installs nothing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
me=scripts/demo.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

run_for=0
exporters=1
while [ $# -gt 0 ]; do
  case $1 in
    --for) run_for=${2:-}; shift 2 || true ;;
    --for=*) run_for=${1#--for=}; shift ;;
    --exporters) exporters=${2:-}; shift 2 || true ;;
    --exporters=*) exporters=${1#--exporters=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$me: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $run_for =~ ^[0-9]+$ ]] || { echo "$me: --for takes whole seconds, got '$run_for'" >&2; exit 2; }
[[ $exporters =~ ^[1-8]$ ]] || { echo "$me: --exporters takes 1 to 8, got '$exporters'" >&2; exit 2; }
demo_users=${DEMO_USERS:-5000}
[[ $demo_users =~ ^[0-9]{1,6}$ ]] || { echo "$me: DEMO_USERS must be a number up to 999999" >&2; exit 2; }

# --- tools ------------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need prometheus prometheus
need prometheus-alertmanager prometheus-alertmanager
need redis-server redis-server
need node nodejs
need psql postgresql-client
need openssl openssl
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "$me: missing Debian packages: ${missing[*]}" >&2
  echo "$me: run scripts/test.sh once (it installs them without starting their daemons), or apt-get install them" >&2
  exit 1
fi

if [ -n "${OPSMON_EXPORTER_BIN:-}" ]; then
  exporter_bin=$OPSMON_EXPORTER_BIN
else
  echo "$me: building opsmon-exporter (cargo build --release)" >&2
  (cd "$repo" && cargo build --release -q -p opsmon-exporter)
  exporter_bin=${CARGO_TARGET_DIR:-$repo/target}/release/opsmon-exporter
fi
[ -x "$exporter_bin" ] || { echo "$me: $exporter_bin is not an executable" >&2; exit 1; }

# --- ports ------------------------------------------------------------------
used_ports=()
# Something on this machine listens on PORT (any address). Connections in
# TIME_WAIT do not count: the servers started here all bind with SO_REUSEADDR.
port_busy() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
# Sets `picked` to WANTED, or to the next free port when WANTED is taken.
pick_port() {
  local name=$1 wanted=$2 port=$2
  while port_busy "$port" || [[ " ${used_ports[*]} " == *" $port "* ]]; do
    port=$((port + 1))
    if [ "$port" -gt 65535 ] || [ "$port" -gt $((wanted + 500)) ]; then
      echo "$me: no free port for $name from $wanted on" >&2
      exit 1
    fi
  done
  [ "$port" = "$wanted" ] || echo "$me: port $wanted ($name) is taken, using $port" >&2
  used_ports+=("$port")
  picked=$port
}
base=${DEMO_PORT_BASE:-}
if [ -n "$base" ] && ! { [[ $base =~ ^[0-9]+$ ]] && [ "$base" -ge 1024 ] && [ "$base" -le 65000 ]; }; then
  echo "$me: DEMO_PORT_BASE must be a port between 1024 and 65000, got '$base'" >&2
  exit 2
fi
port_for() { if [ -n "$base" ]; then echo $((base + $1)); else echo "$2"; fi; }
pick_port "stand-in API" "$(port_for 0 3000)"; api_port=$picked
pick_port "stand-in CDN" "$(port_for 1 8443)"; cdn_port=$picked
pick_port PostgreSQL "$(port_for 2 5432)"; pg_port=$picked
pick_port Redis "$(port_for 3 6379)"; redis_port=$picked
pick_port Prometheus "$(port_for 4 9090)"; prom_port=$picked
pick_port Alertmanager "$(port_for 5 9093)"; am_port=$picked
exporter_ports=()
for ((i = 0; i < exporters; i++)); do
  pick_port "opsmon-exporter $((i + 1))" "$(port_for $((6 + i)) $((19100 + i)))"
  exporter_ports+=("$picked")
done

# --- temp dir and stopping ----------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/opsmon-demo.XXXXXX")
pids=()
names=()
pg_started=
ticker=
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  echo "$me: stopping" >&2
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  if [ -n "$pg_started" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$tmp/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
  [ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true
  # Whatever ignores TERM for 10 s is killed.
  local tries pid
  for ((tries = 0; tries < 100; tries++)); do
    for pid in "${pids[@]}"; do alive "$pid" && break; done
    alive "${pid:-0}" || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
  echo "$me: stopped everything and removed $tmp" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The postgres user must be able to enter the temp dir (initdb refuses root);
# secrets live in a root-only subdirectory.
chmod 755 "$tmp"
mkdir -p "$tmp/logs" "$tmp/secrets" "$tmp/pg" "$tmp/redis" "$tmp/cdn" "$tmp/log/nginx" "$tmp/log/smartalk" \
  "$tmp/backups/postgresql" "$tmp/heartbeats" "$tmp/prometheus" "$tmp/alertmanager"
chmod 700 "$tmp/secrets"
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$tmp/pg" && runuser -u postgres -- "$@")
  else
    (cd "$tmp/pg" && "$@")
  fi
}
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$tmp/pg"
  if ! runuser -u postgres -- test -x "$tmp/pg"; then
    echo "$me: the postgres user cannot enter $tmp (set TMPDIR to a directory it can reach, such as /tmp)" >&2
    exit 1
  fi
fi

# Records a started child; its output goes to $tmp/logs/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$tmp/logs/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}
alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# died NAME [LOG]: NAME exited; show the end of $tmp/logs/LOG.log (LOG defaults to NAME).
died() {
  local log=${2:-$1}
  echo "$me: $1 exited; the end of its log ($tmp/logs/$log.log):" >&2
  tail -n 20 "$tmp/logs/$log.log" >&2 || true
  exit 1
}
# Waits until the last started child listens on PORT.
wait_port() {
  local name=$1 port=$2 pid=${pids[${#pids[@]} - 1]} tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    alive "$pid" || died "$name" "${names[${#names[@]} - 1]}"
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "$me: $name does not listen on $port after 60 s" >&2; exit 1; }
    sleep 0.2
  done
}

# --- PostgreSQL ---------------------------------------------------------------
echo "$me: starting PostgreSQL on $pg_port (schema, $demo_users demo users, monitoring role)" >&2
as_postgres "$pg_bin/initdb" -D "$tmp/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  -E UTF8 --locale=C.UTF-8 --no-sync >"$tmp/logs/initdb.log" 2>&1 || died initdb
pg_started=1
as_postgres "$pg_bin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/server.log" -w -t 60 \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $tmp/pg -c fsync=off" start >"$tmp/logs/pg_ctl.log" 2>&1 ||
  { cp "$tmp/pg/server.log" "$tmp/logs/pg_ctl.log" 2>/dev/null || true; died pg_ctl; }
# SQL goes through stdin: the checkout may be a directory the postgres user cannot read.
psql_as_postgres() {
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$pg_port" -U postgres "$@"
}
psql_as_postgres -d postgres -c 'CREATE DATABASE smartalk_db' >/dev/null
psql_as_postgres -d smartalk_db -f - <"$repo/deploy/sql/schema.sql" >/dev/null
psql_as_postgres -d smartalk_db -v users="$demo_users" -f - <"$repo/deploy/sql/demo-data.sql" >/dev/null
pg_password=$(openssl rand -hex 16)
(umask 077 && printf '%s\n' "$pg_password" >"$tmp/secrets/pg-password")
{ printf '\\set password %s\n' "$pg_password"; cat "$repo/deploy/sql/monitoring-role.sql"; } |
  psql_as_postgres -d smartalk_db -f - >/dev/null
# The business queries read analytics_events and its per-user summary, beyond pg_monitor's statistics.
psql_as_postgres -d smartalk_db -c 'GRANT SELECT ON analytics_events, analytics_events_last_seen TO opsmon' >/dev/null
# A real backup for the files collector's postgres_backup check.
as_postgres pg_dump -Fc -h "$tmp/pg" -p "$pg_port" -U postgres smartalk_db \
  >"$tmp/backups/postgresql/smartalk_db-$(date -u +%Y%m%d%H%M).dump"
# Live activity, run every 10 s by the main loop below: a user signs up, some
# activate, take a lesson or leave feedback.
live_events="WITH n AS (SELECT coalesce(max(user_id), 0) + 1 AS id FROM analytics_events)
INSERT INTO analytics_events (user_id, event_type, properties)
SELECT id, 'signup', '{\"source\": \"organic\", \"platform\": \"web\"}'::jsonb FROM n
UNION ALL SELECT id, 'activation', '{}'::jsonb FROM n WHERE random() < 0.45
UNION ALL SELECT id, 'lesson_started', '{\"lesson_id\": 1}'::jsonb FROM n WHERE random() < 0.4
UNION ALL SELECT id, 'feedback', jsonb_build_object('rating', 1 + (random() * 4)::int) FROM n WHERE random() < 0.2"

# --- Redis, the stand-in CDN and API ----------------------------------------------
echo "$me: starting Redis on $redis_port, the stand-in CDN on $cdn_port and API on $api_port" >&2
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --maxmemory 64mb --dir "$tmp/redis"
wait_port Redis "$redis_port"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
  -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
  -keyout "$tmp/cdn/key.pem" -out "$tmp/cdn/cert.pem" >"$tmp/logs/openssl.log" 2>&1 || died openssl
start cdn node "$repo/scripts/demo/cdn.js" --port "$cdn_port" --key "$tmp/cdn/key.pem" --cert "$tmp/cdn/cert.pem"
wait_port "stand-in CDN" "$cdn_port"
start smartalk-backend node "$repo/scripts/demo/smartalk-backend.js" --port "$api_port" --redis-port "$redis_port" \
  --access-log "$tmp/log/nginx/access.log" --app-log "$tmp/log/smartalk/application.log" \
  --heartbeat "$tmp/heartbeats/daily-report"
wait_port "stand-in API" "$api_port"

# --- the exporter(s) with the shipped config --------------------------------------
config=$(<"$repo/deploy/opsmon.yml")
# Replaces FROM by TO in the shipped config, which must still contain FROM.
adapt() {
  if [[ $config != *"$1"* ]]; then
    echo "$me: deploy/opsmon.yml no longer contains '$1': update the adapt lines of $me" >&2
    exit 1
  fi
  config=${config//"$1"/"$2"}
}
# Port 3000 stays watched (the guide's check and the dashboards' "Port 3000"
# panel): it shows 0 when the stand-in API had to move elsewhere.
listen_ports=$(printf '%s\n' 3000 "$api_port" "$pg_port" "$redis_port" | sort -nu | paste -sd, - | sed 's/,/, /g')
adapt 'listen_ports: [3000, 5432, 6379]' "listen_ports: [$listen_ports]"
adapt 'redis://127.0.0.1:6379' "redis://127.0.0.1:$redis_port"
adapt 'http://127.0.0.1:3000/api/v1/health' "http://127.0.0.1:$api_port/api/v1/health"
adapt 'https://cdn.smartalk.com/videos/sample.mp4' "https://127.0.0.1:$cdn_port/videos/sample.mp4"
# The demo CDN's certificate is made on the spot, so nothing can vouch for it.
adapt 'cache_status_header: X-Cache}' 'cache_status_header: X-Cache, insecure_skip_verify: true}'
adapt '/var/log/nginx/access.log' "$tmp/log/nginx/access.log"
adapt '/var/log/smartalk/application.log' "$tmp/log/smartalk/application.log"
adapt '/var/backups/postgresql/*.dump' "$tmp/backups/postgresql/*.dump"
adapt '/var/lib/smartalk/heartbeats/daily-report' "$tmp/heartbeats/daily-report"
printf '%s\n' "$config" >"$tmp/opsmon.yml"
# postgres_exporter's convention, as in production: the DSN (with the password)
# in the environment, never in the config file or on a command line.
export DATA_SOURCE_NAME="postgresql://opsmon:$pg_password@127.0.0.1:$pg_port/smartalk_db?sslmode=disable"
"$exporter_bin" --config.file="$tmp/opsmon.yml" --config.check >"$tmp/logs/config-check.log" 2>&1 || died config-check
for ((i = 0; i < exporters; i++)); do
  port=${exporter_ports[i]}
  echo "$me: starting opsmon-exporter on $port" >&2
  start "exporter-$((i + 1))" "$exporter_bin" --config.file="$tmp/opsmon.yml" --web.listen-address="127.0.0.1:$port"
  wait_port "exporter-$((i + 1))" "$port"
done
unset DATA_SOURCE_NAME

# --- Alertmanager and Prometheus ----------------------------------------------------
echo "$me: starting Alertmanager on $am_port and Prometheus on $prom_port" >&2
start alertmanager prometheus-alertmanager --config.file="$repo/deploy/alertmanager/alertmanager.yml" \
  --storage.path="$tmp/alertmanager" --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address=
wait_port Alertmanager "$am_port"
prom=$(<"$repo/deploy/prometheus/prometheus.yml")
replace_prom() {
  if [[ $prom != *"$1"* ]]; then
    echo "$me: deploy/prometheus/prometheus.yml no longer contains '$1': update $me" >&2
    exit 1
  fi
  prom=${prom//"$1"/"$2"}
}
targets=$(printf "'127.0.0.1:%s', " "${exporter_ports[@]}")
# Shorter intervals than production, so every panel has data within a minute.
replace_prom 'scrape_interval: 15s' 'scrape_interval: 5s'
replace_prom 'scrape_timeout: 10s' 'scrape_timeout: 4s'
replace_prom 'evaluation_interval: 15s' 'evaluation_interval: 5s'
replace_prom '  - rules.yml' "  - $repo/deploy/prometheus/rules.yml"
replace_prom "'127.0.0.1:9093'" "'127.0.0.1:$am_port'"
replace_prom "targets: ['127.0.0.1:19100']" "targets: [${targets%, }]"
printf '%s\n' "$prom" >"$tmp/prometheus/prometheus.yml"
start prometheus prometheus --config.file="$tmp/prometheus/prometheus.yml" --storage.tsdb.path="$tmp/prometheus/data" \
  --web.listen-address="127.0.0.1:$prom_port"
wait_port Prometheus "$prom_port"

# --- running ---------------------------------------------------------------------
cat <<INFO

opsmon demo is running:
  Prometheus      http://127.0.0.1:$prom_port   (alerts: /alerts, rules: /rules, targets: /targets)
  Alertmanager    http://127.0.0.1:$am_port
INFO
for port in "${exporter_ports[@]}"; do
  echo "  exporter        http://127.0.0.1:$port/metrics"
done
cat <<INFO
  stand-in API    http://127.0.0.1:$api_port/api/v1/health
  stand-in CDN    https://127.0.0.1:$cdn_port/videos/sample.mp4   (self-signed)
  PostgreSQL      postgresql://opsmon@127.0.0.1:$pg_port/smartalk_db   (password: $tmp/secrets/pg-password)
  Redis           redis://127.0.0.1:$redis_port
  access log      $tmp/log/nginx/access.log
  logs            $tmp/logs
  temp dir        $tmp
Dashboards: dashboards/*.json in Grafana, provisioned as in deploy/grafana/ with this Prometheus as
the data source (README, "Provisioning"). Every panel has data within about a minute.
INFO
if [ "$run_for" -gt 0 ]; then
  echo "Stopping in $run_for s (or on Ctrl-C)."
else
  echo "Press Ctrl-C to stop everything and remove the temp dir."
fi

started=$SECONDS
last_events=$SECONDS
while :; do
  sleep 1 &
  ticker=$!
  wait "$ticker" || true
  ticker=
  if [ $((SECONDS - last_events)) -ge 10 ]; then
    last_events=$SECONDS
    psql_as_postgres -d smartalk_db -c "$live_events" >>"$tmp/logs/events.log" 2>&1 || true
  fi
  for i in "${!pids[@]}"; do
    alive "${pids[i]}" || died "${names[i]}"
  done
  if [ "$run_for" -gt 0 ] && [ $((SECONDS - started)) -ge "$run_for" ]; then
    echo "$me: ran for $run_for s" >&2
    exit 0
  fi
done
