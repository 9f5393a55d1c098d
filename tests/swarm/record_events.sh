#!/bin/sh
# Records fixtures/events.ndjson: the events stream while a throwaway
# service (and network) is created, scaled, updated and removed.
set -eux
OUT=${1:-fixtures/events.ndjson}
NODE=$(docker info --format '{{.Swarm.NodeID}}')
curl -sN --unix-socket /var/run/docker.sock -G \
  --data-urlencode 'filters={"type":["service","node","network","container"]}' \
  http://localhost/v1.41/events > "$OUT" &
CURL=$!
sleep 2
docker network create --driver overlay --attachable vigie-tmp
docker service create --detach --name tmp --replicas 1 --network vigie-tmp \
  --label vigie.scrape=true --env PORTS=80 vigie-metricsd:1
sleep 6
docker service scale --detach tmp=2
sleep 6
docker service update --detach --label-add vigie.port=80 tmp
sleep 8
docker node update --label-add tmp=1 "$NODE"
docker node update --label-rm tmp "$NODE"
docker service rm tmp
sleep 6
docker network rm vigie-tmp
sleep 3
kill "$CURL"
wait "$CURL" || true
wc -l "$OUT"
