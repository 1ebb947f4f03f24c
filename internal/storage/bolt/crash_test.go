package bolt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havre/havre/internal/storage"
)

// The crash test runs a child process (this test binary, re-executed) that
// writes to a store from several goroutines and prints one line per
// acknowledged write, kills it with SIGKILL at a random moment, reopens the
// store and checks that nothing acknowledged was lost and that the history
// is consistent. It repeats this on the same file, so every iteration also
// opens a store that was killed many times before.

const (
	crashChildEnv      = "HAVRE_CRASH_CHILD" // "path iteration compact": run as the child
	crashIterationsEnv = "HAVRE_CRASH_ITERATIONS"
	crashWriters       = 8
	crashHotKeys       = 4
)

// crashAck is one acknowledged write: "ACK key hash revision".
type crashAck struct {
	key  string
	hash uint64
	rev  int64
}

func valueHash(v []byte) uint64 {
	h := fnv.New64a()
	h.Write(v)
	return h.Sum64()
}

func TestCrash(t *testing.T) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		crashChild(spec) // never returns
	}
	iterations := 20
	if s := os.Getenv(crashIterationsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashIterationsEnv, s)
		}
		iterations = n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed>>1))
	path := filepath.Join(t.TempDir(), "havre.db")

	latest := map[string]crashAck{} // the highest acknowledged write per key
	byRev := map[int64]crashAck{}
	total := 0
	for i := range iterations {
		acks := runCrashChild(t, path, i, rnd)
		total += len(acks)
		for _, a := range acks {
			if prev, ok := byRev[a.rev]; ok {
				t.Fatalf("iteration %d: revision %d acknowledged twice: %+v and %+v", i, a.rev, prev, a)
			}
			byRev[a.rev] = a
			if a.rev > latest[a.key].rev {
				latest[a.key] = a
			}
		}
		verifyCrashedStore(t, path, i, latest, byRev, rnd)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d iterations, %d acknowledged writes", iterations, total)
}

// runCrashChild starts a child writing to path, waits for a random number of
// acknowledgements, kills it with SIGKILL after a random delay and returns
// every acknowledgement it printed.
func runCrashChild(t *testing.T, path string, iteration int, rnd *rand.Rand) []crashAck {
	t.Helper()
	compact := iteration%2 == 1
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %v", crashChildEnv, path, iteration, compact))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	var (
		mu   sync.Mutex
		cond = sync.NewCond(&mu)
		acks []crashAck
		eof  bool
		bad  error
	)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "ACK ") {
				continue
			}
			var a crashAck
			_, err := fmt.Sscanf(line, "ACK %s %x %d", &a.key, &a.hash, &a.rev)
			mu.Lock()
			if err != nil && bad == nil {
				bad = fmt.Errorf("bad line %q: %v", line, err)
			}
			acks = append(acks, a)
			cond.Broadcast()
			mu.Unlock()
		}
		mu.Lock()
		eof = true
		cond.Broadcast()
		mu.Unlock()
	}()

	// Wait for a random number of acknowledgements (or for the child to
	// die on its own, which is a failure).
	want := 1 + rnd.IntN(400)
	deadline := time.AfterFunc(time.Minute, func() {
		mu.Lock()
		bad = errors.New("timed out waiting for acknowledgements")
		cond.Broadcast()
		mu.Unlock()
	})
	mu.Lock()
	for len(acks) < want && !eof && bad == nil {
		cond.Wait()
	}
	early, failed := eof, bad
	mu.Unlock()
	deadline.Stop()
	if early || failed != nil {
		t.Fatalf("iteration %d: child stopped after %d of %d acknowledgements (%v); stderr:\n%s", iteration, len(acks), want, failed, stderr.String())
	}

	// The kill lands at a random point: mid-batch, mid-commit, mid-fsync.
	time.Sleep(time.Duration(rnd.IntN(3000)) * time.Microsecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = true
	// Acknowledgements printed before the kill are still in the pipe.
	mu.Lock()
	for !eof {
		cond.Wait()
	}
	mu.Unlock()
	_ = cmd.Wait()
	if bad != nil {
		t.Fatalf("iteration %d: %v", iteration, bad)
	}
	return acks
}

