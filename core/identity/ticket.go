package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Ticket format: "alk1" + base32(records || first 4 bytes of SHA-256(records)),
// RFC 4648 alphabet, no padding, lowercase. Records are type(1) length(1) value.
const (
	ticketPrefix        = "alk1"
	ticketChecksumLen   = 4
	maxTicketDecoded    = 1024
	maxTicketAddrs      = 8
	recKeyFingerprint   = 0x01
	recCertFingerprint  = 0x02
	recQUICAddr         = 0x10
	recTCPAddr          = 0x11
	recServerName       = 0x20
	recExtensionsFirst  = 0x80
	recIrohRelay        = 0x80 // iroh: relay URL ("" = none); its presence says the node is reachable over iroh
	recIrohAddr         = 0x81 // iroh: a direct IP-literal address, only after 0x80
	maxIrohAddrs        = 8
	maxTicketEncodedLen = len(ticketPrefix) + (maxTicketDecoded*8+4)/5
)

// ErrInvalidTicket reports a ticket that does not decode; the wrapped text says why.
var ErrInvalidTicket = errors.New("identity: invalid ticket")

var ticketEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Ticket tells a client where a node is and which fingerprint to pin.
type Ticket struct {
	Fingerprint string    // ed25519: or SHA256: fingerprint
	QUIC        []string  // host:port, preference order
	TCP         []string  // host:port, preference order
	ServerName  string    // optional SNI / CA-verified name
	Iroh        *IrohAddr // nil: not reachable over iroh (needs an ed25519: fingerprint)
}

// IrohAddr says how to reach a node over iroh, whose endpoint id is the fingerprint's key:
// through a relay and at direct addresses. Both may be empty (iroh's discovery finds the node).
// Older decoders skip these records (types ≥ 0x80) and still dial QUIC and TCP.
type IrohAddr struct {
	RelayURL string   // absolute https URL (http for a loopback host); "" = none
	Addrs    []string // IP-literal host:port, at most 8
}

// Encode returns the ticket string, or an error if a field cannot be encoded.
func (t Ticket) Encode() (string, error) {
	raw, isKey, err := fingerprintBytes(t.Fingerprint)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidTicket, err)
	}
	if len(t.QUIC) > maxTicketAddrs || len(t.TCP) > maxTicketAddrs {
		return "", fmt.Errorf("%w: more than %d addresses of a kind", ErrInvalidTicket, maxTicketAddrs)
	}
	var b bytes.Buffer
	typ := byte(recCertFingerprint)
	if isKey {
		typ = recKeyFingerprint
	}
	writeRecord(&b, typ, raw)
	for _, group := range []struct {
		typ   byte
		addrs []string
	}{{recQUICAddr, t.QUIC}, {recTCPAddr, t.TCP}} {
		for _, a := range group.addrs {
			if err := checkAddr(a); err != nil {
				return "", err
			}
			writeRecord(&b, group.typ, []byte(a))
		}
	}
	if t.ServerName != "" {
		if len(t.ServerName) > 255 {
			return "", fmt.Errorf("%w: server name longer than 255 bytes", ErrInvalidTicket)
		}
		writeRecord(&b, recServerName, []byte(t.ServerName))
	}
	if t.Iroh != nil {
		if !isKey {
			return "", fmt.Errorf("%w: iroh records need an %s fingerprint", ErrInvalidTicket, PrefixEd25519)
		}
		if err := checkRelayURL(t.Iroh.RelayURL); err != nil {
			return "", err
		}
		if len(t.Iroh.Addrs) > maxIrohAddrs {
			return "", fmt.Errorf("%w: more than %d iroh addresses", ErrInvalidTicket, maxIrohAddrs)
		}
		writeRecord(&b, recIrohRelay, []byte(t.Iroh.RelayURL))
		for _, a := range t.Iroh.Addrs {
			if err := checkIPAddr(a); err != nil {
				return "", err
			}
			writeRecord(&b, recIrohAddr, []byte(a))
		}
	}
	if b.Len() > maxTicketDecoded-ticketChecksumLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidTicket, maxTicketDecoded)
	}
	return encodeWithChecksum(b.Bytes()), nil
}

// String returns the encoded ticket, or "" for a ticket that cannot be encoded.
func (t Ticket) String() string {
	s, err := t.Encode()
	if err != nil {
		return ""
	}
	return s
}

