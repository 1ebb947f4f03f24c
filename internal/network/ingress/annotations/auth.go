package annotations

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// htpasswd is one auth Secret's users at a resourceVersion.
type htpasswd struct {
	uid      types.UID
	rv       string
	users    map[string]string // user → hash
	warnings []string
}

const (
	authFile = "auth-file"
	authMap  = "auth-map"
)

// parseAuth reads auth-type=basic, auth-secret (name or namespace/name in
// the Ingress's namespace), auth-secret-type (auth-file: an htpasswd file
// in key "auth"; auth-map: one key per user, its value the hash) and
// auth-realm. A configuration Havre cannot enforce (unknown auth-type,
// digest, a missing or foreign Secret) answers 503 rather than letting
// requests through, as ingress-nginx denies such a location.
func (p *Parser) parseAuth(ing *networkingv1.Ingress, get func(string) (string, bool), w *warns) func(http.Handler) http.Handler {
	typ, ok := get("auth-type")
	if !ok {
		if _, ok := get("auth-secret"); ok {
			w.add("annotation %sauth-secret: no auth-type (ignored)", NginxPrefix)
		}
		return nil
	}
	deny := func() func(http.Handler) http.Handler {
		return func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				nginxError(w, http.StatusServiceUnavailable)
			})
		}
	}
	if typ != "basic" {
		if typ == "digest" {
			w.add("annotation %sauth-type: digest is not supported by Havre: requests are denied (503)", NginxPrefix)
		} else {
			w.add("annotation %sauth-type: invalid value %q: must be basic: requests are denied (503)", NginxPrefix, typ)
		}
		return deny()
	}
	ref, _ := get("auth-secret")
	ns, name := ing.Namespace, ref
	if before, after, found := strings.Cut(ref, "/"); found {
		ns, name = before, after
	}
	if name == "" || ns != ing.Namespace {
		if name == "" {
			w.add("annotation %sauth-secret: missing: requests are denied (503)", NginxPrefix)
		} else {
			w.add("annotation %sauth-secret: %q is not in the Ingress's namespace: requests are denied (503)", NginxPrefix, ref)
		}
		return deny()
	}
	secretType := authFile
	if v, ok := get("auth-secret-type"); ok && v != "" {
		if v != authFile && v != authMap {
			w.add("annotation %sauth-secret-type: invalid value %q: must be auth-file or auth-map: requests are denied (503)", NginxPrefix, v)
			return deny()
		}
		secretType = v
	}
	realm, _ := get("auth-realm")
	if f, err := p.loadHtpasswd(ns, name, secretType); err != nil {
		w.add("annotation %sauth-secret: %v: requests are denied (503) until it is fixed", NginxPrefix, err)
	} else {
		*w = append(*w, f.warnings...)
	}
	challenge := `Basic realm="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(realm) + `"`
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, err := p.loadHtpasswd(ns, name, secretType)
			if err != nil {
				nginxError(w, http.StatusServiceUnavailable)
				return
			}
			user, pass, ok := r.BasicAuth()
			if !ok || !p.check(f, user, pass) {
				w.Header().Set("WWW-Authenticate", challenge)
				nginxError(w, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// loadHtpasswd returns the users of Secret ns/name, parsed again only when
// it changed.
func (p *Parser) loadHtpasswd(ns, name, secretType string) (*htpasswd, error) {
	if p.cfg.Secrets == nil {
		return nil, fmt.Errorf("Secret %s/%s cannot be read (no Secret lister)", ns, name)
	}
	s, err := p.cfg.Secrets.Secrets(ns).Get(name)
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %v", ns, name, err)
	}
	key := secretType + "/" + ns + "/" + name
	c := &p.auth
	c.mu.Lock()
	f := c.files[key]
	c.mu.Unlock()
	if f != nil && f.uid == s.UID && f.rv == s.ResourceVersion && s.ResourceVersion != "" {
		return f, nil
	}
	f = &htpasswd{uid: s.UID, rv: s.ResourceVersion, users: map[string]string{}}
	if secretType == authMap {
		for user, hash := range s.Data {
			f.add(user, string(bytes.TrimSpace(hash)), name, 0)
		}
	} else {
		data, ok := s.Data["auth"]
		if !ok {
			return nil, fmt.Errorf("Secret %s/%s has no key \"auth\"", ns, name)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			user, hash, ok := strings.Cut(line, ":")
			if !ok {
				f.warnings = append(f.warnings, fmt.Sprintf("annotation %sauth-secret: Secret %s line %d is not user:hash (ignored)", NginxPrefix, name, i+1))
				continue
			}
			hash, _, _ = strings.Cut(hash, ":") // name:password:comment
			f.add(user, hash, name, i+1)
		}
	}
	if len(f.users) == 0 {
		f.warnings = append(f.warnings, fmt.Sprintf("annotation %sauth-secret: Secret %s has no usable user: every request is refused (401)", NginxPrefix, name))
	}
	c.mu.Lock()
	if c.files == nil {
		c.files = map[string]*htpasswd{}
	}
	c.files[key] = f
	c.mu.Unlock()
	return f, nil
}

func (f *htpasswd) add(user, hash, secret string, line int) {
	if !supportedHash(hash) {
		where := "user " + strconv.Quote(user)
		if line > 0 {
			where = fmt.Sprintf("line %d", line)
		}
		f.warnings = append(f.warnings, fmt.Sprintf("annotation %sauth-secret: Secret %s %s: unsupported password hash (bcrypt up to cost 14, $apr1$, $1$, $5$ and $6$ up to 1000000 rounds, {SHA}, {SSHA}, {PLAIN} are) (ignored)", NginxPrefix, secret, where))
		return
	}
	f.users[user] = hash
}

// check verifies user's password; successes are remembered (bcrypt is
// slow on purpose, and browsers send the credentials with every request).
func (p *Parser) check(f *htpasswd, user, pass string) bool {
	hash, ok := f.users[user]
	if !ok {
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass + "\x00" + hash))
	c := &p.auth
	c.mu.Lock()
	_, known := c.verified[key]
	c.mu.Unlock()
	if known {
		return true
	}
	if !verifyHash(hash, pass) {
		return false
	}
	c.mu.Lock()
	if c.verified == nil || len(c.verified) >= 4096 {
		c.verified = map[[32]byte]struct{}{}
	}
	c.verified[key] = struct{}{}
	c.mu.Unlock()
	return true
}

