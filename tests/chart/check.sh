#!/usr/bin/env bash
# Lints, renders and validates the Helm chart offline (no helm binary, no cluster, no
# network once the venv exists):
#   tests/chart/check.sh            check; exit 1 on any failure
#   tests/chart/check.sh --update   also rewrite manifests/kubernetes/{vigie,crds}.yaml
#
# Tools, pinned in tests/chart/requirements.txt and installed into a venv on first use
# ($VIGIE_VENV_CHART, default ~/.cache/vigie/venv-chart; that step needs PyPI):
#   helm-python-sdk 0.2.2      Helm's Go SDK v4.2.3 in a bundled libhelm_c.so: helm lint
#                              --strict and the `helm template` renderer, offline
#   kubernetes-validate 1.37.0 Kubernetes 1.25-1.37 schemas in the wheel; --strict
#   yamllint 1.38.0            duplicate keys
# What is checked: tests/chart/check.py. With a helm binary the upstream equivalent is
#   helm lint --strict charts/vigie && helm template vigie charts/vigie -n monitoring \
#     | kubeconform -strict -summary
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${VIGIE_VENV_CHART:-$HOME/.cache/vigie/venv-chart}"
req=tests/chart/requirements.txt

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  python3 -m venv "$venv"
fi
# Install only when a pinned version is missing or different.
if ! "$venv/bin/python" - "$req" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "== installing $req into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
fi

# Run the checks in a network namespace with no interfaces when possible: proof that
# nothing is fetched.
run=("$venv/bin/python" tests/chart/check.py "$@")
if unshare -n true 2>/dev/null; then
  echo "== offline: running in a network namespace without interfaces (unshare -n)"
  exec unshare -n "${run[@]}"
elif unshare -rn true 2>/dev/null; then
  echo "== offline: running in a user+network namespace without interfaces (unshare -rn)"
  exec unshare -rn "${run[@]}"
else
  echo "== unshare unavailable: running with the network up (the tools do not use it)"
  exec "${run[@]}"
fi
