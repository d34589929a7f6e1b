#!/usr/bin/env bash
# A three-instance Anneal cluster on one host (ADR 19, README "Cluster mode"), sharing one PostgreSQL:
#   s1  scheduler + billing   (Hazelcast 5701)
#   w1  worker                (5702), 16 simulated GPUs unless GPU_ARGS says otherwise
#   a1  api                   (5703), http://127.0.0.1:${HTTP_PORT:-8080}
# Optional: STANDBY=1 adds s2, a second scheduler + billing instance that stands by (5704).
# Optional: TLS=1 makes the event bus between them TLS both ways (ADR 27), with certificates that
#   config/cluster-certs.sh makes under <dir>/tls (once).
#
#   DB=postgresql://postgres@127.0.0.1:5432/test config/cluster-example.sh start
#   config/cluster-example.sh stop
# Logs and data under ${CLUSTER_DIR:-data/cluster}/<instance>. Build the jar first (./run builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${CLUSTER_DIR:-data/cluster}
jar=scheduler/target/anneal.jar
case "${1:-}" in
  start)
    [ -f "$jar" ] || { echo "no $jar: build it first (mvn -B -q -DskipTests package, or ./run)" >&2; exit 1; }
    : "${DB:?set DB to the shared PostgreSQL, e.g. postgresql://postgres@127.0.0.1:5432/test}"
    members=127.0.0.1:5701,127.0.0.1:5702,127.0.0.1:5703,127.0.0.1:5704
    mkdir -p "$dir"
    start() { # name port roles [args...]
      local name=$1 port=$2 roles=$3
      shift 3
      mkdir -p "$dir/$name"
      local tls=()
      if [ "${TLS:-0}" = 1 ]; then
        [ -f "$dir/tls/$name.pem" ] || config/cluster-certs.sh "$dir/tls" "$name" > /dev/null
        tls=(--cluster-tls-cert "$dir/tls/$name.pem" --cluster-tls-key "$dir/tls/$name-key.pem" --cluster-tls-ca "$dir/tls/ca.pem")
      fi
      nohup java ${JAVA_OPTS:-} -jar "$jar" --cluster --db-url "$DB" --cluster-port "$port" --cluster-members "$members" \
        --roles "$roles" --node-id "$name" --data-dir "$dir/$name" "${tls[@]}" "$@" > "$dir/$name/log" 2>&1 &
      echo $! > "$dir/$name/pid"
      echo "$name ($roles): pid $(cat "$dir/$name/pid"), log $dir/$name/log"
    }
    start s1 5701 scheduler,billing --http-port 0
    sleep "${STAGGER_SECONDS:-3}" # s1 takes the leases first
    # shellcheck disable=SC2086
    start w1 5702 worker --http-port 0 ${GPU_ARGS:---gpu-backend simulated --simulated-gpus 16:H100}
    start a1 5703 api --http-port "${HTTP_PORT:-8080}"
    if [ "${STANDBY:-0}" = 1 ]; then start s2 5704 scheduler,billing --http-port 0; fi
    ;;
  stop)
    for p in "$dir"/*/pid; do
      [ -f "$p" ] || continue
      kill "$(cat "$p")" 2>/dev/null || true
      rm -f "$p"
    done
    ;;
  *)
    echo "usage: DB=postgresql://... $0 start | $0 stop" >&2
    exit 2
    ;;
esac
