// Package napishim will export alknet to Node.js as an N-API addon built with -buildmode=c-shared.
// It is not built yet: the package reserves the module.
package napishim
