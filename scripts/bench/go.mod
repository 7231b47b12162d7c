module github.com/alkdev/alknet/scripts/bench

go 1.26.0

require (
	connectrpc.com/connect v1.21.1
	github.com/alkdev/alknet/adapters v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/call v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/core v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/iroh v0.0.0-00010101000000-000000000000
	github.com/modelcontextprotocol/go-sdk v1.8.0
	github.com/quic-go/quic-go v0.65.0
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.62.0
	google.golang.org/grpc v1.85.0
)

require (
	github.com/go-openapi/jsonpointer v1.0.3 // indirect
	github.com/google/jsonschema-go v0.4.3 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	github.com/segmentio/asm v1.1.3 // indirect
	github.com/segmentio/encoding v0.5.4 // indirect
	github.com/yosida95/uritemplate/v3 v3.0.2 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/oauth2 v0.36.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/alkdev/alknet/adapters => ../../adapters
	github.com/alkdev/alknet/call => ../../call
	github.com/alkdev/alknet/core => ../../core
	github.com/alkdev/alknet/iroh => ../../iroh
)