// verifyCrashedStore reopens the store and checks it against every write
// acknowledged so far.
func verifyCrashedStore(t *testing.T, path string, iteration int, latest map[string]crashAck, byRev map[int64]crashAck, rnd *rand.Rand) {
	t.Helper()
	ctx := t.Context()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("iteration %d: reopen after SIGKILL: %v", iteration, err)
	}
	defer s.Close()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("iteration %d: "+format, append([]any{iteration}, args...)...)
	}

	cur, compacted, err := s.Revision(ctx)
	if err != nil {
		fail("Revision: %v", err)
	}
	maxAck := int64(0)
	for rev := range byRev {
		maxAck = max(maxAck, rev)
	}
	if cur < maxAck {
		fail("revision %d after reopen, but revision %d was acknowledged", cur, maxAck)
	}

	// Every acknowledged write is there, or a later write of its key.
	type version struct {
		hash        uint64
		create, mod int64
	}
	toState := func(kvs []storage.KeyValue) map[string]version {
		st := make(map[string]version, len(kvs))
		for _, kv := range kvs {
			st[kv.Key] = version{valueHash(kv.Value), kv.CreateRevision, kv.ModRevision}
		}
		return st
	}
	now, err := s.List(ctx, "", storage.ListOptions{})
	if err != nil || now.Revision != cur {
		fail("List: %v (revision %d, want %d)", err, now.Revision, cur)
	}
	final := toState(now.KVs)
	for key, a := range latest {
		v, ok := final[key]
		switch {
		case !ok:
			fail("acknowledged write of %q at %d lost: key missing", key, a.rev)
		case v.mod < a.rev:
			fail("acknowledged write of %q at %d lost: key at %d", key, a.rev, v.mod)
		case v.mod == a.rev && v.hash != a.hash:
			fail("acknowledged write of %q at %d has a different value", key, a.rev)
		}
		if kv, err := s.Get(ctx, key); err != nil || kv.ModRevision != v.mod || valueHash(kv.Value) != v.hash {
			fail("Get(%q) = %d, %v; List says %d", key, kv.ModRevision, err, v.mod)
		}
	}
	if cur == 0 {
		return
	}

	// Replaying the log from the oldest retained revision rebuilds the
	// current state, passing through every acknowledged write, and the
	// lists at older revisions agree with the replay.
	start := max(compacted, 1) // afterRevision 0 would mean "from now"
	res, err := s.List(ctx, "", storage.ListOptions{Revision: start})
	if err != nil {
		fail("List at %d: %v", start, err)
	}
	state := toState(res.KVs)
	for key, v := range state {
		if a, ok := byRev[v.mod]; ok && (a.key != key || a.hash != v.hash) {
			fail("at %d, %q does not hold the write acknowledged at %d", start, key, v.mod)
		}
	}
	checkAt := map[int64]bool{}
	for range 4 {
		checkAt[start+1+rnd.Int64N(cur-start+1)] = true
	}
	ch, err := s.Watch(ctx, "", start, storage.WatchOptions{})
	if err != nil {
		fail("Watch from %d: %v", start, err)
	}
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	for rev := start + 1; rev <= cur; rev++ {
		var ev storage.Event
		select {
		case e, ok := <-ch:
			if !ok {
				fail("replay ended before revision %d", rev)
			}
			ev = e
		case <-timer.C:
			fail("replay stuck before revision %d", rev)
		}
		if ev.Revision != rev {
			fail("replay: event %v at %d, want revision %d", ev.Type, ev.Revision, rev)
		}
		key := ev.KV.Key
		prev, exists := state[key]
		switch ev.Type {
		case storage.Created:
			if exists || ev.PrevKV != nil || ev.KV.CreateRevision != rev {
				fail("replay: Created %q at %d: existed %v, create %d", key, rev, exists, ev.KV.CreateRevision)
			}
		case storage.Updated:
			if !exists || ev.PrevKV == nil || ev.PrevKV.ModRevision != prev.mod || valueHash(ev.PrevKV.Value) != prev.hash || ev.KV.CreateRevision != prev.create {
				fail("replay: Updated %q at %d does not follow the state (existed %v)", key, rev, exists)
			}
		default:
			fail("replay: unexpected %v event at %d: %v", ev.Type, rev, ev.Err)
		}
		if ev.KV.ModRevision != rev {
			fail("replay: %q at %d has ModRevision %d", key, rev, ev.KV.ModRevision)
		}
		v := version{valueHash(ev.KV.Value), ev.KV.CreateRevision, rev}
		state[key] = v
		if a, ok := byRev[rev]; ok && (a.key != key || a.hash != v.hash) {
			fail("replay: revision %d is %q, but %q was acknowledged there", rev, key, a.key)
		}
		if checkAt[rev] {
			res, err := s.List(ctx, "", storage.ListOptions{Revision: rev})
			if err != nil {
				fail("List at %d: %v", rev, err)
			}
			if got := toState(res.KVs); !maps.Equal(got, state) {
				fail("List at %d differs from the replayed state (%d keys, want %d)", rev, len(got), len(state))
			}
		}
	}
	if !maps.Equal(state, final) {
		fail("replayed state (%d keys) differs from the current state (%d keys)", len(state), len(final))
	}
}

