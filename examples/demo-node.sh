#!/usr/bin/env bash
# The node: an instance run as a service on a loopback port. It starts,
# transactions go through it (the CLI finds it through --home), an event
# stream shows what each block did, curl reads the same API as JSON, and
# SIGINT stops it cleanly.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin/fractal"
[ -x "$bin" ] || { echo "demo-node: $bin is missing; run make build" >&2; exit 1; }
work="$(mktemp -d)"
node_pid=""
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
f() { "$bin" --home "$work/home" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "An instance, and a node serving it on a free loopback port"
f init >/dev/null
"$bin" --home "$work/home" node --listen 127.0.0.1:0 --block-time 200ms 2>node.log &
node_pid=$!
f node status --wait 10s
url="$(f --json node status | sed -n 's/.*"url": "\(.*\)".*/\1/p')"

step "Code and transactions through the node (no store is opened but the node's)"
token="$(f code deploy "$root/examples/token/token.lua")"
sig="$(f code deploy "$root/examples/sig/sig.lua")"
"$bin" keys gen --out alice.key >/dev/null
"$bin" keys gen --out bob.key >/dev/null
alice="$("$bin" keys show alice.key)"
bob="$("$bin" keys show bob.key)"
cp "$root/examples/token/mint.lua" "$root/examples/token/lookup.lua" "$root/examples/token/transfer.lua" .
cat > mint.json <<JSON
{"nonce": 1, "gas_limit": 1000000, "read": [], "write": ["/$token/$sig/*"],
 "calculation_file": "mint.lua", "extradata_text": "$token $sig $alice GOLD 100"}
JSON
f tx submit mint.json --key alice.key | sed -n 1,3p
gold="$(f notes --pattern "*/$token/$sig/*" | awk '$2 ~ /^\// {print $2; exit}')"
cat > transfer.json <<JSON
{"nonce": 2, "gas_limit": 1000000, "read": ["$gold"], "write": ["/$token/$sig/*"],
 "lookup_file": "lookup.lua", "calculation_file": "transfer.lua", "extradata_text": "$bob 30 $gold"}
JSON
echo "Alice signs the transfer apart (tx sign), and the signed file is submitted with no key:"
"$bin" tx sign transfer.json --key alice.key --out transfer.signed.json | sed -n 1p
f tx submit transfer.signed.json | sed -n 1,2p

step "The event stream from the first block (fractal node watch)"
f node watch --start 1 --receipts --pattern "*/$token/$sig/*" --until "$(f --json node status | sed -n 's/.*"head": \([0-9]*\),.*/\1/p')"

step "The same API as JSON over curl, and the metrics"
curl -s -H 'Content-Type: application/json' -d '{"page_size": 5}' "$url/fractal.v1.FractalService/ListBlocks" | tr ',' '\n' | grep -c '"hash"' | sed 's/^/blocks listed: /'
curl -s "$url/metrics" | grep -E '^fractal_(blocks_total|head_height|mempool_depth) '
echo "The explorer, for a browser, is at $url/ (docs/explorer.md):"
curl -s "$url/" | grep -o '<title>[^<]*</title>'

step "SIGINT: the block in progress is sealed, the store closed, node.json removed"
kill -INT "$node_pid"
wait "$node_pid"
node_pid=""
grep -oE 'msg=("[a-z ]*"|[a-z]+)' node.log | sort | uniq -c
[ ! -e home/node.json ] && echo "node.json removed"
f verify
