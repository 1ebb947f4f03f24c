package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/havre/havre/internal/pki"
)

// Files under <dataDir>/server/.
const (
	ServerDirName = "server"
	// JoinTokenFile holds the cluster join token alone, for operators to
	// hand to nodes.
	JoinTokenFile = "token"
	// StaticTokenFile is the static users' token file, in TokenFile's
	// format. EnsureServerTokens keeps the join token's record first and
	// preserves every other record, so operators may add users to it.
	StaticTokenFile = "tokens.csv"
)

// EnsureServerTokens creates on first start, and loads afterwards, the
// cluster join token in <dataDir>/server/token (random, mode 0600), and
// makes sure the static token file <dataDir>/server/tokens.csv (mode 0600)
// authenticates it as user JoinTokenUser in group GroupBootstrappers. It
// returns the join token and the path of the static token file, to be
// served with NewTokenFile. Both files are written atomically.
//
// A token file an operator wrote beforehand is used as is if it holds a
// usable token; an existing but unusable one is an error, never silently
// replaced, since nodes may already be configured with it.
func EnsureServerTokens(dataDir string) (joinToken, tokenFile string, err error) {
	if dataDir == "" {
		return "", "", errors.New("auth: empty data directory")
	}
	dir := filepath.Join(dataDir, ServerDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	joinToken, err = ensureJoinToken(filepath.Join(dir, JoinTokenFile))
	if err != nil {
		return "", "", fmt.Errorf("auth: join token: %w", err)
	}
	tokenFile = filepath.Join(dir, StaticTokenFile)
	if err := ensureJoinRecord(tokenFile, joinToken); err != nil {
		return "", "", fmt.Errorf("auth: %s: %w", tokenFile, err)
	}
	return joinToken, tokenFile, nil
}

func ensureJoinToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		token := hex.EncodeToString(b[:])
		if err := pki.WriteFileAtomic(path, []byte(token+"\n"), 0o600); err != nil {
			return "", err
		}
		return token, nil
	}
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if len(token) < 16 {
		return "", fmt.Errorf("%s holds a token shorter than 16 characters", path)
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' || r == ',' || r == '"' }) {
		return "", fmt.Errorf("%s holds a token with characters other than printable ASCII without spaces, commas or quotes", path)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return "", err
	}
	return token, nil
}

func ensureJoinRecord(path, token string) error {
	want := []string{token, JoinTokenUser, JoinTokenUser, GroupBootstrappers}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var records [][]string
	if len(data) > 0 {
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		r.TrimLeadingSpace = true
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err // an operator's file is never clobbered
			}
			records = append(records, rec)
		}
	}
	others := slices.DeleteFunc(slices.Clone(records), func(rec []string) bool {
		return len(rec) >= 2 && rec[1] == JoinTokenUser
	})
	if len(records) > 0 && slices.Equal(records[0], want) && len(others) == len(records)-1 {
		return os.Chmod(path, 0o600)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(append([][]string{want}, others...)); err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, buf.Bytes(), 0o600)
}
