module github.com/alkdev/alknet/cli

go 1.26.0

require github.com/alkdev/alknet/core v0.0.0-00010101000000-000000000000

require (
	github.com/alkdev/alknet/adapters v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/call v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/iroh v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/vault v0.0.0-00010101000000-000000000000
	github.com/google/go-cmp v0.7.0
	github.com/modelcontextprotocol/go-sdk v1.8.0
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/prometheus/client_golang v1.25.0
	go.uber.org/goleak v1.3.0
	golang.org/x/term v0.48.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/decred/dcrd/dcrec/secp256k1/v4 v4.4.1 // indirect
	github.com/getkin/kin-openapi v0.153.0 // indirect
	github.com/go-openapi/jsonpointer v0.22.5 // indirect
	github.com/go-openapi/swag/jsonname v0.25.5 // indirect
	github.com/google/jsonschema-go v0.4.3 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	github.com/segmentio/asm v1.1.3 // indirect
	github.com/segmentio/encoding v0.5.4 // indirect
	github.com/tyler-smith/go-bip39 v1.1.0 // indirect
	github.com/yosida95/uritemplate/v3 v3.0.2 // indirect
	go.yaml.in/yaml/v4 v4.0.0 // indirect
	golang.org/x/oauth2 v0.37.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

require (
	github.com/quic-go/quic-go v0.65.0 // indirect
	github.com/urfave/cli/v3 v3.14.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace (
	github.com/alkdev/alknet/adapters => ../adapters
	github.com/alkdev/alknet/agent => ../agent
	github.com/alkdev/alknet/call => ../call
	github.com/alkdev/alknet/core => ../core
	github.com/alkdev/alknet/iroh => ../iroh
	github.com/alkdev/alknet/vault => ../vault
)
