module github.com/alkdev/alknet/agent

go 1.26

require (
	github.com/alkdev/alknet/call v0.0.0-00010101000000-000000000000
	github.com/alkdev/alknet/core v0.0.0-00010101000000-000000000000
)

replace (
	github.com/alkdev/alknet/call => ../call
	github.com/alkdev/alknet/core => ../core
)
