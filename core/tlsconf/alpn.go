package tlsconf

import (
	"errors"
	"fmt"
	"strings"
)

// ACMEALPN is the TLS-ALPN-01 challenge protocol; it is never registered by callers.
const ACMEALPN = "acme-tls/1"

// ErrInvalidALPN reports an ALPN outside the accepted grammar.
var ErrInvalidALPN = errors.New("invalid ALPN")

const maxALPNLen = 255

// ValidateALPN accepts "alknet/" followed by one or more of [a-z0-9._/-] not ending in "/",
// and the reserved HTTP gateway protocols "h2" and "http/1.1".
func ValidateALPN(alpn string) error {
	switch {
	case alpn == "h2" || alpn == "http/1.1":
		return nil
	case alpn == ACMEALPN:
		return fmt.Errorf("%w %q: reserved for ACME challenges", ErrInvalidALPN, alpn)
	case len(alpn) > maxALPNLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidALPN, maxALPNLen)
	case !strings.HasPrefix(alpn, "alknet/") || len(alpn) == len("alknet/") || strings.HasSuffix(alpn, "/"):
		return fmt.Errorf("%w %q: want \"alknet/<name>\", \"h2\" or \"http/1.1\"", ErrInvalidALPN, alpn)
	}
	for i := len("alknet/"); i < len(alpn); i++ {
		c := alpn[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return fmt.Errorf("%w %q: character %q not in [a-z0-9._/-]", ErrInvalidALPN, alpn, c)
		}
	}
	return nil
}
