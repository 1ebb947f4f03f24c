package acme

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"time"
)

// Window is a renewal window a CA suggests (ACME ARI).
type Window struct{ Start, End time.Time }

// RenewAt is when a certificate is renewed: at a point of the CA's
// suggested window (ARI) when there is one, else when a third of its
// lifetime is left, so that the shortest lifetime in use is followed
// (a 3-minute certificate is renewed after 2 minutes, a 45-day one after
// 30 days). The point in the window is fixed per certificate (from its
// serial), spreading renewals as RFC 9773 asks without moving at every
// check. It is never later than when a third of the lifetime is left.
func RenewAt(cert *x509.Certificate, w *Window) time.Time {
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	third := cert.NotAfter.Add(-lifetime / 3)
	if w == nil || !w.Start.Before(w.End) || w.End.After(cert.NotAfter) {
		return third
	}
	h := sha256.Sum256(cert.SerialNumber.Bytes())
	frac := float64(binary.BigEndian.Uint64(h[:8])>>11) / float64(1<<53)
	at := w.Start.Add(time.Duration(frac * float64(w.End.Sub(w.Start))))
	// The CA may ask for an earlier renewal (a revocation ahead), never a
	// later one: a window reaching the expiry (Pebble's for short-lived
	// certificates) must not leave the renewal to its last moment.
	if at.After(third) {
		at = third
	}
	return at
}

// Due reports whether cert must be renewed at now (its renewal time has
// come, or it has expired).
func Due(now time.Time, cert *x509.Certificate, w *Window) bool {
	return !now.Before(RenewAt(cert, w)) || !now.Before(cert.NotAfter)
}
