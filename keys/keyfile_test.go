package keys

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeyFileSeedKeys(t *testing.T) {
	for i, name := range []string{"seed_key_1.key", "seed_key_2_crlf_comment.key", "seed_key_3_no_newline.key"} {
		k, err := LoadKeyFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := k.Public().String(); got != seedPairs[i].pub {
			t.Errorf("%s: public key %s, want %s", name, got, seedPairs[i].pub)
		}
	}
}

func TestLoadKeyFileRefusals(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"fail_empty.key", "first line is empty"},
		{"fail_first_line_empty.key", "first line is empty"},
		{"fail_no_padding.key", "private key: 43 base64 characters, want 44 (32 bytes)"},
		{"fail_url_alphabet.key", "private key: not standard base64: illegal base64 data at input byte 14"},
		{"fail_short_31_bytes.key", "private key: 31 bytes, want 32"},
		{"fail_long_34_bytes.key", "private key: 48 base64 characters, want 44 (32 bytes)"},
		{"fail_too_large.key", "fail_too_large.key: too large: 5001 bytes, the limit is 4096"},
		{"does_not_exist.key", "no such file or directory"},
	} {
		path := filepath.Join("testdata", tc.file)
		_, err := LoadKeyFile(path)
		if err == nil || !strings.HasPrefix(err.Error(), "keys: key file") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
}

func TestWriteKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alice.key")
	k, _ := ParsePrivateKey(seedPairs[1].priv)
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if string(data) != seedPairs[1].priv+"\n" {
		t.Fatalf("file holds %q", data)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	back, err := LoadKeyFile(path)
	if err != nil || back != k {
		t.Fatalf("LoadKeyFile = %v, %v", back, err)
	}

	other, _ := ParsePrivateKey(seedPairs[2].priv)
	err = WriteKeyFile(path, other)
	if err == nil || err.Error() != "keys: key file "+path+" already exists; refusing to overwrite it" {
		t.Fatalf("overwrite: err = %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatalf("refused overwrite changed the file: %q", after)
	}

	err = WriteKeyFile(filepath.Join(dir, "missing", "k.key"), k)
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("missing folder: err = %v", err)
	}
}
