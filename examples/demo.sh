#!/usr/bin/env bash
# make demo: a fresh Fractal instance in a temporary folder where two parties,
# Alice and Bob, mint, transfer and escrow tokens with the token, sig and
# escrow predicates of examples/, ending with the live notes.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin/fractal"
[ -x "$bin" ] || { echo "demo: $bin is missing; run make build" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

f() { "$bin" --home "$work/instance" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "A fresh instance and two parties"
f init
"$bin" keys gen --out alice.key >/dev/null
"$bin" keys gen --out bob.key >/dev/null
alice="$("$bin" keys show alice.key)"
bob="$("$bin" keys show bob.key)"
echo "alice $alice"
echo "bob   $bob"

step "Deploy the predicates"
token="$(f code deploy "$root/examples/token/token.lua")"
sig="$(f code deploy "$root/examples/sig/sig.lua")"
escrow="$(f code deploy "$root/examples/escrow/escrow.lua")"
echo "token  $token"
echo "sig    $sig"
echo "escrow $escrow"
cp "$root/examples/token/mint.lua" "$root/examples/token/lookup.lua" \
   "$root/examples/token/transfer.lua" "$root/examples/escrow/release.lua" .
tokens="/$token/$sig/*"     # token notes owned by a key (sig)
escrows="/$token/$escrow/*" # token notes held in escrow

# created prints the state key of the N-th note a receipt created.
created() { awk '$1 == "created" {print $3}' "$1" | sed -n "${2}p"; }

step "Alice, the issuer, mints 100 GOLD to herself"
cat > mint.json <<EOF
{"nonce": 1, "gas_limit": 1000000, "read": [], "write": ["$tokens"],
 "calculation_file": "mint.lua", "extradata_text": "$token $sig $alice GOLD 100"}
EOF
f tx submit mint.json --key alice.key | tee mint.out
minted="$(created mint.out 1)"

step "Alice sends 30 GOLD to Bob (70 come back as change)"
cat > transfer.json <<EOF
{"nonce": 2, "gas_limit": 1000000, "read": ["$tokens"], "write": ["$tokens"],
 "lookup_file": "lookup.lua", "calculation_file": "transfer.lua",
 "extradata_text": "$bob 30 $minted"}
EOF
f tx submit transfer.json --key alice.key | tee transfer.out
bobs="$(created transfer.out 1)"

step "Bob tries to spend Alice's change: refused, nothing changes"
cat > steal.json <<EOF
{"nonce": 3, "gas_limit": 1000000, "read": ["$tokens"], "write": ["$tokens"],
 "lookup_file": "lookup.lua", "calculation_file": "transfer.lua",
 "extradata_text": "$bob 70 $(created transfer.out 2)"}
EOF
if f tx submit steal.json --key bob.key; then
  echo "demo: the theft was accepted" >&2; exit 1
fi

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
{"nonce": 4, "gas_limit": 1000000, "read": ["$tokens"], "write": ["$tokens", "$escrows"],
 "lookup": "return {string.sub(extradata, 1, string.find(extradata, ' ', 1, true) - 1)}",
 "calculation_file": "lock.lua",
 "extradata_text": "$bobs $escrow $alice $lock $sig 10"}
EOF
f tx submit lock.json --key bob.key

step "Alice reveals the secret and takes the escrowed GOLD"
cat > release.json <<EOF
{"nonce": 5, "gas_limit": 1000000, "read": ["$escrows"], "write": ["$escrows", "$tokens"],
 "lookup": "return scan('$escrows')", "calculation_file": "release.lua",
 "extradata_text": "$secret"}
EOF
f tx submit release.json --key alice.key

step "The chain"
f block

step "Final notes"
f notes

step "Cross-instance transfer (examples/demo-relay.sh)"
"$root/examples/demo-relay.sh"
