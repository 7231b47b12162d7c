// Package call implements the alknet/call protocol over core connections: framing, envelopes,
// the operation registry, access control, composition, deadlines, the abort cascade and the
// client. (Built by the call-protocol issue.)
package call
