package proxy

// NextSync returns a channel closed once the next sync has been committed.
// Asked before Run, it tells when the node's Services are first programmed
// (the agent lets pods start only then).
func (p *Proxier) NextSync() <-chan struct{} { return p.waitSync() }
