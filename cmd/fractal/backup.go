package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/keys"
)

// Backup and restore of an instance (docs/cli/backup.md).
func init() {
	rootCmd.AddCommand(backupCmd, restoreCmd)
	backupCmd.Flags().String("out", "", "backup file to create (required; refused if it exists)")
	backupCmd.Flags().Bool("with-key", false, "also store the executor's private key in the backup")
	restoreCmd.Flags().String("key", "", "the instance's executor key file (needed when the backup holds no key)")
	restoreCmd.Flags().String("guard", "", "guard.json of the instance being replaced: refuse a backup older than what it signed")
}

// backupJSON is what backup and restore print with --json.
type backupJSON struct {
	File     string `json:"file"`
	Home     string `json:"home,omitempty"`
	Instance string `json:"instance"`
	Height   uint64 `json:"height"`
	Hash     string `json:"hash"`
	WithKey  bool   `json:"with_key"`
}

func toBackupJSON(file, home string, b *fractal.BackupInfo) backupJSON {
	return backupJSON{File: file, Home: home, Instance: hex.EncodeToString(b.Instance[:]),
		Height: b.Head.Height, Hash: hex.EncodeToString(b.Head.Hash[:]), WithKey: b.WithKey}
}

var backupCmd = &cobra.Command{
	Use:   "backup --out FILE [--with-key]",
	Short: "Write a consistent copy of the instance to a backup file",
	Long: `backup writes a consistent copy of the instance in --home to FILE (a new
file, mode 0600): config.json and the whole store, through badger's own
backup stream, with a SHA-256 over the file that restore checks. Writers
wait while it runs. The executor's private key is left out unless
--with-key is given: keep it apart, as its own secret. The guard
(guard.json) is left out too: it belongs to the folder that signed, and
restore takes it from there (--guard). "fractal restore" turns the file
back into an instance.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		out, _ := cmd.Flags().GetString("out")
		if out == "" {
			return errors.New("backup: --out FILE is required")
		}
		withKey, _ := cmd.Flags().GetBool("with-key")
		return withInstance(func(in *fractal.Instance) error {
			var info *fractal.BackupInfo
			err := writeNewWith(out, func(w io.Writer) (err error) {
				if bar := stderrBar(-1, "backup"); bar != nil {
					defer bar.Finish()
					w = io.MultiWriter(w, bar)
				}
				info, err = in.Backup(w, withKey)
				return err
			})
			if err != nil {
				return err
			}
			return emit(cmd, toBackupJSON(out, "", info), func(w io.Writer) {
				fmt.Fprintf(w, "backed up instance %x at block %d (%x) to %s\n", info.Instance, info.Head.Height, info.Head.Hash, out)
				if info.WithKey {
					fmt.Fprintln(w, "the backup holds the executor's private key: keep it as secret as executor.key")
				} else {
					fmt.Fprintln(w, "the executor key is not in the backup: restore needs --key")
				}
			})
		})
	}),
}

var restoreCmd = &cobra.Command{
	Use:   "restore FILE --home DIR [--key KEYFILE] [--guard GUARDFILE]",
	Short: "Make an instance from a backup file",
	Long: `restore checks the backup FILE's SHA-256 and turns it into an instance in
--home, which must not hold one (nothing there is overwritten). The
executor key comes from the backup (backup --with-key) or from --key.
--guard names the guard.json of the instance being replaced: it is kept,
so a backup older than the last block that instance signed is refused
("committed blocks are missing"), and sealing on a restored copy can never
sign a second block at a height already signed. Without --guard the guard
starts at the backup's last block. The restored instance is opened and
checked before restore reports success; on failure nothing is left
behind. See docs/cli/backup.md for recovering an instance whose store is
behind its guard.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		var key *keys.PrivateKey
		if path, _ := cmd.Flags().GetString("key"); path != "" {
			k, err := keys.LoadKeyFile(path)
			if err != nil {
				return err
			}
			key = &k
		}
		guardPath, _ := cmd.Flags().GetString("guard")
		info, err := fractal.Restore(args[0], flagHome, key, guardPath)
		if err != nil {
			return err
		}
		return emit(cmd, toBackupJSON(args[0], flagHome, info), func(w io.Writer) {
			fmt.Fprintf(w, "restored instance %x at block %d (%x) into %s\n", info.Instance, info.Head.Height, info.Head.Hash, flagHome)
			if guardPath == "" {
				fmt.Fprintf(w, "guard started at block %d: no --guard was given, so blocks this executor signed after the backup are not known here\n", info.Head.Height)
			}
		})
	}),
}

// writeNewWith writes a file that must not exist yet through write: into a
// hidden temporary file beside it, synced, then linked to path, so that
// path is never left half-written and never replaces an existing file.
func writeNewWith(path string, write func(io.Writer) error) (err error) {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists; refusing to overwrite it", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		return err
	}
	return nil
}
