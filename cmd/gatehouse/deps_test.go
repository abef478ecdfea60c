package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// gatehouse must not link gRPC: every linked package's init runs, and its
// code and tables are faulted into memory, in every gatehouse process.
// gRPC came in once through the OTLP/HTTP trace exporter (whose collector
// package also holds the gRPC service); internal/observe/otlphttp.go is the
// transport that avoids it. If this fails, `go mod why -m` names the path.
func TestBinaryDoesNotLinkGRPC(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "list", "-deps", ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, banned := range []string{"google.golang.org/grpc", "github.com/grpc-ecosystem/grpc-gateway", "google.golang.org/genproto"} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("cmd/gatehouse links %s", p)
			}
		}
	}
}
