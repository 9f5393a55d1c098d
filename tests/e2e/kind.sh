#!/usr/bin/env bash
# End-to-end on a real cluster (kind). Not run in CI: the build machines have no
# Kubernetes, kind or image registry (tests/kubernetes_e2e.rs covers the same flow against
# the fake API server). Needs docker, kind, kubectl and network access for base images.
#
#   tests/e2e/kind.sh            create a cluster `vigie-e2e`, test, delete it
#   KEEP=1 tests/e2e/kind.sh     keep the cluster afterwards
set -euo pipefail
cd "$(dirname "$0")/../.."
cluster=vigie-e2e
image=vigie:e2e
ns=monitoring

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done

cleanup() { [ -n "${KEEP:-}" ] || kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== cluster and image"
kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 120s
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

echo "== CRDs and vigie"
kubectl apply --server-side -f manifests/kubernetes/crds.yaml
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
sed "s#image: .*vigie.*#image: $image#" manifests/kubernetes/vigie.yaml | kubectl apply -n "$ns" -f -
kubectl -n "$ns" rollout status statefulset/vigie --timeout=180s

echo "== an app to scrape (vigie itself, serving its own /metrics on 9100)"
kubectl create namespace shop --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n shop -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: $image
          imagePullPolicy: Never
          args: [run, --listen, 0.0.0.0:9100, --discovery, none, --data-dir, /tmp/data]
          ports: [{name: metrics, containerPort: 9100}]
---
apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  endpoints: [{port: metrics, interval: 5s}]
YAML
kubectl -n shop rollout status deployment/web --timeout=120s

echo "== the Monitor's status reports both pods up"
for _ in $(seq 1 60); do
  up=$(kubectl -n shop get monitor web -o jsonpath='{.status.targetsUp}' 2>/dev/null || true)
  [ "$up" = "2" ] && break
  sleep 2
done
kubectl -n shop get monitors -o wide
[ "$up" = "2" ] || { echo "expected 2 targets up, got '${up:-none}'" >&2; exit 1; }

echo "== scaling to 3 is followed"
kubectl -n shop scale deployment/web --replicas 3
for _ in $(seq 1 60); do
  up=$(kubectl -n shop get monitor web -o jsonpath='{.status.targetsUp}')
  [ "$up" = "3" ] && break
  sleep 1
done
[ "$up" = "3" ] || { echo "expected 3 targets up after the scale, got '$up'" >&2; exit 1; }

echo "== a broken AlertRule is reported in its status"
kubectl apply -n shop -f - <<'YAML'
apiVersion: vigie.dev/v1alpha1
kind: AlertRule
metadata: {name: broken}
spec:
  groups: [{name: g, rules: [{alert: X, expr: "up == (1"}]}]
YAML
for _ in $(seq 1 30); do
  accepted=$(kubectl -n shop get alertrule broken -o jsonpath='{.status.conditions[?(@.type=="Accepted")].status}')
  [ "$accepted" = "False" ] && break
  sleep 1
done
kubectl -n shop get alertrule broken -o jsonpath='{.status.conditions[0].message}{"\n"}'
[ "$accepted" = "False" ] || { echo "the broken AlertRule was not reported" >&2; exit 1; }

echo "== PromQL through the Service"
kubectl -n "$ns" port-forward svc/vigie 19090:9090 >/dev/null 2>&1 &
pf=$!
sleep 3
curl -fsS 'http://127.0.0.1:19090/api/v1/query?query=count(up{namespace="shop"}==1)' | grep -q '"3"'
kill $pf
echo "kind e2e passed"
