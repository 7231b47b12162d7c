module github.com/alkdev/alknet/adapters

go 1.26.0

require (
	github.com/alkdev/alknet/call v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/core v0.0.0-00010101000000-000000000000
)

require (
	github.com/getkin/kin-openapi v0.153.0 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/modelcontextprotocol/go-sdk v1.8.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)

replace (
	github.com/alkdev/alknet/call => ../call
	github.com/alkdev/alknet/core => ../core
)
