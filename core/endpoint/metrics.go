package endpoint

// Metrics receives the endpoint's counters; the CLI exports them to Prometheus.
// Implementations must be safe for concurrent use and must not block.
type Metrics interface {
	ConnAccepted(transport, alpn string)
	ConnClosed(transport, alpn string)
	ConnRefused(reason string)
	HandshakeFailed(transport string)
	AuthResult(result string) // "accept" for a resolved connection fingerprint
	HandlerPanic(alpn string)
	Revoked()
}

type noMetrics struct{}

func (noMetrics) ConnAccepted(string, string) {}
func (noMetrics) ConnClosed(string, string)   {}
func (noMetrics) ConnRefused(string)          {}
func (noMetrics) HandshakeFailed(string)      {}
func (noMetrics) AuthResult(string)           {}
func (noMetrics) HandlerPanic(string)         {}
func (noMetrics) Revoked()                    {}
