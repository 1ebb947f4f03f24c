package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/havre/havre/internal/storage"
)

// On-disk layout. All state lives in one bbolt file, in four buckets:
//
//	meta: "version" -> format version; "rev" -> current revision;
//	      "compacted" -> compacted revision (all as 8-byte big-endian).
//	kv:   key -> kvRecord: the current value of every live key. Lists at the
//	      current revision and Gets read only this bucket.
//	hist: histKey(key, rev) -> histRecord: every retained version of every
//	      key, tombstones included, ordered by key then revision. Lists at an
//	      older revision and the PrevKV of replayed events come from here.
//	log:  revKey(rev) -> key: which key each revision changed, in revision
//	      order. Watch replay walks it; compaction consumes it.
var (
	bucketMeta = []byte("meta")
	bucketKV   = []byte("kv")
	bucketHist = []byte("hist")
	bucketLog  = []byte("log")

	metaVersion   = []byte("version")
	metaRev       = []byte("rev")
	metaCompacted = []byte("compacted")
)

// formatVersion is bumped whenever the layout above changes incompatibly.
const formatVersion = 1

const (
	// maxKeyLen keeps every derived bbolt key (escaped key + 10 bytes) within
	// bbolt's key limit even if every byte needs escaping.
	maxKeyLen = (bbolt.MaxKeySize - histSuffix) / 2
	// kvHeader is create(8) + mod(8).
	kvHeader = 16
	// histHeader is type(1) + create(8).
	histHeader = 9
	// histSuffix is the terminator (2) + revision (8) after an escaped key.
	histSuffix = 10
)

// errCorrupt reports a record that cannot be decoded.
var errCorrupt = errors.New("bolt: corrupt record")

func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("bolt: empty key")
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("bolt: key of %d bytes exceeds the %d byte limit", len(key), maxKeyLen)
	}
	return nil
}

// shortKey abbreviates a key for error messages.
func shortKey(key string) string {
	if len(key) > 64 {
		return key[:64] + "..."
	}
	return key
}

func revKey(rev int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(rev))
}

func decodeRev(b []byte) int64 {
	if len(b) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// encodeKV returns create(8) mod(8) value in a fresh buffer; the value part
// of the buffer can be handed out after the transaction commits.
func encodeKV(create, mod int64, value []byte) []byte {
	b := make([]byte, kvHeader+len(value))
	binary.BigEndian.PutUint64(b[0:], uint64(create))
	binary.BigEndian.PutUint64(b[8:], uint64(mod))
	copy(b[kvHeader:], value)
	return b
}

// decodeKV decodes a kv record; value aliases b.
func decodeKV(b []byte) (create, mod int64, value []byte, err error) {
	if len(b) < kvHeader {
		return 0, 0, nil, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(b[0:])), int64(binary.BigEndian.Uint64(b[8:])), b[kvHeader:], nil
}

// encodeHist returns type(1) create(8) value. Tombstones carry no value: the
// last value of a deleted key is the version before the tombstone.
func encodeHist(typ storage.EventType, create int64, value []byte) []byte {
	b := make([]byte, histHeader+len(value))
	b[0] = byte(typ)
	binary.BigEndian.PutUint64(b[1:], uint64(create))
	copy(b[histHeader:], value)
	return b
}

// decodeHist decodes a hist record; value aliases b.
func decodeHist(b []byte) (typ storage.EventType, create int64, value []byte, err error) {
	if len(b) < histHeader {
		return 0, 0, nil, errCorrupt
	}
	typ = storage.EventType(b[0])
	if typ != storage.Created && typ != storage.Updated && typ != storage.Deleted {
		return 0, 0, nil, errCorrupt
	}
	return typ, int64(binary.BigEndian.Uint64(b[1:])), b[histHeader:], nil
}

// History keys must sort by (key, revision) with keys in byte-wise order,
// although keys are arbitrary bytes of any length. The key is escaped
// (0x00 -> 0x00 0xFF), then terminated with 0x00 0x01, then followed by the
// big-endian revision. The terminator sorts below every escaped byte, so a
// key sorts before all longer keys it prefixes, and escaping is a prefix
// code, so escape(p) prefixes escape(k) exactly when p prefixes k: a raw
// byte prefix scan over keys is a byte prefix scan over escaped keys.

// appendEscaped appends the escaped form of key to dst.
func appendEscaped(dst []byte, key string) []byte {
	if strings.IndexByte(key, 0) < 0 {
		return append(dst, key...)
	}
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, key[i])
		}
	}
	return dst
}

// unescape inverts appendEscaped.
func unescape(esc []byte) string {
	var n int
	for _, c := range esc {
		if c == 0 {
			n++
		}
	}
	if n == 0 {
		return string(esc)
	}
	b := make([]byte, 0, len(esc)-n)
	for i := 0; i < len(esc); i++ {
		b = append(b, esc[i])
		if esc[i] == 0 {
			i++ // skip the 0xFF
		}
	}
	return string(b)
}

// histKeyPrefix returns escape(key) + terminator: the common prefix of every
// version of key and of no other key.
func histKeyPrefix(key string) []byte {
	b := make([]byte, 0, len(key)+histSuffix)
	b = appendEscaped(b, key)
	return append(b, 0, 1)
}

func histKey(key string, rev int64) []byte {
	return binary.BigEndian.AppendUint64(histKeyPrefix(key), uint64(rev))
}

// splitHistKey returns the escaped key and the revision of a history key.
func splitHistKey(hk []byte) (esc []byte, rev int64, ok bool) {
	n := len(hk) - histSuffix
	if n < 0 || hk[n] != 0 || hk[n+1] != 1 {
		return nil, 0, false
	}
	return hk[:n], int64(binary.BigEndian.Uint64(hk[n+2:])), true
}
