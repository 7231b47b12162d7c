module github.com/alkdev/alknet/call

go 1.26

require github.com/alkdev/alknet/core v0.0.0-00010101000000-000000000000

replace github.com/alkdev/alknet/core => ../core
