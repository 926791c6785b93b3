#!/usr/bin/env bash
# make demo: a fresh Fractal instance in a temporary folder where two parties,
# Alice and Bob, mint, transfer and escrow tokens with the token, sig and
# escrow predicates of examples/, ending with the live notes. The instance
# charges fees in Alice's GOLD (decision 140) with a minimum gas price of 1,
# sets each gas limit from a simulation (--gas auto) and mints its producer a
# block reward (decision 143); the end shows the fees and rewards it earned.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin/fractal"
[ -x "$bin" ] || { echo "demo: $bin is missing; run make build" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

f() { "$bin" --home "$work/instance" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "Two parties, and an instance charging fees in Alice's GOLD"
"$bin" keys gen --out alice.key >/dev/null
"$bin" keys gen --out bob.key >/dev/null
alice="$("$bin" keys show alice.key)"
bob="$("$bin" keys show bob.key)"
echo "alice $alice"
echo "bob   $bob"
f init --fee-app "$root/examples/token/token.lua" --fee-owner "$root/examples/sig/sig.lua" --fee-token "$alice:GOLD" \
  --reward-app "$root/examples/reward/reward.lua" --reward-owner "$root/examples/sig/sig.lua" --reward 5 | tee init.out
executor="$(awk '$1 == "executor" {print $3}' init.out)"

step "Deploy the predicates"
token="$(f code deploy "$root/examples/token/token.lua")"
sig="$(f code deploy "$root/examples/sig/sig.lua")"
escrow="$(f code deploy "$root/examples/escrow/escrow.lua")"
reward="$(f code deploy "$root/examples/reward/reward.lua")"
echo "token  $token"
echo "sig    $sig"
echo "escrow $escrow"
cp "$root/examples/token/mint.lua" "$root/examples/token/lookup.lua" \
   "$root/examples/token/transfer.lua" "$root/examples/escrow/release.lua" .
tokens="/$token/$sig/*"     # token notes owned by a key (sig)
escrows="/$token/$escrow/*" # token notes held in escrow

# created prints the state key of the N-th note a receipt created; change
# the fee's change note, which pays the payer's next fee.
created() { awk '$1 == "created" {print $3}' "$1" | sed -n "${2}p"; }
change() { awk '$1 == "change" {print $3}' "$1"; }

step "Alice mints fee money: 1000000 GOLD each for herself and Bob (no fee yet: the minimum is 0)"
for who in alice bob; do
  cat > "fund-$who.json" <<EOF
{"nonce": 1, "gas_limit": 1000000, "read": [], "write": ["$tokens"],
 "calculation_file": "mint.lua", "extradata_text": "$token $sig ${!who} GOLD 1000000"}
EOF
  f tx submit "fund-$who.json" --key alice.key > "fund-$who.out"
done
alicefee="$(created fund-alice.out 1)"
bobfee="$(created fund-bob.out 1)"
echo "alice's fee note $alicefee"
echo "bob's fee note   $bobfee"

step "The operator raises min_gas_price to 1: from now on every transaction pays"
sed -i 's/"min_gas_price": 0/"min_gas_price": 1/' "$work/instance/config.json"
grep min_gas_price "$work/instance/config.json"
sed 's/"nonce": 1/"nonce": 9/' fund-alice.json > nofee.json
if f tx submit nofee.json --key alice.key 2>refused.err; then
  echo "demo: a transaction without a fee was accepted" >&2; exit 1
fi
echo "a transaction offering no fee is now refused, and nothing is queued:"
sed 's/^/  /' refused.err

step "Alice, the issuer, mints 100 GOLD to herself"
cat > mint.json <<EOF
{"nonce": 1, "gas_limit": 1000000, "fee_note": "$alicefee", "gas_price": 1, "read": [], "write": ["$tokens"],
 "calculation_file": "mint.lua", "extradata_text": "$token $sig $alice GOLD 100"}
EOF
f tx simulate mint.json --key alice.key
f tx submit mint.json --key alice.key --gas auto | tee mint.out
minted="$(created mint.out 1)"
alicefee="$(change mint.out)"

step "Alice sends 30 GOLD to Bob (70 come back as change)"
cat > transfer.json <<EOF
{"nonce": 2, "gas_limit": 1000000, "fee_note": "$alicefee", "gas_price": 1, "read": ["$tokens"], "write": ["$tokens"],
 "lookup_file": "lookup.lua", "calculation_file": "transfer.lua",
 "extradata_text": "$bob 30 $minted"}
EOF
f tx submit transfer.json --key alice.key --gas auto | tee transfer.out
bobs="$(created transfer.out 1)"
alicefee="$(change transfer.out)"

step "Bob tries to spend Alice's change: refused in validity; only his fee moves"
cat > steal.json <<EOF
{"nonce": 3, "gas_limit": 1000000, "fee_note": "$bobfee", "gas_price": 1, "read": ["$tokens"], "write": ["$tokens"],
 "lookup_file": "lookup.lua", "calculation_file": "transfer.lua",
 "extradata_text": "$bob 70 $(created transfer.out 2)"}
EOF
if f tx submit steal.json --key bob.key --gas 100000 > steal.out; then
  cat steal.out; echo "demo: the theft was accepted" >&2; exit 1
fi
cat steal.out
bobfee="$(change steal.out)"

step "Bob puts 10 GOLD in escrow for Alice, released by a secret"
secret="open sesame"
lock="$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)"
cat > lock.lua <<'EOF'
-- Calculation code: move <amount> of the input token note into an escrow note
-- for <payee> (key format of examples/escrow/escrow.lua), change to the signer.
-- extradata: "<input state key> <escrow> <payee> <lock> <payout> <amount>"
local _, escrow, payee, lock, payout, amount =
  string.match(extradata, "^([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*)$")
if not escrow then
  error("extradata is not '<input> <escrow> <payee> <lock> <payout> <amount>'", 0)
end
amount = tonumber(amount)
local n = inputs[1]
local issuer, symbol, total = string.match(n.value, "^([^:]*):([^:]*):([^:]*)")
total = tonumber(total)
local tag = string.sub(txid, 1, 16)
local out = { {
  application = n.application, owner = escrow,
  key = "escrow:" .. signers[1] .. ":" .. payee .. ":" .. lock .. ":" .. payout .. ":" .. tag,
  value = issuer .. ":" .. symbol .. ":" .. amount,
} }
if total > amount then
  out[2] = {
    application = n.application, owner = n.owner,
    key = signers[1] .. ":" .. tag .. ":2", value = issuer .. ":" .. symbol .. ":" .. (total - amount),
  }
end
return out
EOF
cat > lock.json <<EOF
{"nonce": 4, "gas_limit": 1000000, "fee_note": "$bobfee", "gas_price": 1, "read": ["$tokens"], "write": ["$tokens", "$escrows"],
 "lookup": "return {string.sub(extradata, 1, string.find(extradata, ' ', 1, true) - 1)}",
 "calculation_file": "lock.lua",
 "extradata_text": "$bobs $escrow $alice $lock $sig 10"}
EOF
f tx submit lock.json --key bob.key --gas auto

step "Alice reveals the secret and takes the escrowed GOLD"
cat > release.json <<EOF
{"nonce": 5, "gas_limit": 1000000, "fee_note": "$alicefee", "gas_price": 1, "read": ["$escrows"], "write": ["$escrows", "$tokens"],
 "lookup": "return scan('$escrows')", "calculation_file": "release.lua",
 "extradata_text": "$secret"}
EOF
f tx submit release.json --key alice.key --gas auto

step "The chain"
f block

step "Final notes"
f notes

step "What the producer earned: the fees (GOLD) and a reward of 5 per block"
f notes --pattern "/$token/$sig/$(printf '%s:' "$executor" | od -An -tx1 | tr -d ' \n')*" |
  awk -F'GOLD:' '/GOLD:/ {split($2, a, "\""); n++; s += a[1]} END {print "fees: " n " payments, " s " GOLD"}'
f notes --pattern "/$reward/$sig/$(printf '%s:reward:' "$executor" | od -An -tx1 | tr -d ' \n')*" |
  awk '/^    key / {n++; split($0, a, "\""); s += a[4]} END {print "rewards: " n " blocks, " s " in all"}'

step "verify replays every block, fees and rewards included"
f verify

step "Cross-instance transfer (examples/demo-relay.sh)"
"$root/examples/demo-relay.sh"
