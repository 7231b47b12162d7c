module github.com/alkdev/alknet/core

go 1.26.0

require github.com/google/go-cmp v0.7.0

require (
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
