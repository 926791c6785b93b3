package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/keys"
)

func init() {
	keysGenCmd.Flags().String("out", "", "key file to create (required; refused if it exists)")
	keysCmd.AddCommand(keysGenCmd, keysShowCmd)
	rootCmd.AddCommand(keysCmd)
}

// keyJSON is what the keys verbs print with --json.
type keyJSON struct {
	PublicKey string `json:"public_key"`
	File      string `json:"file"`
}

var keysCmd = &cobra.Command{
	Use:   "keys",
	Short: "Create and inspect X25519 signing keys",
	Long: `keys creates and inspects key files. A key file is a text file whose first
line is a 32-byte X25519 private key in standard base64; the same key signs
with XEdDSA. Public keys are printed in standard base64, as Smart Lua and
transactions name signers.`,
}

var keysGenCmd = &cobra.Command{
	Use:   "gen --out FILE",
	Short: "Generate a new key file and print its public key",
	Long: `gen generates a new X25519 private key from the system's random source,
writes it to the key file given by --out (mode 0600), and prints the public
key. It refuses to overwrite an existing file, so a key cannot be lost by
mistake.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		out, _ := cmd.Flags().GetString("out")
		if out == "" {
			return errors.New("keys gen: --out FILE is required")
		}
		k, err := keys.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		if err := keys.WriteKeyFile(out, k); err != nil {
			return err
		}
		pub := k.Public().String()
		return emit(cmd, keyJSON{PublicKey: pub, File: out}, func(w io.Writer) {
			fmt.Fprintln(w, pub)
		})
	},
}

var keysShowCmd = &cobra.Command{
	Use:   "show FILE",
	Short: "Print the public key of a key file",
	Long: `show reads the key file FILE (first line: the standard-base64 private key)
and prints its public key. The private key is never printed.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		k, err := keys.LoadKeyFile(args[0])
		if err != nil {
			return err
		}
		pub := k.Public().String()
		return emit(cmd, keyJSON{PublicKey: pub, File: args[0]}, func(w io.Writer) {
			fmt.Fprintln(w, pub)
		})
	},
}
