// Package napishim will export alknet to Node.js as an N-API addon built with -buildmode=c-shared.
// (Built by the Node binding issue.)
package napishim
