// Command brickferry-emulator starts a local dev and prod Azure Databricks
// workspace (internal/testworld/emulator) to try the brickferry executable by
// hand: served over HTTPS with a throw-away CA (brickferry, like Azure
// Databricks, speaks https only), backed by Azurite when it is installed
// (npm ci). It writes the CA certificate and a Databricks config file with a
// profile per workspace, prints shell lines that run brickferry against
// them, and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "", "where to write ca.pem and databrickscfg (default: a temporary folder removed at exit)")
	flag.StringVar(&o.modelDir, "model", "", "the MLflow model folder the emulated training notebook logs (default: examples/demo/churn-model of this repository)")
	flag.BoolVar(&o.fast, "fast", false, "runs, registrations and deployments take a fraction of a second instead of real-looking seconds")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, o, os.Stdout, os.Stderr))
}

type options struct {
	dir      string
	modelDir string
	fast     bool
}

// The emulated training notebook: a run of it logs an MLflow run with the
// model folder, as examples/notebooks/train.py does on a real workspace.
const (
	trainNotebook = "/Shared/emulator/train"
	experiment    = "/Shared/emulator/churn"
	modelName     = "churn"
)

// run starts the workspaces, prints how to use them to out and blocks until
// ctx ends. It returns the process exit code.
func run(ctx context.Context, o options, out, errOut io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(errOut, "brickferry-emulator: %v\n", err)
		return 1
	}
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "brickferry-emulator-")
		if err != nil {
			return fail(err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	modelDir := o.modelDir
	if modelDir == "" {
		if root, err := azurite.RepoRoot(); err == nil {
			modelDir = filepath.Join(root, "examples", "demo", "churn-model")
		}
	}
	if _, err := os.Stat(filepath.Join(modelDir, "MLmodel")); err != nil {
		return fail(fmt.Errorf("-model %q is not an MLflow model folder (no MLmodel file): %w", modelDir, err))
	}

	var blob *emulator.BlobAccount
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	az, err := azurite.Run(startCtx, io.Discard)
	cancel()
	if err != nil {
		fmt.Fprintf(errOut, "brickferry-emulator: Azurite not started (%v); artifacts stay in memory and signed-URL routes answer 501, so MLflowPromote copy cannot run\n", err)
	} else {
		defer az.Close()
		blob = &emulator.BlobAccount{Endpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	}

	ca, err := emulator.NewCA()
	if err != nil {
		return fail(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteFile(caFile); err != nil {
		return fail(err)
	}
	timing := emulator.Options{RunPending: time.Second, RunDuration: 2 * time.Second, RunTerminating: time.Second,
		RegistrationDelay: time.Second, ServingReady: 5 * time.Second, ServingUpdate: 3 * time.Second}
	if o.fast {
		timing = emulator.Options{RunPending: 100 * time.Millisecond, RunDuration: 300 * time.Millisecond, RunTerminating: 100 * time.Millisecond,
			RegistrationDelay: 200 * time.Millisecond, ServingReady: 300 * time.Millisecond, ServingUpdate: 300 * time.Millisecond}
	}
	var profiles strings.Builder
	workspaces := map[string]*emulator.Workspace{}
	for _, name := range []string{"dev", "prod"} {
		opts := timing
		opts.Name, opts.CA, opts.Blob = name, ca, blob
		opts.OAuthClients = map[string]string{name + "-sp": name + "-sp-secret"}
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(errOut, format+"\n", args...) }
		ws, err := emulator.New(opts)
		if err != nil {
			return fail(err)
		}
		defer ws.Close()
		workspaces[name] = ws
		fmt.Fprintf(&profiles, "[%s]\nhost  = %s\ntoken = %s\n\n", name, ws.URL(), ws.Token)
		fmt.Fprintf(&profiles, "[%s-oauth]\nhost          = %s\nclient_id     = %s-sp\nclient_secret = %s-sp-secret\n\n", name, ws.URL(), name, name)
	}
	cfgFile := filepath.Join(dir, "databrickscfg")
	if err := os.WriteFile(cfgFile, []byte(profiles.String()), 0o600); err != nil {
		return fail(err)
	}
	dev := workspaces["dev"]
	if err := addTrainNotebook(ctx, dev, modelDir); err != nil {
		return fail(err)
	}

	for _, name := range []string{"dev", "prod"} {
		ws := workspaces[name]
		fmt.Fprintf(out, "%s workspace %s (id %d), token %s, OAuth client %s-sp / %s-sp-secret\n", name, ws.URL(), ws.WorkspaceID, ws.Token, name, name)
	}
	if az != nil {
		fmt.Fprintf(out, "Azurite blob endpoint %s (account %s)\n", az.BlobEndpoint, az.AccountName)
	}
	fmt.Fprintf(out, "CA certificate %s; profiles dev, dev-oauth, prod, prod-oauth in %s\n", caFile, cfgFile)
	fmt.Fprintf(out, "\nTry brickferry (make build-host, then put dist/bin/linux-amd64 on PATH); paste into a shell:\n\n")
	fmt.Fprint(out, commands(caFile, cfgFile, dev, az != nil))
	fmt.Fprintln(out, "\nPress Ctrl+C to stop.")
	<-ctx.Done()
	fmt.Fprintln(out, "stopping")
	return 0
}

// commands are the shell lines printed for trying the executable: train in
// dev, register the run's model, (with Azurite) copy it to prod, gate it
// with an OAuth client, move it to Staging with DATABRICKS_HOST and
// DATABRICKS_TOKEN.
func commands(caFile, cfgFile string, dev *emulator.Workspace, copyWorks bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "export AGENT_CAINFO=%s DATABRICKS_CONFIG_FILE=%s\n", shellQuote(caFile), shellQuote(cfgFile))
	fmt.Fprintf(&b, "brickferry DatabricksTrain --profile dev --input notebookPath=%s --input workers=1 --input mlflowExperiment=%s | tee train.log\n", trainNotebook, experiment)
	fmt.Fprintf(&b, "brickferry MLflowPromote --profile dev --input command=register --input modelName=%s --input modelUri=\"$(sed -n 's/^output modelUri = //p' train.log)\"\n", modelName)
	if copyWorks {
		fmt.Fprintf(&b, "brickferry MLflowPromote --profile dev --target-profile prod --input command=copy --input modelName=%s --input modelVersion=1\n", modelName)
	}
	fmt.Fprintf(&b, "# an OAuth client (service principal) instead of a token:\n")
	fmt.Fprintf(&b, "brickferry MLflowPromote --profile dev-oauth --input command=gate --input modelName=%s --input modelVersion=1 --input stage=Production --input metricName=auc\n", modelName)
	fmt.Fprintf(&b, "# the dev workspace through environment variables instead of a profile:\n")
	fmt.Fprintf(&b, "DATABRICKS_HOST=%s DATABRICKS_TOKEN=%s brickferry MLflowPromote --input command=transition --input modelName=%s --input modelVersion=1 --input stage=Staging\n", dev.URL(), dev.Token, modelName)
	return b.String()
}

// addTrainNotebook imports a notebook at trainNotebook (through the
// workspace import API, as a user or a Git folder would put it there) whose
// runs log an MLflow run with the model folder.
func addTrainNotebook(ctx context.Context, ws *emulator.Workspace, modelDir string) error {
	c, err := client.New(ws.SDKConfig())
	if err != nil {
		return err
	}
	api := workspace.NewWorkspace(c)
	if err := api.Mkdirs(ctx, workspace.Mkdirs{Path: filepath.ToSlash(filepath.Dir(trainNotebook))}); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(trainNotebook), err)
	}
	source := "# Databricks notebook source\n# brickferry-emulator: runs of this notebook log an MLflow run with the model " + filepath.Base(modelDir) + "\n"
	err = api.Import(ctx, workspace.Import{
		Path: trainNotebook, Format: workspace.ImportFormatSource, Language: workspace.LanguagePython,
		Content: base64.StdEncoding.EncodeToString([]byte(source)), Overwrite: true,
	})
	if err != nil {
		return fmt.Errorf("importing %s: %w", trainNotebook, err)
	}
	ws.OnNotebook(trainNotebook, emulator.Behaviour{Train: &emulator.Train{
		Experiment: experiment, RunName: "churn-xgboost", ModelDir: modelDir,
		Params:  map[string]string{"max_depth": "4", "learning_rate": "0.1"},
		Metrics: map[string]float64{"auc": 0.874, "accuracy": 0.842},
	}})
	return nil
}

// shellQuote quotes a path for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if strings.ContainsAny(s, " '\"$`\\!*?&;|<>()") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
