#!/usr/bin/env bash
# Cluster mode across hosts (ADR 19), with real network partitions. Four network namespaces on this
# machine stand in for four hosts on one bridge (10.77.0.0/24); PostgreSQL stays on the machine,
# reached through bench/pg-forward.py on 10.77.0.1 (short TCP keepalives, as tcp_keepalives_* would):
#   h1 10.77.0.11  s1: scheduler,billing (takes the leases first)
#   h2 10.77.0.12  w2: worker, 4 CPU devices
#   h3 10.77.0.13  a3: api,worker (4 CPU devices, HTTP :18090)
#   h4 10.77.0.14  s4: scheduler,billing (standby)
# Quorum: a majority of the 4 members listed (3). The drill, with `sleep` jobs of 5 s:
#   1. 48 jobs; at 9 s h2 is cut off for 25 s: its runs must be queued again and run on a3.
#   2. h1, the leader, is cut off from everything for 90 s: s4 must take both roles (s1 steps down)
#      while 24, then 12 more jobs are submitted; then h1 comes back and merges.
#   3. h4, now the leader, is cut off from the other hosts but not from PostgreSQL for 60 s: it must
#      let the roles go (it sees 1 member of the 3 it needs) and s1 take them, while 12 jobs are
#      submitted; then h4 comes back and merges.
#   4. s1 is killed (SIGKILL): s4 must take over; 12 more jobs.
# At the end: every job SETTLED, each receipt settled once, each job charged once, the audit clean; the
# bootstrap fund's windows (10 s here, PRICE_WINDOW) paid each second at most once, prices moved within δ.
#   sudo bench/cluster-hosts.sh          (needs root, iproute2, python3; scheduler/target/anneal.jar;
#                                         KEEP_SCHEMA=1 keeps the PostgreSQL schema to look into a run)
set -u
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
[ -f scheduler/target/anneal.jar ] || { echo "build first: mvn -B -DskipTests package" >&2; exit 1; }
schema=hosts_$(date +%s)
out=data/hosts
API=http://10.77.0.13:18090
export ANNEAL_ADMIN_KEY=admin-key-0123456789 ANNEAL_DEMO_TENANT=demo:demo-key-0123456789:20000
MEMBERS=10.77.0.11:5701,10.77.0.12:5701,10.77.0.13:5701,10.77.0.14:5701
# pricing and bootstrap windows short enough that several close in each phase (ADR 20, 21)
PRICE_WINDOW=${PRICE_WINDOW:-10}
DB="postgresql://postgres@10.77.0.1:5432/test?currentSchema=$schema"
sql() { psql -h 127.0.0.1 -U postgres -d test -tAc "$1"; }
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s, $(date +%T)] $*"; }