// supportedHash tells whether verifyHash knows h's format, and at a cost
// that cannot be used to tie up the proxy.
func supportedHash(h string) bool {
	switch {
	case strings.HasPrefix(h, "$2"):
		cost, err := bcrypt.Cost([]byte(h))
		return err == nil && cost <= maxBcryptCost
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		_, ok := shaCrypt("", h)
		return ok
	}
	for _, p := range []string{"$2a$", "$2b$", "$2y$", "$apr1$", "$1$", "$5$", "$6$", "{SHA}", "{SSHA}", "{PLAIN}"} {
		if strings.HasPrefix(h, p) {
			return true
		}
	}
	return false
}

// verifyHash checks pass against an htpasswd hash in one of the formats
// nginx's auth_basic_user_file accepts.
func verifyHash(hash, pass string) bool {
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if len(pass) > 72 { // crypt(3)'s bcrypt reads 72 bytes; Go's refuses more
			pass = pass[:72]
		}
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
	case strings.HasPrefix(hash, "$apr1$"):
		return eq(md5Crypt(pass, hash, "$apr1$"), hash)
	case strings.HasPrefix(hash, "$1$"):
		return eq(md5Crypt(pass, hash, "$1$"), hash)
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		got, ok := shaCrypt(pass, hash)
		return ok && eq(got, hash)
	case strings.HasPrefix(hash, "{SHA}"):
		sum := sha1.Sum([]byte(pass))
		return eq(base64.StdEncoding.EncodeToString(sum[:]), hash[len("{SHA}"):])
	case strings.HasPrefix(hash, "{SSHA}"):
		raw, err := base64.StdEncoding.DecodeString(hash[len("{SSHA}"):])
		if err != nil || len(raw) < sha1.Size {
			return false
		}
		sum := sha1.Sum(append([]byte(pass), raw[sha1.Size:]...))
		return subtle.ConstantTimeCompare(sum[:], raw[:sha1.Size]) == 1
	case strings.HasPrefix(hash, "{PLAIN}"):
		return eq(pass, hash[len("{PLAIN}"):])
	}
	return false
}

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func to64(b *strings.Builder, v uint32, n int) {
	for ; n > 0; n-- {
		b.WriteByte(itoa64[v&0x3f])
		v >>= 6
	}
}

