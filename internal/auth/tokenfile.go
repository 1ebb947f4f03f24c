package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidToken is reported when a request presents a bearer token that
// no token authenticator knows.
var ErrInvalidToken = errors.New("invalid bearer token")

// DefaultTokenFileCheckInterval is how often, at most, a TokenFile looks
// at its file for changes.
const DefaultTokenFileCheckInterval = time.Second

// tokenEntry holds the SHA-256 of a token, never the token itself, so that
// comparing digests in constant time hides which bytes matched.
type tokenEntry struct {
	digest [sha256.Size]byte
	user   User
}

// tokenTable maps tokens to users by scanning every entry with a
// constant-time comparison, so the time taken does not depend on how much
// of a token is right, nor on which entry matches. Static token files are
// small, so the linear scan costs nothing worth measuring.
type tokenTable []tokenEntry

func (t tokenTable) lookup(token string) (*User, bool) {
	d := sha256.Sum256([]byte(token))
	match := -1
	for i := range t {
		if subtle.ConstantTimeCompare(d[:], t[i].digest[:]) == 1 {
			match = i // the last match wins, as a later CSV line overrides an earlier one
		}
	}
	if match < 0 {
		return nil, false
	}
	return t[match].user.clone(), true
}

func (u *User) clone() *User {
	c := &User{Name: u.Name, UID: u.UID, Groups: slices.Clone(u.Groups)}
	if u.Extra != nil {
		c.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			c.Extra[k] = slices.Clone(v)
		}
	}
	return c
}

// parseTokenCSV reads kube-apiserver's static token file format: one record
// per line, "token,user,uid" optionally followed by a fourth column of
// comma-separated groups (quoted, as CSV requires). Blank lines are skipped,
// as are records with an empty token. Further columns are ignored.
func parseTokenCSV(data []byte) (tokenTable, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var table tokenTable
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return table, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		if len(rec) < 3 {
			return nil, fmt.Errorf("line %d: need at least 3 columns (token, user name, user uid), found %d", line, len(rec))
		}
		if rec[0] == "" {
			continue
		}
		if rec[1] == "" {
			return nil, fmt.Errorf("line %d: empty user name", line)
		}
		u := User{Name: rec[1], UID: rec[2]}
		if len(rec) >= 4 {
			for g := range strings.SplitSeq(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					u.Groups = append(u.Groups, g)
				}
			}
		}
		table = append(table, tokenEntry{digest: sha256.Sum256([]byte(rec[0])), user: u})
	}
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header. present reports whether there was such a header at all.
func bearerToken(r *http.Request) (token string, present bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// TokenFile authenticates bearer tokens listed in a CSV file in
// kube-apiserver's --token-auth-file format:
//
//	token,user,uid,"group1,group2"
//
// The file is looked at again, at most once per check interval, when a
// request arrives, and reloaded if it was replaced or modified. A reload
// that fails (file removed or malformed) keeps the previous tokens and is
// logged; editing the file is therefore not a way to lock everyone out by
// accident, and removing it does not revoke tokens until a restart.
type TokenFile struct {
	path     string
	interval time.Duration

	table     atomic.Pointer[tokenTable]
	nextCheck atomic.Int64 // unix nanoseconds

	mu   sync.Mutex // serialises checks; guards info
	info os.FileInfo
}

// NewTokenFile loads the token file at path, which must exist and parse,
// and checks it for changes at most every DefaultTokenFileCheckInterval.
func NewTokenFile(path string) (*TokenFile, error) {
	return NewTokenFileWithInterval(path, DefaultTokenFileCheckInterval)
}

// NewTokenFileWithInterval is NewTokenFile with a given check interval;
// zero checks on every request, a negative interval never checks.
func NewTokenFileWithInterval(path string, interval time.Duration) (*TokenFile, error) {
	t := &TokenFile{path: path, interval: interval}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if err := t.load(info); err != nil {
		return nil, err
	}
	t.nextCheck.Store(time.Now().Add(interval).UnixNano())
	return t, nil
}

func (t *TokenFile) load(info os.FileInfo) error {
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	table, err := parseTokenCSV(data)
	if err != nil {
		return fmt.Errorf("token file %s: %w", t.path, err)
	}
	t.table.Store(&table)
	t.info = info
	return nil
}

// Reload rereads the file now if it changed since it was last examined
// (by Reload or by the periodic check). On error the previous tokens stay in
// force; the error is reported once per change of the file.
func (t *TokenFile) Reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if t.info != nil && os.SameFile(info, t.info) && info.ModTime().Equal(t.info.ModTime()) && info.Size() == t.info.Size() {
		return nil
	}
	// Remember what was seen even if it does not parse, so that a broken
	// file is reported once, not on every check.
	t.info = info
	return t.load(info)
}

func (t *TokenFile) maybeReload() {
	if t.interval < 0 {
		return
	}
	now := time.Now().UnixNano()
	next := t.nextCheck.Load()
	if now < next || !t.nextCheck.CompareAndSwap(next, now+int64(t.interval)) {
		return // not due, or another request is doing it
	}
	if err := t.Reload(); err != nil {
		slog.Warn("auth: keeping previous tokens", "err", err)
	}
}

// Authenticate implements Authenticator.
func (t *TokenFile) Authenticate(r *http.Request) (*User, bool, error) {
	token, present := bearerToken(r)
	if !present {
		return nil, false, nil
	}
	if token == "" {
		return nil, false, ErrInvalidToken
	}
	t.maybeReload()
	u, ok := t.table.Load().lookup(token)
	if !ok {
		return nil, false, ErrInvalidToken
	}
	return withAuthenticatedGroup(u), true, nil
}
