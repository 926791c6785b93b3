package keys

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/fractalvm/fractal/internal/inputfile"
)

// maxKeyFile bounds how much of a key file is read: the key is one 44-byte
// line, anything far longer is not a key file.
const maxKeyFile = 4096

// LoadKeyFile reads a key file: a text file whose first line is the
// standard-base64 private key (surrounding spaces and a CR are ignored; later
// lines are free for comments).
func LoadKeyFile(path string) (PrivateKey, error) {
	data, err := inputfile.Read(path, maxKeyFile)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("keys: key file %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return PrivateKey{}, fmt.Errorf("keys: key file %s: first line is empty", path)
	}
	var k PrivateKey
	if err := decodeFixed("private key", string(line), k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("keys: key file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k to a new key file at path with mode 0600. It refuses
// to replace an existing file, and removes what it wrote if writing fails.
func WriteKeyFile(path string, k PrivateKey) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("keys: key file %s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("keys: key file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("keys: key file %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	// The umask can only narrow the mode; Chmod makes it exactly 0600.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("keys: key file %s: %w", path, err)
	}
	if _, err := f.WriteString(k.String() + "\n"); err != nil {
		return fmt.Errorf("keys: key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("keys: key file %s: %w", path, err)
	}
	return nil
}
