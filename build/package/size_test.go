package main

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exeBudget is the most the linux/amd64 executable may weigh. Five platforms
// of about this size, brotli-compressed, keep the .vsix under Azure DevOps
// Server's default 26,214,400-byte upload limit (docs/packaging.md, "Size"):
// 16.8 MB gave a 23.6 MB .vsix. An executable over the budget means a new
// dependency links far more than it should (Apache Arrow through azblob's
// container client did once, html/template through grpc's tracing another).
const exeBudget = 18 << 20

// TestExecutableSize checks the executable make builds and ships
// (dist/bin/linux-amd64, not BRICKFERRY_EXE, which in make test is the
// larger build with the race detector): it carries the grpcnotrace tag and
// stays within exeBudget.
func TestExecutableSize(t *testing.T) {
	exe := filepath.Join(repoRoot(t), "dist", "bin", "linux-amd64", "brickferry")
	info, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatalf("%s: %v (make build-host writes it; make test does)", exe, err)
	}
	tags := ""
	for _, s := range info.Settings {
		if s.Key == "-tags" {
			tags = s.Value
		}
	}
	if !strings.Contains(","+tags+",", ",grpcnotrace,") {
		t.Errorf("%s was built with tags %q; build it with make (TAGS := grpcnotrace) so grpc leaves out golang.org/x/net/trace", exe, tags)
	}
	st, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > exeBudget {
		t.Errorf("%s is %d bytes, over the %d-byte budget: find what a new dependency links (go build -ldflags=-dumpdep, go tool nm -size)", exe, st.Size(), exeBudget)
	}
}
