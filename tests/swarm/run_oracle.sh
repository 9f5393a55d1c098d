#!/bin/sh
# Records the fixtures, runs Prometheus (the oracle) against the same swarm
# state, saves its targets, records the fixtures again and checks that the
# state did not change in between. Run from tests/swarm/.
set -eu
PORT=${PORT:-19390}
PORT2=${PORT2:-19391}
TMP=$(mktemp -d /tmp/vigie-prom.XXXXXX)
echo "tmp dir: $TMP"

./record_fixtures.sh "$TMP/before"

# The oracle: prometheus.yml (labelmap keeps one active target per
# discovered target). A second instance with the same jobs but no
# relabel_configs shows how many targets plain Prometheus keeps active.
sed '/relabel_configs:/,/replacement:/d' prometheus.yml > "$TMP/plain.yml"
prometheus --config.file=prometheus.yml --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address=127.0.0.1:$PORT > "$TMP/prometheus.log" 2>&1 &
P1=$!
prometheus --config.file="$TMP/plain.yml" --storage.tsdb.path="$TMP/tsdb2" \
  --web.listen-address=127.0.0.1:$PORT2 > "$TMP/prometheus-plain.log" 2>&1 &
P2=$!
# promtool runs the same discovery (once per job) while Prometheus runs.
PT=
for role in services tasks nodes; do
  promtool check service-discovery --timeout=10s prometheus.yml swarm-$role \
    > "$TMP/promtool_$role.json" 2> "$TMP/promtool_$role.err" &
  PT="$PT $!"
done
sleep 15
wait $PT
curl -sf "http://127.0.0.1:$PORT/api/v1/targets?state=any" | jq -S . > "$TMP/targets.json"
curl -sf "http://127.0.0.1:$PORT2/api/v1/targets?state=any" | jq -S . > "$TMP/targets_plain.json"
kill $P1 $P2
wait $P1 $P2 || true

./record_fixtures.sh "$TMP/after"
# The Engine returns some lists (notably /networks) in random order, so
# compare with arrays sorted by ID and object keys sorted.
for d in before after; do
  mkdir -p "$TMP/norm-$d"
  for f in "$TMP/$d"/*.json; do
    jq -S 'if type == "array" then sort_by(.ID // .Id) else . end' "$f" \
      > "$TMP/norm-$d/$(basename "$f")"
  done
done
if ! diff -ru "$TMP/norm-before" "$TMP/norm-after"; then
  echo "swarm state changed during the oracle run: redo" >&2
  exit 1
fi

cp "$TMP/before"/*.json fixtures/
jq -S . "$TMP/targets.json" > prometheus_targets.json
for role in services tasks nodes; do
  key=__meta_dockerswarm_$(echo $role | sed 's/s$//')_id
  jq -S --arg job swarm-$role --arg key "$key" '
    [ (.data.activeTargets[], .data.droppedTargets[])
      | .discoveredLabels | select(.job == $job) ]
    | sort_by(.__address__, (.[$key] // ""), tojson)' \
    "$TMP/targets.json" > expected_$role.json
  printf '%s: %s discovered, %s active in plain Prometheus\n' "$role" \
    "$(jq length expected_$role.json)" \
    "$(jq --arg job swarm-$role '[.data.activeTargets[] | select(.scrapePool == $job)] | length' "$TMP/targets_plain.json")"
done
# Cross-check: promtool's discoveredLabels are the same set.
for role in services tasks nodes; do
  jq -S '[.[].discoveredLabels] | sort_by(tojson)' "$TMP/promtool_$role.json" > "$TMP/a_$role.json"
  jq -S 'sort_by(tojson)' expected_$role.json > "$TMP/b_$role.json"
  if cmp -s "$TMP/a_$role.json" "$TMP/b_$role.json"; then
    echo "$role: promtool check service-discovery agrees"
  else
    echo "$role: promtool check service-discovery DISAGREES" >&2
    diff "$TMP/a_$role.json" "$TMP/b_$role.json" | head -40 >&2
    exit 1
  fi
done
grep -iE 'level=(error|warn)' "$TMP/prometheus.log" | grep -i -e swarm -e discovery || true
echo "$TMP"
