package vp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	lua "github.com/yuin/gopher-lua"

	"github.com/fractalvm/fractal/keys"
)

// What the crypto functions cost besides 1 per started 32 bytes they read:
// an XEdDSA verification takes about 60 µs, an HMAC two hashes and their
// set-up.
const (
	VerifyGas = 1000
	digestGas = 4
	hmacGas   = 16
)

// cryptoLib is the crypto library: digests and MACs return raw bytes.
//
//	crypto.digest('sha256', s)       SHA-256 of s (32 bytes)
//	crypto.hmac('sha256', key, s)    HMAC-SHA-256 of s under key (32 bytes)
//	crypto.base64e(s), base64d(s)    standard base64 with padding
//	crypto.verify(pub_b64, msg, sig) true when sig is pub's XEdDSA signature of msg
func (v *vm) cryptoLib() map[string]lua.LValue {
	L := v.L
	alg := func(L *lua.LState) {
		if L.CheckString(1) != "sha256" {
			L.ArgError(1, "unsupported algorithm (only 'sha256')")
		}
	}
	fn := func(f lua.LGFunction) lua.LValue { return L.NewFunction(f) }
	return map[string]lua.LValue{
		"digest": fn(func(L *lua.LState) int {
			alg(L)
			s := L.CheckString(2)
			v.charge(digestGas + uint64(len(s))/32)
			v.built(sha256.Size)
			sum := sha256.Sum256([]byte(s))
			L.Push(lua.LString(sum[:]))
			return 1
		}),
		"hmac": fn(func(L *lua.LState) int {
			alg(L)
			key, s := L.CheckString(2), L.CheckString(3)
			v.charge(hmacGas + uint64(len(key)+len(s))/32)
			v.built(sha256.Size)
			m := hmac.New(sha256.New, []byte(key))
			m.Write([]byte(s))
			L.Push(lua.LString(m.Sum(nil)))
			return 1
		}),
		"base64e": fn(func(L *lua.LState) int {
			s := L.CheckString(1)
			v.charge(1)
			v.built(base64.StdEncoding.EncodedLen(len(s)))
			L.Push(lua.LString(base64.StdEncoding.EncodeToString([]byte(s))))
			return 1
		}),
		"base64d": fn(func(L *lua.LState) int {
			s := L.CheckString(1)
			v.charge(1)
			v.built(base64.StdEncoding.DecodedLen(len(s)))
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				L.RaiseError("base64d: %s", err.Error())
			}
			L.Push(lua.LString(b))
			return 1
		}),
		"verify": fn(func(L *lua.LState) int {
			pub, msg, sig := L.CheckString(1), L.CheckString(2), L.CheckString(3)
			v.charge(VerifyGas + uint64(len(msg))/32)
			pk, err := keys.ParsePublicKey(pub)
			L.Push(lua.LBool(err == nil && keys.Verify(pk, []byte(msg), []byte(sig)) == nil))
			return 1
		}),
	}
}
