package keys

import (
	"bytes"
	"strings"
	"testing"
)

// seedPairs are the Smart Lua seed's example keys
// (/work/shared/seeds/000_e359555315c57628.txt): private key i and the i-th
// entry of its balances table.
var seedPairs = []struct{ priv, pub string }{
	{"2KgXomoYNRdlBq+CPZcw+mze5UDUp/iCVDBuDIRLym0=", "HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE="},
	{"cHute+Qu7HqkIbCqy0FdlHnhU+RRg6vtnlAFdgyZbVw=", "Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw="},
	{"oC6x+LFZdNsBpwsKEn6SSoGDrIaMpZ9HD1MKQ0ogqWg=", "ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM="},
}

func TestSeedKeysYieldSeedPublicKeys(t *testing.T) {
	for i, p := range seedPairs {
		k, err := ParsePrivateKey(p.priv)
		if err != nil {
			t.Fatalf("key %d: %v", i+1, err)
		}
		if got := k.Public().String(); got != p.pub {
			t.Errorf("key %d: public key %s, want %s", i+1, got, p.pub)
		}
		if got := k.String(); got != p.priv {
			t.Errorf("key %d: String() = %s, want %s", i+1, got, p.priv)
		}
		pub, err := ParsePublicKey(p.pub)
		if err != nil || pub != k.Public() {
			t.Errorf("key %d: ParsePublicKey = %v, %v", i+1, pub, err)
		}
	}
}

func TestGenerateKeyClampsAndReadsRand(t *testing.T) {
	k, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{0xFF}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0xFF}, 32)
	want[0], want[31] = 0xF8, 0x7F
	if !bytes.Equal(k[:], want) {
		t.Fatalf("GenerateKey = %x, want clamped %x", k, want)
	}
	_, err = GenerateKey(bytes.NewReader(make([]byte, 31)))
	if err == nil || !strings.Contains(err.Error(), "keys: generate: unexpected EOF") {
		t.Fatalf("short rand: err = %v", err)
	}
}

func TestParseRefusals(t *testing.T) {
	good := seedPairs[0].pub
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "public key: 0 base64 characters, want 44 (32 bytes)"},
		{"no padding", strings.TrimSuffix(good, "="), "43 base64 characters, want 44"},
		{"31 bytes", "HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpA==", "public key: 31 bytes, want 32"},
		{"33 bytes", good[:43] + "AAAA", "47 base64 characters"},
		{"url alphabet", "HbaGF7h9gqcVvwq-l219m7trwOIk44wuDZpQDSclpCE=", "not standard base64: illegal base64 data at input byte 15"},
		{"nonzero trailing bits", good[:42] + "F=", "not standard base64"},
		{"whitespace", " " + good[:43], "not standard base64"},
		{"44 characters without padding", strings.Repeat("A", 44), "public key: 33 bytes, want 32"},
	} {
		_, err := ParsePublicKey(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	_, err := ParsePrivateKey(seedPairs[0].priv[:40] + "!!!=")
	if err == nil || !strings.HasPrefix(err.Error(), "keys: private key: not standard base64") {
		t.Errorf("private key: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), seedPairs[0].priv[:40]) {
		t.Errorf("private key error repeats the secret: %v", err)
	}
}

func TestSignatureText(t *testing.T) {
	sig := bytes.Repeat([]byte{7}, SignatureSize)
	got, err := ParseSignature(FormatSignature(sig))
	if err != nil || !bytes.Equal(got, sig) {
		t.Fatalf("round trip: %x, %v", got, err)
	}
	_, err = ParseSignature(FormatSignature(sig[:63]))
	if err == nil || err.Error() != "keys: signature: 84 base64 characters, want 88 (64 bytes)" {
		t.Fatalf("63 bytes: err = %v", err)
	}
}
