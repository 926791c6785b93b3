#!/usr/bin/env bash
# make.sh FRACTAL OUT: seals the old-chain fixture with the fractal binary
# FRACTAL into OUT (which must not exist): two instance homes, a and b.
#
# a: token and sig deployed; Alice mints 100 and 50 GOLD (blocks 1, 2); she
# sends 30 to Bob (3); three transfers in one block, the third refused (4); an
# export of her 50 GOLD note to b (5); an encrypted transfer fixed into
# batch 1 and opened with 2 of 3 keyholders' shares (6); a shielded shield
# and a shielded transfer (7, 8). b: trusts a and imports the export (b's
# block 1).
#
# The homes in testdata/chain-v1 were made with fractal built at commit
# 68a6903 (before the block lifecycle became stages, issue 12, and after
# the gas schedule of decision 090, which changes every receipt's gas); zk/*/pk.bin
# was left out (verifying needs only the verifying key). TestOldChain checks
# that they verify and re-seal to the same blocks.
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
out="$2"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
mkdir "$out"
cd "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fa() { "$bin" --home "$out/a" "$@"; }
fb() { "$bin" --home "$out/b" "$@"; }
# created FILE N prints the state key of the N-th note a receipt created.
created() { awk '$1 == "created" {print $3}' "$1" | sed -n "${2}p"; }

fa init >/dev/null
fb init >/dev/null
# Fixed party keys, so the fixture's transactions are the same every run.
echo 'QItec74PfHcR/y0NqO1Crg9mLVZBXYpljgTe8VSXgXk=' > "$work/alice.key"
echo 'KIvEHucDrLLIVvXY4/h+L6WK+bMiBOVe1KqUzT4x21o=' > "$work/bob.key"
alice="$("$bin" keys show "$work/alice.key")"
bob="$("$bin" keys show "$work/bob.key")"
cp "$root/examples/token/"{mint,lookup,transfer}.lua "$work/"
for f in fa fb; do
  token="$($f code deploy "$root/examples/token/token.lua")"
  sig="$($f code deploy "$root/examples/sig/sig.lua")"
done
tokens="/$token/$sig/*"
cd "$work"

tx() { # tx HOME-FUNC NONCE READ LOOKUP CALC EXTRA: a transaction file
  local lookup=""
  [ -n "$4" ] && lookup="\"lookup_file\": \"$4\","
  printf '{"nonce": %s, "gas_limit": 1000000, "read": [%s], "write": ["%s"], %s "calculation_file": "%s", "extradata_text": "%s"}\n' \
    "$2" "$3" "$tokens" "$lookup" "$5" "$6" > "$1"
}

tx mint1.json 1 "" "" mint.lua "$token $sig $alice GOLD 100"
fa tx submit mint1.json --key alice.key | tee mint1.out
tx mint2.json 2 "" "" mint.lua "$token $sig $alice GOLD 50"
fa tx submit mint2.json --key alice.key | tee mint2.out
m100="$(created mint1.out 1)"
m50="$(created mint2.out 1)"

tx send.json 3 "\"$tokens\"" lookup.lua transfer.lua "$bob 30 $m100"
fa tx submit send.json --key alice.key | tee send.out
bob30="$(created send.out 1)"
change70="$(created send.out 2)"

# One block of three: Bob pays Alice 10, Alice pays Bob 5 of her 70, and
# Bob's attempt at the same 70 (refused: the second transfer spent it).
tx b1.json 4 "\"$tokens\"" lookup.lua transfer.lua "$alice 10 $bob30"
tx b2.json 5 "\"$tokens\"" lookup.lua transfer.lua "$bob 5 $change70"
tx b3.json 6 "\"$tokens\"" lookup.lua transfer.lua "$bob 70 $change70"
fa tx submit b1.json --key bob.key --no-seal
fa tx submit b2.json --key alice.key --no-seal
fa tx submit b3.json --key bob.key --no-seal
fa block seal | tee block4.out

# Export Alice's 50 GOLD note to b; b trusts a and relays it in.
cat > export.lua <<'LUA'
-- Send the input note, unchanged, to the destination.
return {}, { { to = string.sub(extradata, 1, 64), note = inputs[1] } }
LUA
cat > xlookup.lua <<'LUA'
-- extradata: "<destination ID> <state key>"
return { string.sub(extradata, 66) }
LUA
bid="$(fb peers self --json | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p')"
printf '{"nonce": 7, "gas_limit": 1000000, "read": ["%s"], "write": ["%s"], "lookup_file": "xlookup.lua", "calculation_file": "export.lua", "extradata_text": "%s %s"}\n' \
  "$m50" "$m50" "$bid" "$m50" > export.json
fa tx submit export.json --key alice.key
fb peers add --from "$out/a"
"$bin" relay --from "$out/a" --to "$out/b"

# The encrypted mempool: a 2-of-3 key, one encrypted transfer (Alice sends 1
# of her 10 from Bob to Bob), fixed into batch 1, opened by keyholders 1, 3.
a10="$(fa notes --pattern "$tokens" | awk -v v=":GOLD:10\"" 'NF == 2 { k = $2 } substr($0, length($0) - length(v) + 1) == v { print k; exit }')"
"$bin" --home "$out/a" tfhe setup --n 3 --k 2 --out keys >/dev/null
fa tfhe attach --key keys/public.key
tx enc.json 8 "\"$tokens\"" lookup.lua transfer.lua "$bob 1 $a10"
fa tx submit enc.json --key alice.key --encrypt
fa tfhe share --share keys/keyholder-1/share.key
fa tfhe share --share keys/keyholder-3/share.key

# The shielded pool: Alice shields 20 of her change into wallet wa, which
# sends 5 to wallet wb.
fa shielded setup --dev >/dev/null
fa shielded address --new --wallet wa >/dev/null
fa shielded address --new --wallet wb > wb.addr
fa shielded shield --key alice.key --app "$token" --token "$alice:GOLD" --amount 20 --wallet wa
fa shielded transfer --to @wb.addr --app "$token" --token "$alice:GOLD" --amount 5 --wallet wa

fa verify
fb verify
rm "$out/a/zk/transfer-2x2-v1/pk.bin"