func writeRecord(b *bytes.Buffer, typ byte, v []byte) {
	b.WriteByte(typ)
	b.WriteByte(byte(len(v)))
	b.Write(v)
}

func checkAddr(a string) error {
	if len(a) > 255 {
		return fmt.Errorf("%w: address longer than 255 bytes", ErrInvalidTicket)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%w: address %q: %w", ErrInvalidTicket, a, err)
	}
	if host == "" {
		return fmt.Errorf("%w: address %q has an empty host", ErrInvalidTicket, a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: address %q: port outside 1-65535", ErrInvalidTicket, a)
	}
	return nil
}

// checkRelayURL accepts "" or an absolute https URL (http for a loopback host) with a host.
func checkRelayURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 255 {
		return fmt.Errorf("%w: relay URL longer than 255 bytes", ErrInvalidTicket)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%w: relay URL %q is not an absolute URL", ErrInvalidTicket, s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%w: relay URL %q: http only for a loopback host", ErrInvalidTicket, s)
		}
	default:
		return fmt.Errorf("%w: relay URL %q: scheme must be https", ErrInvalidTicket, s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: relay URL %q: port outside 1-65535", ErrInvalidTicket, s)
		}
	}
	return nil
}

// checkIPAddr accepts an IP-literal host:port with a port in 1-65535 (iroh's direct addresses).
func checkIPAddr(a string) error {
	if err := checkAddr(a); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(a)
	if net.ParseIP(host) == nil {
		return fmt.Errorf("%w: iroh address %q: the host must be an IP literal", ErrInvalidTicket, a)
	}
	return nil
}

// ParseTicket decodes a ticket. Surrounding white space is trimmed and either case is accepted.
func ParseTicket(s string) (Ticket, error) {
	recs, err := ticketRecordBytes(s)
	if err != nil {
		return Ticket{}, err
	}
	return decodeRecords(recs)
}

// TicketRecord is one record of a ticket as it is encoded (for inspection tools).
type TicketRecord struct {
	Type  byte   `json:"type"`
	Name  string `json:"name"`  // "key_fingerprint", "cert_fingerprint", "quic", "tcp", "server_name", "iroh_relay", "iroh", "extension"
	Value string `json:"value"` // text for addresses and names, hex otherwise
}

// TicketRecords returns every record of a valid ticket in order, including the optional
// extension records ParseTicket skips.
func TicketRecords(s string) ([]TicketRecord, error) {
	if _, err := ParseTicket(s); err != nil {
		return nil, err
	}
	recs, _ := ticketRecordBytes(s)
	var out []TicketRecord
	for len(recs) >= 2 && len(recs) >= 2+int(recs[1]) {
		typ, val := recs[0], recs[2:2+int(recs[1])]
		recs = recs[2+int(recs[1]):]
		r := TicketRecord{Type: typ, Value: hex.EncodeToString(val)}
		switch {
		case typ == recKeyFingerprint:
			r.Name = "key_fingerprint"
		case typ == recCertFingerprint:
			r.Name = "cert_fingerprint"
		case typ == recQUICAddr:
			r.Name, r.Value = "quic", string(val)
		case typ == recTCPAddr:
			r.Name, r.Value = "tcp", string(val)
		case typ == recServerName:
			r.Name, r.Value = "server_name", string(val)
		case typ == recIrohRelay:
			r.Name, r.Value = "iroh_relay", string(val)
		case typ == recIrohAddr:
			r.Name, r.Value = "iroh", string(val)
		default:
			r.Name = "extension"
		}
		out = append(out, r)
	}
	return out, nil
}

// ticketRecordBytes checks a ticket's prefix, encoding, size and checksum and returns its records.
func ticketRecordBytes(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxTicketEncodedLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalidTicket, maxTicketEncodedLen)
	}
	if len(s) < len(ticketPrefix) || !strings.EqualFold(s[:len(ticketPrefix)], ticketPrefix) {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrInvalidTicket, ticketPrefix)
	}
	body := strings.ToUpper(s[len(ticketPrefix):])
	// base32 decoders tolerate \r and \n; the ticket grammar does not.
	if strings.ContainsAny(body, "\r\n=") {
		return nil, fmt.Errorf("%w: unexpected character", ErrInvalidTicket)
	}
	data, err := ticketEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base32: %w", ErrInvalidTicket, err)
	}
	if len(data) > maxTicketDecoded {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidTicket, maxTicketDecoded)
	}
	if len(data) < ticketChecksumLen {
		return nil, fmt.Errorf("%w: too short", ErrInvalidTicket)
	}
	recs, check := data[:len(data)-ticketChecksumLen], data[len(data)-ticketChecksumLen:]
	sum := sha256.Sum256(recs)
	if !bytes.Equal(sum[:ticketChecksumLen], check) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrInvalidTicket)
	}
	return recs, nil
}

