#!/bin/sh
# Records the raw Engine API JSON (API v1.41), pretty-printed with jq,
# into the directory given as $1 (default fixtures/).
set -eu
DIR=${1:-fixtures}
mkdir -p "$DIR"
get() { # name path [curl -G args...]
  name=$1; path=$2; shift 2
  curl -sf --unix-socket /var/run/docker.sock -G "$@" \
    "http://localhost/v1.41/$path" | jq . > "$DIR/$name.json"
}
get version version
get services services --data-urlencode 'status=true'
get tasks tasks
get tasks_running tasks --data-urlencode 'filters={"desired-state":["running"]}'
get nodes nodes
get networks networks
