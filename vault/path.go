package vault

import (
	"fmt"
	"strconv"
	"strings"
)

// Derivation paths.
const (
	PathIdentity     = "m/74'/0'/0'/0'"   // node identity, Ed25519; equals DevicePath(0)
	PathDevicePrefix = "m/74'/0'/0'"      // DevicePath(n) = PathDevicePrefix + "/{n}'"
	PathSSHHost      = "m/74'/0'/1'/0'"   // SSH host key, Ed25519
	PathEncryption   = "m/74'/2'/0'/0'"   // AES key of key version 2
	PathEthereum     = "m/44'/60'/0'/0/0" // BIP-32 secp256k1; the last two levels are unhardened
)

// Key versions of EncryptedData.
const (
	CurrentKeyVersion uint32 = 2
	MinKeyVersion     uint32 = 2
	MaxKeyVersion     uint32 = 1<<31 + 1 // N-2 stays below 2^31
)

const (
	hardenedOffset uint32 = 1 << 31
	maxPathDepth          = 255
	maxPathLen            = 1 + maxPathDepth*12 // "/2147483647'" per level
)

// Path is a parsed derivation path; hardened indices are index + 2^31.
type Path []uint32

// ParsePath parses "m" followed by up to 255 "/index" segments, each optionally hardened
// with ', h or H. Indices are decimal without sign or leading zeros and below 2^31.
func ParsePath(s string) (Path, error) {
	if len(s) > maxPathLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalidPath, maxPathLen)
	}
	if s == "" || s[0] != 'm' {
		return nil, fmt.Errorf("%w: must start with \"m\"", ErrInvalidPath)
	}
	if s == "m" {
		return Path{}, nil
	}
	if s[1] != '/' {
		return nil, fmt.Errorf("%w: \"m\" must be followed by \"/\"", ErrInvalidPath)
	}
	segs := strings.Split(s[2:], "/")
	if len(segs) > maxPathDepth {
		return nil, fmt.Errorf("%w: deeper than %d levels", ErrInvalidPath, maxPathDepth)
	}
	p := make(Path, 0, len(segs))
	for i, seg := range segs {
		hardened := false
		if n := len(seg); n > 0 && (seg[n-1] == '\'' || seg[n-1] == 'h' || seg[n-1] == 'H') {
			hardened = true
			seg = seg[:n-1]
		}
		if seg == "" || (len(seg) > 1 && seg[0] == '0') {
			return nil, fmt.Errorf("%w: segment %d is empty or has a leading zero", ErrInvalidPath, i+1)
		}
		for j := 0; j < len(seg); j++ {
			if seg[j] < '0' || seg[j] > '9' {
				return nil, fmt.Errorf("%w: segment %d is not a decimal index", ErrInvalidPath, i+1)
			}
		}
		v, err := strconv.ParseUint(seg, 10, 32)
		if err != nil || uint32(v) >= hardenedOffset {
			return nil, fmt.Errorf("%w: segment %d is 2^31 or more", ErrInvalidPath, i+1)
		}
		idx := uint32(v)
		if hardened {
			idx += hardenedOffset
		}
		p = append(p, idx)
	}
	return p, nil
}

// String renders the canonical form: m/index' for hardened and m/index otherwise.
func (p Path) String() string {
	var b strings.Builder
	b.WriteByte('m')
	for _, idx := range p {
		b.WriteByte('/')
		if idx >= hardenedOffset {
			b.WriteString(strconv.FormatUint(uint64(idx-hardenedOffset), 10))
			b.WriteByte('\'')
		} else {
			b.WriteString(strconv.FormatUint(uint64(idx), 10))
		}
	}
	return b.String()
}

// DevicePath returns m/74'/0'/0'/{n}' for n < 2^31.
func DevicePath(n uint32) (string, error) {
	if n >= hardenedOffset {
		return "", fmt.Errorf("%w: device index must be below 2^31", ErrInvalidPath)
	}
	return PathDevicePrefix + "/" + strconv.FormatUint(uint64(n), 10) + "'", nil
}

// EncryptionPath returns m/74'/2'/0'/{v-2}' for a valid key version.
func EncryptionPath(version uint32) (string, error) {
	if version < MinKeyVersion || version > MaxKeyVersion {
		return "", ErrInvalidKeyVersion
	}
	return "m/74'/2'/0'/" + strconv.FormatUint(uint64(version-2), 10) + "'", nil
}
