#!/usr/bin/env bash
# A plain `pip install` of the wheel (not an editable install) must give a working `gateway`
# command, with schemas/ and templates/ inside the package. Runs from a directory outside
# the checkout so that nothing can be found there by accident.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$top/.venv/bin/pip" wheel --quiet --no-deps -w "$work/dist" "$top"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$work"/dist/*.whl
cp "$top/config.example.yaml" "$work/config.yaml"
cd "$work"
"$work/venv/bin/gateway" check-config config.yaml
port=$("$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/venv/bin/gateway" serve --config config.yaml --port "$port" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$port/healthz" > /dev/null; then break; fi
  sleep 0.1
done
curl -sf -H "Authorization: Bearer janesmith-example-token-0002" \
  "http://127.0.0.1:$port/openapi.json" | grep -q '"openapi":"3.1.0"'
echo "wheel smoke test: OK (installed wheel serves /openapi.json)"