teardown() {
  for f in "$out"/*/pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  [ -f "$out/forward.pid" ] && kill "$(cat "$out/forward.pid")" 2>/dev/null
  for i in 1 2 3 4; do ip netns del "ah$i" 2>/dev/null; ip link del "vh$i" 2>/dev/null; done
  ip link del br-anneal 2>/dev/null
  sleep 1
  if [ -n "${KEEP_SCHEMA:-}" ]; then echo "schema $schema kept (KEEP_SCHEMA)"; else sql "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1; fi
}
trap teardown EXIT

rm -rf "$out"; mkdir -p "$out"
ip link add br-anneal type bridge && ip addr add 10.77.0.1/24 dev br-anneal && ip link set br-anneal up
for i in 1 2 3 4; do
  ip netns add "ah$i"
  ip link add "vh$i" type veth peer name eth0 netns "ah$i"
  ip link set "vh$i" master br-anneal up
  ip netns exec "ah$i" ip addr add "10.77.0.1$i/24" dev eth0
  ip netns exec "ah$i" ip link set eth0 up
  ip netns exec "ah$i" ip link set lo up
done
python3 bench/pg-forward.py 10.77.0.1 5432 > "$out/forward.log" 2>&1 &
echo $! > "$out/forward.pid"
sleep 0.5

# start NAME HOST-INDEX CLUSTER-PORT ROLES ARGS...
start() {
  local name=$1 h=$2 port=$3 roles=$4; shift 4
  mkdir -p "$out/$name"
  ip netns exec "ah$h" java -Xmx1g -jar scheduler/target/anneal.jar --cluster --db-url "$DB" --cluster-host "10.77.0.1$h" \
    --cluster-port "$port" --cluster-members "$MEMBERS" --roles "$roles" --node-id "$name" --data-dir "$out/$name" \
    --gpu-backend cpu --price-window-seconds "$PRICE_WINDOW" "$@" > "$out/$name/log" 2>&1 &
  echo $! > "$out/$name/pid"
}
partition() { ip link set "vh$1" down; say "h$1 cut off"; }
# isolate H: H and the other hosts drop what they send each other; the bridge (PostgreSQL) stays in reach
isolate() {
  for i in 1 2 3 4; do
    [ "$i" = "$1" ] && continue
    ip netns exec "ah$1" ip route add blackhole "10.77.0.1$i/32"; ip netns exec "ah$i" ip route add blackhole "10.77.0.1$1/32"
  done
  say "h$1 cut off from the other hosts, not from PostgreSQL"
}
rejoin() {
  for i in 1 2 3 4; do
    [ "$i" = "$1" ] && continue
    ip netns exec "ah$1" ip route del blackhole "10.77.0.1$i/32"; ip netns exec "ah$i" ip route del blackhole "10.77.0.1$1/32"
  done
  say "h$1 back"
}
heal() { ip link set "vh$1" up; say "h$1 back"; }
submit() { # N MS
  for _ in $(seq 1 "$1"); do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST "$API/api/v1/jobs" -H "Authorization: Bearer demo-key-0123456789" \
      -H 'content-type: application/json' -d "{\"kind\":\"sleep\",\"gpus\":1,\"maxSeconds\":120,\"params\":{\"ms\":$2}}"
  done | sort | uniq -c | sed 's/^/    HTTP /'
}
roles() { for n in s1 s4; do echo "    $n: $(grep -h 'plays it now\|stepping down\|could not be set up' "$out/$n/log" | tail -1 | cut -c1-120)"; done; }

# the quorum is 3 of 4: s1 takes the leases once the worker and the api instance have joined it
start w2 2 5701 worker --cpu-devices 4 --http-port 0
start a3 3 5701 api,worker --cpu-devices 4 --http-port 18090
start s1 1 5701 scheduler,billing --http-port 0
for _ in $(seq 1 60); do [ "$(grep -c 'plays it now' "$out/s1/log")" -ge 2 ] && break; sleep 1; done
start s4 4 5701 scheduler,billing --http-port 0
for _ in $(seq 1 90); do
  curl -sf "$API/ready" >/dev/null && [ "$(curl -s "$API/api/v1/gpus" -H "Authorization: Bearer demo-key-0123456789" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total", 0))' 2>/dev/null)" = 8 ] && break
  sleep 1
done
t0=$(date +%s)
say "cluster up: $(curl -s "$API/api/v1/cluster" -H "Authorization: Bearer $ANNEAL_ADMIN_KEY" | head -c 300)"
say "submitting 48 jobs of 5 s"; submit 48 5000
sleep 8; partition 2
sleep 25; heal 2
sleep 12; partition 1
sleep 10; roles
say "submitting 24 more jobs of 5 s while h1 is cut off"; submit 24 5000
sleep 30; say "submitting 12 more jobs of 5 s, 40 s into the cut"; submit 12 5000
sleep 50; roles; heal 1
sleep 30; roles
isolate 4
sleep 20; roles
say "submitting 12 more jobs of 5 s while h4 is cut off"; submit 12 5000
sleep 40; rejoin 4
sleep 30; roles
say "s1 killed (SIGKILL): s4 must take over"; kill -9 "$(cat "$out/s1/pid")"
sleep 10; roles
say "submitting 12 more jobs of 5 s"; submit 12 5000
for _ in $(seq 1 180); do
  n=$(sql "select count(*) from $schema.job where state = 'SETTLED'"); all=$(sql "select count(*) from $schema.job")
  [ "$n" = "$all" ] && break
  sleep 1
done
say "stored jobs $all, settled $n"
echo "  by state: $(sql "select string_agg(state || ' ' || c, ', ') from (select state, count(*) c from $schema.job group by state) s")"
echo "  by attempt: $(sql "select string_agg('attempt ' || attempt || ': ' || c, ', ') from (select attempt, count(*) c from $schema.job group by attempt order by attempt) s")"
echo "  ran on: $(sql "select string_agg(node_id || ' ' || c, ', ') from (select node_id, count(*) c from $schema.job group by node_id) s")"
echo "  settlements, distinct receipts, distinct jobs: $(sql "select count(*) || ', ' || count(distinct receipt_id) || ', ' || count(distinct job_id) from $schema.settlement")"
echo "  jobs charged more than once: $(sql "select count(*) from (select job_id from $schema.settlement where charge_uact > 0 group by job_id having count(*) > 1) s")"
echo "  receipts waiting in outboxes: $(sql "select count(*) from $schema.outbox")"
echo "  ledger audit: $(curl -s "$API/api/v1/ledger/audit" -H "Authorization: Bearer $ANNEAL_ADMIN_KEY" | head -c 200)"
echo "  bootstrap windows paid; sent overlapping the one before; paid overlapping it; seconds unpaid between them: $(sql "select count(*) || '; ' || count(*) filter (where asked_start_ms < prev) || '; ' || count(*) filter (where start_ms < prev) || '; ' || coalesce(sum(greatest(start_ms - prev, 0)) / 1000, 0) from (select start_ms, asked_start_ms, lag(end_ms) over (order by end_ms) prev from $schema.bootstrap_window) w")"
# δ bounds each step of the exact price per GPU-second (the per-hour figure is truncated); 1e-12 for the
# last digits of the stored decimals
echo "  price steps, steps beyond 12.5 %: $(sql "select count(*) || ', ' || count(*) filter (where r > 1.125 + 1e-12 or r < 0.875 - 1e-12) from (select uact_per_gpu_second::numeric / lag(uact_per_gpu_second::numeric) over (partition by gpu_class order by from_ms) r from $schema.class_price) p where r is not null")"
echo "  leases: $(sql "select string_agg(role || ' epoch ' || epoch || ' ' || holder, '; ') from $schema.role_lease")"
for n in s1 s4 w2 a3; do
  echo "  -- $n: $(grep -c SEVERE "$out/$n/log") SEVERE lines; notable:"
  grep -h "plays it now\|stepping down\|not taking\|quorum\|stopped answering\|claimed by no\|not been told\|stale run\|queued again\|is MERGED" "$out/$n/log" \
    | cut -c1-190 | head -16
done