func decodeRecords(recs []byte) (Ticket, error) {
	var t Ticket
	certFP := false
	for i := 0; len(recs) > 0; i++ {
		if len(recs) < 2 || len(recs) < 2+int(recs[1]) {
			return Ticket{}, fmt.Errorf("%w: truncated record %d", ErrInvalidTicket, i)
		}
		typ, val := recs[0], recs[2:2+int(recs[1])]
		recs = recs[2+int(recs[1]):]
		if i == 0 && typ != recKeyFingerprint && typ != recCertFingerprint {
			return Ticket{}, fmt.Errorf("%w: first record is not a fingerprint", ErrInvalidTicket)
		}
		switch {
		case typ == recKeyFingerprint || typ == recCertFingerprint:
			if i != 0 {
				return Ticket{}, fmt.Errorf("%w: second fingerprint", ErrInvalidTicket)
			}
			if len(val) != 32 {
				return Ticket{}, fmt.Errorf("%w: fingerprint is %d bytes, want 32", ErrInvalidTicket, len(val))
			}
			prefix := PrefixSHA256
			if typ == recKeyFingerprint {
				prefix = PrefixEd25519
			}
			certFP = typ == recCertFingerprint
			t.Fingerprint = prefix + hex.EncodeToString(val)
		case typ == recQUICAddr || typ == recTCPAddr:
			a := string(val)
			if err := checkAddr(a); err != nil {
				return Ticket{}, err
			}
			list := &t.QUIC
			if typ == recTCPAddr {
				list = &t.TCP
			}
			if len(*list) == maxTicketAddrs {
				return Ticket{}, fmt.Errorf("%w: more than %d addresses of a kind", ErrInvalidTicket, maxTicketAddrs)
			}
			*list = append(*list, a)
		case typ == recServerName:
			if t.ServerName != "" || len(val) == 0 {
				return Ticket{}, fmt.Errorf("%w: empty or second server name", ErrInvalidTicket)
			}
			t.ServerName = string(val)
		case typ == recIrohRelay:
			switch {
			case t.Iroh != nil:
				return Ticket{}, fmt.Errorf("%w: second iroh relay record", ErrInvalidTicket)
			case certFP:
				return Ticket{}, fmt.Errorf("%w: iroh records need an %s fingerprint", ErrInvalidTicket, PrefixEd25519)
			}
			if err := checkRelayURL(string(val)); err != nil {
				return Ticket{}, err
			}
			t.Iroh = &IrohAddr{RelayURL: string(val)}
		case typ == recIrohAddr:
			if t.Iroh == nil {
				return Ticket{}, fmt.Errorf("%w: iroh address without an iroh relay record", ErrInvalidTicket)
			}
			if len(t.Iroh.Addrs) == maxIrohAddrs {
				return Ticket{}, fmt.Errorf("%w: more than %d iroh addresses", ErrInvalidTicket, maxIrohAddrs)
			}
			if err := checkIPAddr(string(val)); err != nil {
				return Ticket{}, err
			}
			t.Iroh.Addrs = append(t.Iroh.Addrs, string(val))
		case typ >= recExtensionsFirst:
			// Optional extension unknown to this version: skipped.
		default:
			return Ticket{}, fmt.Errorf("%w: unknown record type 0x%02x", ErrInvalidTicket, typ)
		}
	}
	if t.Fingerprint == "" {
		return Ticket{}, fmt.Errorf("%w: no fingerprint", ErrInvalidTicket)
	}
	return t, nil
}

// encodeWithChecksum appends the checksum to the records and encodes the result.
func encodeWithChecksum(recs []byte) string {
	sum := sha256.Sum256(recs)
	return ticketPrefix + strings.ToLower(ticketEncoding.EncodeToString(append(append([]byte(nil), recs...), sum[:ticketChecksumLen]...)))
}

// ValidateIrohRelayURL checks a relay URL as an iroh ticket record carries it: absolute
// https (http only for a loopback host), at most 255 bytes. Config and the iroh module use it.
func ValidateIrohRelayURL(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty relay URL", ErrInvalidTicket)
	}
	return checkRelayURL(s)
}
