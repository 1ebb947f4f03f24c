package dns

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"k8s.io/utils/clock"
)

// cacheKey identifies a forwarded question.
type cacheKey struct {
	name  string // lowercase FQDN
	qtype uint16
	do    bool // the DNSSEC OK bit the answer was asked with
}

// cacheEntry is one upstream answer. Its record slices are never changed
// after the entry is stored; readers get them, or per-second copies with
// the TTLs counted down, and must not modify either.
type cacheEntry struct {
	rcode             int
	answer, ns, extra []dns.RR
	stored, expires   time.Time
	view              atomic.Pointer[cacheView]
}

// cacheView is an entry's records as served during one second of its life.
type cacheView struct {
	age               uint32 // whole seconds since stored
	answer, ns, extra []dns.RR
}

const cacheShards = 32

// answerCache holds forwarded answers, positive and negative, for at most
// their TTL (capped) and at most size entries in all; when a shard is full
// a random entry of it makes room.
type answerCache struct {
	clock          clock.PassiveClock
	maxTTL, maxNeg time.Duration
	perShard       int
	disabled       bool
	entries        atomic.Int64
	shards         [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.Mutex
	m  map[cacheKey]*cacheEntry
}

func newAnswerCache(c clock.PassiveClock, size int, maxTTL, maxNeg time.Duration) *answerCache {
	ac := &answerCache{clock: c, maxTTL: maxTTL, maxNeg: maxNeg, disabled: size <= 0}
	ac.perShard = (size + cacheShards - 1) / cacheShards
	for i := range ac.shards {
		ac.shards[i].m = make(map[cacheKey]*cacheEntry)
	}
	return ac
}

func (ac *answerCache) shard(k cacheKey) *cacheShard {
	// FNV-1a over the name and the type.
	h := uint32(2166136261)
	for i := 0; i < len(k.name); i++ {
		h ^= uint32(k.name[i])
		h *= 16777619
	}
	h ^= uint32(k.qtype)
	h *= 16777619
	return &ac.shards[h%cacheShards]
}

// get returns the live answer for k, with TTLs counted down.
func (ac *answerCache) get(k cacheKey) (result, bool) {
	if ac.disabled {
		return result{}, false
	}
	sh := ac.shard(k)
	now := ac.clock.Now()
	sh.mu.Lock()
	e := sh.m[k]
	if e != nil && !now.Before(e.expires) {
		delete(sh.m, k)
		ac.entries.Add(-1)
		e = nil
	}
	sh.mu.Unlock()
	if e == nil {
		return result{}, false
	}
	v := e.viewAt(uint32(now.Sub(e.stored) / time.Second))
	return result{rcode: e.rcode, answer: v.answer, ns: v.ns, extra: v.extra}, true
}

func (e *cacheEntry) viewAt(age uint32) *cacheView {
	if v := e.view.Load(); v != nil && v.age == age {
		return v
	}
	v := &cacheView{age: age, answer: aged(e.answer, age), ns: aged(e.ns, age), extra: aged(e.extra, age)}
	e.view.Store(v)
	return v
}

// aged copies records with their TTLs lowered by age seconds; at age 0 the
// stored records themselves serve. The result has no spare capacity, so
// an append by a reader copies instead of writing into shared memory.
func aged(rrs []dns.RR, age uint32) []dns.RR {
	if age == 0 || len(rrs) == 0 {
		return rrs[:len(rrs):len(rrs)]
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		h := c.Header()
		if h.Ttl > age {
			h.Ttl -= age
		} else {
			h.Ttl = 0
		}
		out[i] = c
	}
	return out
}

// ttlOf is how long an upstream answer may be kept: the smallest TTL of
// its records for a positive answer, the SOA's negative TTL for NXDOMAIN
// and NODATA, capped; 0 means do not keep it.
func (ac *answerCache) ttlOf(m *dns.Msg) time.Duration {
	if m.Truncated {
		return 0
	}
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		minTTL := uint32(1<<32 - 1)
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				if rr.Header().Rrtype == dns.TypeOPT {
					continue
				}
				minTTL = min(minTTL, rr.Header().Ttl)
			}
		}
		return min(time.Duration(minTTL)*time.Second, ac.maxTTL)
	case m.Rcode == dns.RcodeNameError || m.Rcode == dns.RcodeSuccess:
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, ac.maxNeg)
			}
		}
	}
	return 0
}

// put stores an upstream answer (OPT already removed) and returns it as
// served: TTLs capped at what the cache keeps it for. Answers that may not
// be kept come back unchanged.
func (ac *answerCache) put(k cacheKey, m *dns.Msg) result {
	ttl := ac.ttlOf(m)
	r := result{rcode: m.Rcode, answer: m.Answer, ns: m.Ns, extra: m.Extra}
	if ttl <= 0 || ac.disabled {
		return r
	}
	secs := uint32(ttl / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Ttl > secs {
				rr.Header().Ttl = secs
			}
		}
	}
	now := ac.clock.Now()
	e := &cacheEntry{rcode: m.Rcode, answer: m.Answer, ns: m.Ns, extra: m.Extra, stored: now, expires: now.Add(ttl)}
	sh := ac.shard(k)
	sh.mu.Lock()
	if _, ok := sh.m[k]; !ok {
		if len(sh.m) >= ac.perShard {
			for victim := range sh.m { // map order: a random entry
				delete(sh.m, victim)
				ac.entries.Add(-1)
				break
			}
		}
		ac.entries.Add(1)
	}
	sh.m[k] = e
	sh.mu.Unlock()
	v := e.viewAt(0)
	return result{rcode: e.rcode, answer: v.answer, ns: v.ns, extra: v.extra}
}

// len is the number of entries held, expired ones not yet dropped included.
func (ac *answerCache) len() int64 { return ac.entries.Load() }
