#!/usr/bin/env bash
# Cluster mode under load (ADR 19, docs/benchmarks.md): 20,000 `sleep` jobs over WebSocket into
#   cluster  config/cluster-example.sh with a standby (s1 scheduler+billing, s2 standing by, w1 worker
#            with 10,000 simulated GPUs, a1 api), all on this host, one PostgreSQL
#   single   one instance with the same fleet and store, for comparison
# then waits until every stored job is SETTLED and checks exactly-once and the ledger audit.
#   bench/cluster-load.sh cluster|single [kill-leader-after-seconds]
# Needs scheduler/target/anneal.jar and bench/target/benchmarks.jar (mvn -Pbench -DskipTests package),
# PostgreSQL on 127.0.0.1:5432 (user postgres, database test). Uses a fresh schema, dropped at the end
# unless KEEP_SCHEMA=1 (to look into a run).
set -u
cd "$(dirname "$0")/.."
mode=${1:?cluster or single}; kill_after=${2:-0}
export ANNEAL_ADMIN_KEY=admin-key-0123456789 ANNEAL_DEMO_TENANT=demo:demo-key-0123456789:20000
schema=load_$(date +%s)
sql() { psql -h 127.0.0.1 -U postgres -d test -tAc "$1"; }
if [ "$mode" = cluster ]; then
  rm -rf data/cluster
  DB="postgresql://postgres@127.0.0.1:5432/test?currentSchema=$schema" HTTP_PORT=18090 JAVA_OPTS="-Xmx2g" STANDBY=1 \
    GPU_ARGS="--gpu-backend simulated --simulated-gpus 10000" config/cluster-example.sh start >/dev/null
  port=18090
else
  rm -rf /tmp/anneal-single; mkdir -p /tmp/anneal-single
  nohup java -Xmx2g -jar scheduler/target/anneal.jar --db-url "postgresql://postgres@127.0.0.1:5432/test?currentSchema=$schema" \
    --http-port 18091 --data-dir /tmp/anneal-single --gpu-backend simulated --simulated-gpus 10000 > /tmp/anneal-single/log 2>&1 &
  single=$!
  port=18091
fi
for _ in $(seq 1 90); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 1; done
sleep 3
if [ "$kill_after" != 0 ]; then (sleep "$kill_after"; kill -9 "$(cat data/cluster/s1/pid)"; echo "killed the leader s1 (SIGKILL)") & fi
t0=$(date +%s%3N)
java -cp bench/target/benchmarks.jar io.anneal.bench.SubmitLoadGenerator "ws://127.0.0.1:$port/api/v1/ws" demo-key-0123456789 4 20000 256 60 2>&1 | tail -2
all=0
for _ in $(seq 1 120); do
  n=$(sql "select count(*) from $schema.job where state = 'SETTLED'"); all=$(sql "select count(*) from $schema.job")
  [ "$n" = "$all" ] && break
  sleep 1
done
echo "stored jobs $all, settled $n, $(( ($(date +%s%3N) - t0) / 1000 )) s after the first submit"
echo "by state: $(sql "select string_agg(state || ' ' || c, ', ') from (select state, count(*) c from $schema.job group by state) s")"
echo "run more than once: $(sql "select count(*) from $schema.job where attempt > 1")"
echo "settlements, distinct receipts: $(sql "select count(*) || ', ' || count(distinct receipt_id) from $schema.settlement")"
echo "receipts waiting in outboxes: $(sql "select count(*) from $schema.outbox")"
echo "ledger audit: $(curl -s "http://127.0.0.1:$port/api/v1/ledger/audit" -H "Authorization: Bearer $ANNEAL_ADMIN_KEY" | head -c 40)"
if [ "$mode" = cluster ]; then
  grep -h "plays it now\|claimed by no\|stopped answering\|not been told" data/cluster/s2/log | cut -c1-150
  config/cluster-example.sh stop
else
  kill "$single"
fi
sleep 4
[ -n "${KEEP_SCHEMA:-}" ] && echo "schema kept: $schema" || sql "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
