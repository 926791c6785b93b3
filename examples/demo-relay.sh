#!/usr/bin/env bash
# Cross-instance transfer: three local instances a, b and c, each with its own
# store and executor key. Alice mints GOLD on a and sends the note a → b → c,
# relaying each export; its provenance is printed at every step.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin/fractal"
[ -x "$bin" ] || { echo "demo-relay: $bin is missing; run make build" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n== %s\n' "$*"; }

step "Three instances; each trusts the others"
for i in a b c; do
  "$bin" --home "$i" init
  "$bin" --home "$i" code deploy "$root/examples/token/token.lua" >/dev/null
  "$bin" --home "$i" code deploy "$root/examples/sig/sig.lua" >/dev/null
done
for i in a b c; do for j in a b c; do
  [ "$i" = "$j" ] || "$bin" --home "$i" peers add --from "$j" >/dev/null
done; done
id() { "$bin" --home "$1" peers self --json | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p'; }
ida="$(id a)"; idb="$(id b)"; idc="$(id c)"
echo "a $ida"; echo "b $idb"; echo "c $idc"
"$bin" keys gen --out alice.key >/dev/null
alice="$("$bin" keys show alice.key)"
token="$(sha256sum "$root/examples/token/token.lua" | cut -d' ' -f1)"
sig="$(sha256sum "$root/examples/sig/sig.lua" | cut -d' ' -f1)"

# provenance prints where the GOLD note on instance $1 came from.
provenance() {
  "$bin" --home "$1" notes --pattern "*/$token/$sig/*" | awk -v a="$ida" -v b="$idb" -v c="$idc" '
    $2 ~ /^[0-9a-f,]*\// { split($2, p, "/"); n = split(p[1], ids, ","); s = "";
      for (i = 1; i <= n; i++) { x = ids[i]; s = s (i > 1 ? "," : "") (x == a ? "a" : x == b ? "b" : x == c ? "c" : x) }
      print "  provenance [" s "]  " $2 }'
}
cat > lookup.lua <<'LUA'
return { string.sub(extradata, 66) }
LUA
cat > export.lua <<'LUA'
-- Calculation code: export the input note, unchanged, to the instance whose
-- ID starts extradata ("<destination> <state key>").
return {}, { { to = string.sub(extradata, 1, 64), note = inputs[1] } }
LUA
# send moves the single GOLD note on instance $1 to instance $2 (ID $3).
send() {
  key="$("$bin" --home "$1" notes --pattern "*/$token/$sig/*" | awk '$2 ~ /^[0-9a-f,]*\//{print $2; exit}')"
  cat > send.json <<JSON
{"nonce": 1, "gas_limit": 1000000, "read": ["$key"], "write": ["$key"],
 "lookup_file": "lookup.lua", "calculation_file": "export.lua", "extradata_text": "$3 $key"}
JSON
  "$bin" --home "$1" tx submit send.json --key alice.key >/dev/null
  "$bin" --home "$1" exports --to "$3" | sed 's/^/  /'
  "$bin" relay --from "$1" --to "$2"
}

step "Alice mints 100 GOLD on a"
cp "$root/examples/token/mint.lua" .
cat > mint.json <<JSON
{"nonce": 1, "gas_limit": 1000000, "read": [], "write": ["/$token/$sig/*"],
 "calculation_file": "mint.lua", "extradata_text": "$token $sig $alice GOLD 100"}
JSON
"$bin" --home a tx submit mint.json --key alice.key >/dev/null
provenance a

step "a → b"
send a b "$idb"
provenance b

step "b → c"
send b c "$idc"
provenance c

step "Relaying again moves nothing"
"$bin" relay --from a --to b
"$bin" relay --from b --to c
