module github.com/gatehouse-proxy/gatehouse

go 1.26.8

require (
	github.com/coder/websocket v1.8.15 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