// md5Crypt is the MD5-based crypt (Poul-Henning Kamp's, as Apache's
// "$apr1$" and glibc's "$1$"): the hash of pass with the salt of setting.
func md5Crypt(pass, setting, magic string) string {
	salt := strings.TrimPrefix(setting, magic)
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw := []byte(pass)
	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic))
	ctx.Write([]byte(salt))
	alt := md5.New()
	alt.Write(pw)
	alt.Write([]byte(salt))
	alt.Write(pw)
	final := alt.Sum(nil)
	for i := len(pw); i > 0; i -= 16 {
		ctx.Write(final[:min(i, 16)])
	}
	for i := len(pw); i != 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final = ctx.Sum(nil)
	for i := 0; i < 1000; i++ {
		c := md5.New()
		if i&1 != 0 {
			c.Write(pw)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write([]byte(salt))
		}
		if i%7 != 0 {
			c.Write(pw)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(pw)
		}
		final = c.Sum(nil)
	}
	var b strings.Builder
	b.WriteString(magic)
	b.WriteString(salt)
	b.WriteByte('$')
	f := func(i int) uint32 { return uint32(final[i]) }
	to64(&b, f(0)<<16|f(6)<<8|f(12), 4)
	to64(&b, f(1)<<16|f(7)<<8|f(13), 4)
	to64(&b, f(2)<<16|f(8)<<8|f(14), 4)
	to64(&b, f(3)<<16|f(9)<<8|f(15), 4)
	to64(&b, f(4)<<16|f(10)<<8|f(5), 4)
	to64(&b, f(11), 2)
	return b.String()
}

// Bounds of the work one password check may cost.
const (
	maxBcryptCost    = 14
	maxShaCryptRound = 1000000
)

// shaCrypt is Ulrich Drepper's SHA-crypt ("$5$" SHA-256, "$6$" SHA-512,
// optional "rounds=N$"): the hash of pass with the salt and rounds of
// setting. ok is false for a malformed setting or too many rounds.
func shaCrypt(pass, setting string) (string, bool) {
	var newHash func() hash.Hash
	var order [][3]int
	switch {
	case strings.HasPrefix(setting, "$5$"):
		newHash, order = sha256.New, sha256Order
	case strings.HasPrefix(setting, "$6$"):
		newHash, order = sha512.New, sha512Order
	default:
		return "", false
	}
	magic, rest := setting[:3], setting[3:]
	rounds, custom := 5000, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		n, err := strconv.Atoi(num)
		if !found || err != nil {
			return "", false
		}
		rounds, custom, rest = min(max(n, 1000), 999999999), true, after
	}
	if rounds > maxShaCryptRound {
		return "", false
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > 16 {
		salt = salt[:16]
	}
	P, S := []byte(pass), []byte(salt)
	sum := func(parts ...[]byte) []byte {
		h := newHash()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	B := sum(P, S, P)
	size := len(B)
	a := newHash()
	a.Write(P)
	a.Write(S)
	for i := len(P); i > 0; i -= size {
		a.Write(B[:min(i, size)])
	}
	for i := len(P); i > 0; i >>= 1 {
		if i&1 != 0 {
			a.Write(B)
		} else {
			a.Write(P)
		}
	}
	A := a.Sum(nil)
	dp := newHash()
	for range P {
		dp.Write(P)
	}
	DP := dp.Sum(nil)
	Pb := make([]byte, 0, len(P))
	for len(Pb) < len(P) {
		Pb = append(Pb, DP[:min(size, len(P)-len(Pb))]...)
	}
	ds := newHash()
	for i := 0; i < 16+int(A[0]); i++ {
		ds.Write(S)
	}
	DS := ds.Sum(nil)
	Sb := DS[:len(S)]
	C := A
	for i := 0; i < rounds; i++ {
		h := newHash()
		if i&1 != 0 {
			h.Write(Pb)
		} else {
			h.Write(C)
		}
		if i%3 != 0 {
			h.Write(Sb)
		}
		if i%7 != 0 {
			h.Write(Pb)
		}
		if i&1 != 0 {
			h.Write(C)
		} else {
			h.Write(Pb)
		}
		C = h.Sum(nil)
	}
	var b strings.Builder
	b.WriteString(magic)
	if custom {
		fmt.Fprintf(&b, "rounds=%d$", rounds)
	}
	b.WriteString(salt)
	b.WriteByte('$')
	for _, t := range order {
		v, n := uint32(0), 4
		for j, idx := range t {
			switch {
			case idx >= 0:
				v |= uint32(C[idx]) << (16 - 8*j)
			case j == 0:
				n--
			}
		}
		if t[0] < 0 && t[1] < 0 {
			n = 2
		}
		to64(&b, v, n)
	}
	return b.String(), true
}

// The byte triplets SHA-crypt encodes, in order (-1: none).
var (
	sha256Order = [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
		{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}, {-1, 31, 30}}
	sha512Order = [][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
		{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10},
		{53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16},
		{59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}, {-1, -1, 63}}
)
