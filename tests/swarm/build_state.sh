#!/bin/sh
# Builds the Docker Swarm state recorded in fixtures/ (see README.md).
# Needs: a swarm-mode manager, the attachable overlay network vigie-mon,
# and the image vigie-metricsd:1 (built from image/, see README.md).
set -eux
IMG=vigie-metricsd:1
NODE=$(docker info --format '{{.Swarm.NodeID}}')

docker network create --driver overlay --attachable \
  --label vigie.env=test --label com.docker.stack.namespace=shop vigie-apps

docker service create --detach --name web --replicas 2 \
  --network vigie-mon --network vigie-apps --endpoint-mode vip \
  --publish published=8080,target=80,protocol=tcp,mode=ingress \
  --publish published=5353,target=53,protocol=udp,mode=ingress \
  --label vigie.scrape=true --label vigie.port=9100 \
  --label com.docker.stack.namespace=shop \
  --container-label team=web \
  --env PORTS=80,9100 "$IMG"

docker service create --detach --name db --replicas 1 \
  --endpoint-mode dnsrr --network vigie-mon \
  --label prometheus.io/scrape=true --label prometheus.io/port=9200 \
  --env PORTS=9200 "$IMG"

docker service create --detach --name agent --mode global \
  --publish mode=host,target=9300,published=9300 --network vigie-mon \
  --env PORTS=9300 "$IMG"

docker service create --detach --name job --mode replicated-job \
  --replicas 1 --restart-condition none "$IMG" exit

docker service create --detach --name plain --replicas 1 "$IMG"

# A task that fails (PORTS is not a port: the server exits 1) and one that is
# rejected (image absent); with --restart-condition none both stay as they are.
docker service create --detach --name broken --replicas 1 \
  --restart-condition none --network vigie-mon --env PORTS=bogus "$IMG"
docker service create --detach --name missing --replicas 1 \
  --restart-condition none --network vigie-mon vigie-missing:1

sleep 8
docker service scale --detach web=3
sleep 8
docker service scale --detach web=2
sleep 5
docker service update --detach --env-add X=1 db
sleep 8
docker node update --label-add zone=a "$NODE"
sleep 5
docker service ls
docker service ps --no-trunc web db agent job plain broken missing
