module github.com/alkdev/alknet/iroh

go 1.26.0

require github.com/alkdev/alknet/core v0.0.0-00010101000000-000000000000

require (
	github.com/quic-go/quic-go v0.65.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/alkdev/alknet/core => ../core
