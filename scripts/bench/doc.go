// Package bench is the side-by-side benchmark harness (docs/performance.md); it is its own module, outside
// go.work, so gRPC and Connect never enter the product's modules.
package bench