// crashChild is the child's body: concurrent creates and updates, one line
// on stdout per acknowledged write, until killed.
func crashChild(spec string) {
	fields := strings.Fields(spec)
	if len(fields) != 3 {
		fmt.Fprintf(os.Stderr, "bad %s=%q\n", crashChildEnv, spec)
		os.Exit(2)
	}
	path, iteration, compact := fields[0], fields[1], fields[2] == "true"
	die := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(3)
	}
	s, err := Open(path, Options{})
	if err != nil {
		die("open: %v", err)
	}
	// Should the parent vanish, do not linger.
	time.AfterFunc(time.Minute, func() { os.Exit(0) })

	ctx := context.Background()
	var outMu sync.Mutex
	ack := func(kv storage.KeyValue, value []byte) {
		line := fmt.Sprintf("ACK %s %x %d\n", kv.Key, valueHash(value), kv.ModRevision)
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := os.Stdout.WriteString(line); err != nil { // one write: atomic on a pipe
			os.Exit(0)
		}
	}
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g)))
			var own []storage.KeyValue
			for n := 0; ; n++ {
				size := 1 + rnd.IntN(200)
				if rnd.IntN(20) == 0 {
					size = 4096 + rnd.IntN(8192) // spills onto overflow pages
				}
				value := make([]byte, size)
				for i := range value {
					value[i] = byte(rnd.Uint32())
				}
				switch r := rnd.IntN(10); {
				case r < 4 || len(own) == 0:
					kv, err := s.Create(ctx, fmt.Sprintf("c/%s/%d/%d", iteration, g, n), value)
					if err != nil {
						die("create: %v", err)
					}
					own = append(own, kv)
					ack(kv, value)
				case r < 8:
					i := rnd.IntN(len(own))
					kv, err := s.Update(ctx, own[i].Key, value, own[i].ModRevision)
					if err != nil {
						die("update %q: %v", own[i].Key, err)
					}
					own[i] = kv
					ack(kv, value)
				default:
					key := fmt.Sprintf("hot/%d", rnd.IntN(crashHotKeys))
					kv, err := s.Update(ctx, key, value, 0)
					if errors.Is(err, storage.ErrNotFound) {
						kv, err = s.Create(ctx, key, value)
						if errors.Is(err, storage.ErrKeyExists) {
							continue // another writer created it first
						}
					}
					if err != nil {
						die("write %q: %v", key, err)
					}
					ack(kv, value)
				}
				if compact && g == 0 && n%50 == 49 {
					cur, _, _ := s.Revision(ctx)
					if err := s.Compact(ctx, cur-40); err != nil && !errors.Is(err, storage.ErrCompacted) {
						die("compact: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
