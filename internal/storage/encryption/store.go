package encryption

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"

	"github.com/havre/havre/internal/storage"
)

// Store is a storage.Store whose values are encrypted as its Config says:
// writes go through the first provider of the key's resource, reads, lists
// and watch events come back decrypted. Keys of resources no provider is
// configured for pass unchanged (a value that is encrypted there fails to
// read, as upstream's).
type Store struct {
	storage.Store
	cfg *Config
}

var _ storage.Store = (*Store)(nil)

// Wrap returns s encrypting as c says.
func Wrap(s storage.Store, c *Config) *Store {
	return &Store{Store: s, cfg: c}
}

// unchecked is upstream's transformer for resources with no provider: it
// refuses values that are encrypted.
var unchecked = identity.NewEncryptCheckTransformer()

func (s *Store) toStorage(ctx context.Context, key string, data []byte) ([]byte, error) {
	t, ok := s.cfg.transformer(key)
	if !ok {
		return data, nil
	}
	out, err := t.TransformToStorage(ctx, data, value.DefaultContext(key))
	if err != nil {
		return nil, fmt.Errorf("encrypting %s: %w", key, err)
	}
	return out, nil
}

// fromStorage decrypts kv's value; stale is upstream's: the value was not
// written by the first provider.
func (s *Store) fromStorage(ctx context.Context, kv *storage.KeyValue) (stale bool, err error) {
	t, ok := s.cfg.transformer(kv.Key)
	if !ok {
		t = unchecked
	}
	out, stale, err := t.TransformFromStorage(ctx, kv.Value, value.DefaultContext(kv.Key))
	if err != nil {
		return false, fmt.Errorf("decrypting %s: %w", kv.Key, err)
	}
	kv.Value = out
	return stale, nil
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, key string, data []byte) (storage.KeyValue, error) {
	enc, err := s.toStorage(ctx, key, data)
	if err != nil {
		return storage.KeyValue{}, err
	}
	kv, err := s.Store.Create(ctx, key, enc)
	kv.Value = data
	return kv, err
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, key string, data []byte, expectedModRevision int64) (storage.KeyValue, error) {
	enc, err := s.toStorage(ctx, key, data)
	if err != nil {
		return storage.KeyValue{}, err
	}
	kv, err := s.Store.Update(ctx, key, enc, expectedModRevision)
	kv.Value = data
	return kv, err
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, key string) (storage.KeyValue, error) {
	kv, err := s.Store.Get(ctx, key)
	if err != nil {
		return kv, err
	}
	_, err = s.fromStorage(ctx, &kv)
	return kv, err
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key string, expectedModRevision int64) (storage.KeyValue, error) {
	kv, err := s.Store.Delete(ctx, key, expectedModRevision)
	if err != nil {
		return kv, err
	}
	_, err = s.fromStorage(ctx, &kv)
	return kv, err
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.ListResult, error) {
	res, err := s.Store.List(ctx, prefix, opts)
	if err != nil {
		return res, err
	}
	kvs := make([]storage.KeyValue, len(res.KVs))
	copy(kvs, res.KVs)
	for i := range kvs {
		if _, err := s.fromStorage(ctx, &kvs[i]); err != nil {
			return storage.ListResult{}, err
		}
	}
	res.KVs = kvs
	return res, nil
}

// Watch implements storage.Store. Events come decrypted; one that cannot
// be ends the watch with an Error event. A watch on the keys of a
// resource with no provider is the backend's own.
func (s *Store) Watch(ctx context.Context, prefix string, afterRevision int64, opts storage.WatchOptions) (<-chan storage.Event, error) {
	in, err := s.Store.Watch(ctx, prefix, afterRevision, opts)
	if err != nil {
		return nil, err
	}
	if _, ok := groupResource(prefix); ok {
		if _, ok := s.cfg.transformer(prefix); !ok {
			return in, nil
		}
	}
	out := make(chan storage.Event)
	go func() {
		defer close(out)
		for ev := range in {
			if ev.Type == storage.Created || ev.Type == storage.Updated || ev.Type == storage.Deleted {
				var err error
				if _, err = s.fromStorage(ctx, &ev.KV); err == nil && ev.PrevKV != nil {
					prev := *ev.PrevKV
					_, err = s.fromStorage(ctx, &prev)
					ev.PrevKV = &prev
				}
				if err != nil {
					ev = storage.Event{Type: storage.Error, Revision: ev.Revision, Err: err}
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Type == storage.Error {
				return
			}
		}
	}()
	return out, nil
}

// rewritePage is how many keys Rewrite reads at a time.
var rewritePage int64 = 500

// RewriteResult counts what Rewrite did.
type RewriteResult struct {
	// Scanned is how many values of configured resources were read.
	Scanned int
	// Rewritten is how many of them were written back with the first
	// provider (they were in clear, or under an older key or provider).
	Rewritten int
	// Failed is how many could not be decrypted; they are left as they are.
	Failed int
}

// Rewrite re-encrypts, as kube-apiserver's storage migration does by reading
// and writing objects back, every value of a configured resource that was not
// written by its first provider: the rotation step once a new key is put
// first. It goes page by page under /registry/, calls progress after every
// page, and skips values a concurrent write replaced (those were written by
// the first provider). Values that do not decrypt are counted, not fatal.
func (s *Store) Rewrite(ctx context.Context, progress func(RewriteResult)) (RewriteResult, error) {
	var res RewriteResult
	start := ""
	for {
		page, err := s.Store.List(ctx, "/registry/", storage.ListOptions{Limit: rewritePage, StartKey: start})
		if err != nil {
			return res, err
		}
		for _, kv := range page.KVs {
			t, ok := s.cfg.transformer(kv.Key)
			if !ok {
				continue
			}
			res.Scanned++
			plain, stale, err := t.TransformFromStorage(ctx, kv.Value, value.DefaultContext(kv.Key))
			if err != nil {
				res.Failed++
				continue
			}
			if !stale {
				continue
			}
			enc, err := t.TransformToStorage(ctx, plain, value.DefaultContext(kv.Key))
			if err != nil {
				return res, fmt.Errorf("encrypting %s: %w", kv.Key, err)
			}
			switch _, err := s.Store.Update(ctx, kv.Key, enc, kv.ModRevision); {
			case err == nil:
				res.Rewritten++
			case errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrNotFound):
			default:
				return res, err
			}
		}
		if progress != nil {
			progress(res)
		}
		if !page.More || len(page.KVs) == 0 {
			return res, nil
		}
		start = page.KVs[len(page.KVs)-1].Key + "\x00"
	}
}
