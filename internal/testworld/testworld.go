// Package testworld is everything the tests, the benchmarks and the demo run
// against, fenced off from the product: the shipped executable never links a
// package under this folder (the depguard rule "product" in .golangci.yml,
// run by make lint, and build/package TestExecutableLinksNoTestWorld).
//
//	emulator      a stateful Databricks workspace over HTTP (two instances = dev and prod)
//	azurestandin  Entra ID, the pipeline's OIDC issuer, Azure DevOps REST and Key Vault
//	azurite       runs Microsoft's Azure Storage emulator (npm) behind signed artifact URLs
//	artifactstest file trees and fake stores for the artifact copier
//	agenttest     runs a task as the agent does and reads its ##vso output back
//	pipeline      runs an azure-pipelines.yml with conditions and output variables
//	demo          the sample pipeline end to end (make demo) and its fault suites
//	suites        the cross-task suites: bad inputs, cancellation, crashes, concurrency
//	fixtures      a real logged MLflow model and the reference pipeline's job files
//
// This package itself holds what every test package shares: Main.
package testworld

import (
	"os"
	"testing"

	"github.com/brickferry/brickferry/internal/auth"
)

// Main is the TestMain of every package whose tests talk to emulated
// services: it quiets databricks-sdk-go's global logger the way the
// executable does (auth.QuietSDKLogger), then runs the tests and exits.
func Main(m *testing.M) {
	auth.QuietSDKLogger()
	os.Exit(m.Run())
}
