// Package demo runs a sample pipeline (examples/azure-pipelines-uc.yml or
// examples/azure-pipelines.yml, see Sample) end to end on this machine: Azurite as blob storage, two emulated Azure Databricks
// workspaces (dev and prod) served over HTTPS with a throw-away CA, stand-ins
// for Azure DevOps, Microsoft Entra ID and Azure Key Vault reached through a
// local proxy (internal/azurestandin), and the real brickferry executable run
// step by step by the local pipeline runner with the environment the agent
// would give it. `make demo` and the end-to-end test both use it.
//
// Credentials, as the sample pipeline expects them:
//   - dev: the `databricks` variable group linked to the pipeline
//     (databricks-host-dev, secret databricks-token-dev), the reference
//     pipeline's way;
//   - prod: the group `databricks-prod`, linked to the Key Vault
//     kv-brickferry-prod and not linked to the pipeline, read by name through
//     the Azure DevOps REST API; its secrets are read from the vault with the
//     service connection `brickferry-prod` (workload identity federation), so
//     no production secret is ever a pipeline variable.
//
// Nothing here talks to Azure: the workspaces are internal/emulator, and the
// demo says so before it starts.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/databricks/databricks-sdk-go/service/sql"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/azurite"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

// Options configure a demo run.
type Options struct {
	Exe      string // the brickferry executable (dist/bin/<os>-<arch>/brickferry)
	Pipeline string // the pipeline file: Sample.File under the repository root
	// Sample names the models and tables of the pipeline (the zero Sample:
	// WorkspaceRegistry).
	Sample   Sample
	ModelDir string    // the model folder the emulated training notebook logs
	OutDir   string    // summaries, the CA certificate and work folders go here
	Out      io.Writer // the readable log
	// Verbose also prints the emulators' and Azurite's own logs.
	Verbose bool

	// Faults, when set, is applied to both workspaces for the pipeline run
	// (the prod workspace gets Seed+1) and lifted before the final state is
	// read back.
	Faults *emulator.FaultPlan
	// BlobFaults, when set, puts a fault-injecting proxy (azurite.FaultProxy)
	// with this plan in front of the blob store for every signed URL the
	// workspaces hand out (a plan with no faults only records the requests).
	BlobFaults *azurite.FaultPlan
	// Blob, when set, is an Azurite already running (tests share one between
	// runs); the demo starts its own otherwise.
	Blob *azurite.Server
	// TrainNotebook and Experiment, when set, are where the pipeline's
	// training notebook is and the experiment it logs to (TrainNotebook and
	// Experiment otherwise): the live suite's names.
	TrainNotebook, Experiment string
	// Fast shortens the emulated runs, registrations and deployments (to a
	// few hundred milliseconds) for suites that run the pipeline many times.
	Fast bool
	// Repositories, when set, are Azure Repos Git repositories of the Azure
	// DevOps stand-in (name → the folder standing for its main branch),
	// whose pipelines it runs when asked with Exe as the agent would
	// (StandInAgent): the live Azure DevOps suite's test.
	Repositories map[string]string
}

// Names used by the sample pipeline and checked by the end-to-end test.
const (
	TrainNotebook = "/Repos/brickferry/churn/examples/notebooks/train"
	Experiment    = "/Shared/churn"
	Endpoint      = "churn"
	ScoredRows    = 9960 // rows of examples/data/customer.csv
	// WarehouseID is the prod workspace's SQL warehouse, with which the
	// checks count the scored rows (the sample pipelines name none).
	WarehouseID = "8f2e1c0a9b3d4e5f"
)

// ProdConnection is the Azure Resource Manager service connection the prod
// steps use to read the databricks-prod group's Key Vault.
const ProdConnection = "brickferry-prod"

// World is what the demo started: the two workspaces, the blob store and the
// Azure stand-ins.
type World struct {
	Sample    Sample
	Dev, Prod *emulator.Workspace
	Blob      *azurite.Server
	BlobProxy *azurite.FaultProxy // nil without Options.BlobFaults
	Azure     *azurestandin.Azure
	CA        *emulator.CA // signs the workspaces' and stand-ins' certificates
	CAFile    string
}

// Report is what the demo ran and the state it left.
type Report struct {
	Result  *pipeline.Result
	Secrets []string // every secret the run knew of, for tests that scan output
	World   *World
}

// Run starts everything, runs the pipeline and prints the final state. The
// caller stops the world with Close.
func Run(ctx context.Context, opts Options) (*Report, func(), error) {
	out := opts.Out
	fmt.Fprintln(out, "Brickferry demo: the sample pipeline against two EMULATED Azure Databricks workspaces.")
	fmt.Fprintln(out, "Nothing here talks to Azure; the brickferry executable is the real one.")
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, func() {}, err
	}
	world, stop, err := StartWorld(ctx, opts)
	if err != nil {
		return nil, stop, err
	}
	p, err := pipeline.Load(opts.Pipeline)
	if err != nil {
		return nil, stop, err
	}
	work, err := os.MkdirTemp("", "brickferry-demo-")
	if err != nil {
		return nil, stop, err
	}
	stopAll := func() { stop(); _ = os.RemoveAll(work) }
	runner := NewRunner(opts.Exe, world.Azure, world.devCredentials(), work, opts.OutDir, out)
	fmt.Fprintf(out, "\ndev workspace  %s\nprod workspace %s\nblob storage   %s (Azurite)\nAzure DevOps   %s, Entra ID and Key Vault stand-ins through the proxy %s\n",
		world.Dev.URL(), world.Prod.URL(), world.Blob.BlobEndpoint, world.Azure.CollectionURI, world.Azure.ProxyURL)
	if opts.Faults != nil {
		dev, prod := *opts.Faults, *opts.Faults
		prod.Seed++
		world.Dev.SetFaults(dev)
		world.Prod.SetFaults(prod)
	}
	started := time.Now()
	res, err := runner.Run(ctx, p)
	world.Dev.SetFaults(emulator.FaultPlan{})
	world.Prod.SetFaults(emulator.FaultPlan{})
	report := &Report{Result: res, Secrets: runner.Secrets(), World: world}
	if err != nil {
		return report, stopAll, err
	}
	fmt.Fprintf(out, "\n=== Pipeline %s in %s\n", res.Result, time.Since(started).Round(100*time.Millisecond))
	if err := world.printState(ctx, out); err != nil {
		return report, stopAll, err
	}
	fmt.Fprintf(out, "\nSummary tabs written to %s\n", opts.OutDir)
	return report, stopAll, nil
}

// StartWorld starts what Run runs the pipeline against: Azurite (unless
// opts.Blob), the two emulated workspaces with the training and scoring
// scripted, and the Azure stand-ins. The caller stops it with the func.
func StartWorld(ctx context.Context, opts Options) (*World, func(), error) {
	var closers []func()
	stop := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	logs := io.Discard
	if opts.Verbose {
		logs = opts.Out
	}
	blob := opts.Blob
	if blob == nil {
		var err error
		blob, err = azurite.Run(ctx, logs)
		if err != nil {
			return nil, stop, fmt.Errorf("starting Azurite (run `npm ci` first): %w", err)
		}
		closers = append(closers, blob.Close)
	}
	account := emulator.BlobAccount{Endpoint: blob.BlobEndpoint, AccountName: blob.AccountName, AccountKey: blob.AccountKey}
	var proxy *azurite.FaultProxy
	if opts.BlobFaults != nil {
		var err error
		proxy, err = azurite.NewFaultProxyPlan(blob.BlobEndpoint, *opts.BlobFaults)
		if err != nil {
			return nil, stop, err
		}
		closers = append(closers, proxy.Close)
		account.ClientEndpoint = proxy.Endpoint
	}
	timing := struct{ pending, run, terminating, registration, ready, update, job time.Duration }{
		500 * time.Millisecond, 2 * time.Second, 300 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 2 * time.Second, 3 * time.Second,
	}
	if opts.Fast {
		timing = struct{ pending, run, terminating, registration, ready, update, job time.Duration }{
			100 * time.Millisecond, 300 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond,
		}
	}
	ca, err := emulator.NewCA()
	if err != nil {
		return nil, stop, err
	}
	caFile := filepath.Join(opts.OutDir, "emulator-ca.pem")
	if err := ca.WriteFile(caFile); err != nil {
		return nil, stop, err
	}
	world := &World{Sample: opts.Sample.orDefault(), Blob: blob, BlobProxy: proxy, CA: ca, CAFile: caFile}
	for _, name := range []string{"dev", "prod"} {
		ws, err := emulator.New(emulator.Options{
			Name: name, CA: ca, MLflow: world.Sample.MLflow,
			Blob:       &account,
			RunPending: timing.pending, RunDuration: timing.run, RunTerminating: timing.terminating,
			RegistrationDelay: timing.registration, ServingReady: timing.ready, ServingUpdate: timing.update,
		})
		if err != nil {
			return nil, stop, err
		}
		closers = append(closers, ws.Close)
		if name == "dev" {
			world.Dev = ws
		} else {
			world.Prod = ws
		}
	}
	standIns := StandIns(ca, opts.OutDir, world.devCredentials(), Credentials{Host: world.Prod.URL(), Token: world.Prod.Token})
	if opts.Repositories != nil {
		standIns.Pipelines = azurestandin.PipelineOptions{Repositories: opts.Repositories, Agent: StandInAgent(opts.Exe, world.devCredentials())}
	}
	az, err := azurestandin.New(standIns)
	if err != nil {
		return nil, stop, err
	}
	closers = append(closers, az.Close)
	world.Azure = az
	notebook, experiment := TrainNotebook, Experiment
	if opts.TrainNotebook != "" {
		notebook, experiment = opts.TrainNotebook, opts.Experiment
	}
	world.Dev.OnNotebook(notebook, emulator.Behaviour{Duration: timing.job, Train: &emulator.Train{
		Experiment: experiment, RunName: "churn-xgboost", ModelDir: opts.ModelDir,
		Params:  map[string]string{"max_depth": "4", "learning_rate": "0.1", "n_estimators": "200"},
		Metrics: map[string]float64{"auc": 0.874, "accuracy": 0.842, "f1": 0.611, "precision": 0.702, "recall": 0.541},
	}})
	world.Prod.OnAnyTask(emulator.Behaviour{Duration: timing.job, Score: &emulator.Score{Rows: ScoredRows}})
	world.Prod.AddWarehouse(sql.GetWarehouseResponse{Id: WarehouseID, Name: "prod-sql"})
	return world, stop, nil
}

// Credentials are a workspace's URL and a token the tasks use with it.
type Credentials struct{ Host, Token string }

func (w *World) devCredentials() Credentials {
	return Credentials{Host: w.Dev.URL(), Token: w.Dev.Token}
}

// PipelineGroup is the pipeline's `databricks` group, as a linked group
// gives it to the job: the dev host as a variable, its token as a secret
// variable.
func PipelineGroup(dev Credentials) map[string]pipeline.GroupVariable {
	return map[string]pipeline.GroupVariable{
		"databricks-host-dev":  {Value: dev.Host},
		"databricks-token-dev": {Value: dev.Token, Secret: true},
	}
}

// StandIns are the Azure DevOps, Entra ID and Key Vault stand-ins the
// sample pipelines need, their certificates signed by ca and the CA file
// written to dir:
//   - the `databricks` group as the library holds it too, which the tasks
//     read through the Azure DevOps API to tie the job's variables to the
//     group they name (package auth): linking a group to a pipeline does
//     not take it out of the library;
//   - the group `databricks-prod`, linked to the vault kv-brickferry-prod
//     holding prod's host and token;
//   - the service connection brickferry-prod (workload identity
//     federation), which may read that vault.
func StandIns(ca *emulator.CA, dir string, dev, prod Credentials) azurestandin.Options {
	linked := azurestandin.VariableGroup{Name: "databricks", Variables: map[string]azurestandin.Variable{}}
	for k, v := range PipelineGroup(dev) {
		linked.Variables[k] = azurestandin.Variable{Value: v.Value, Secret: v.Secret}
	}
	return azurestandin.Options{
		CA: ca, Dir: dir,
		ProxyUser: "build-agent", ProxyPassword: "demo-proxy-password",
		Connections: []azurestandin.Connection{{Name: ProdConnection, Scheme: azurestandin.SchemeWorkloadIdentity}},
		VariableGroups: []azurestandin.VariableGroup{linked, {Name: "databricks-prod", KeyVault: &azurestandin.GroupVault{
			Vault: "kv-brickferry-prod", Connection: ProdConnection,
			Secrets: map[string]string{"databricks-host": prod.Host, "databricks-token": prod.Token},
		}}},
	}
}

// NewRunner is the local pipeline runner for a sample pipeline: the
// executable exe, the `databricks` group with dev's credentials, the
// brickferry-prod connection of az, and the environment the agent gives
// every step (system variables, the job's Azure DevOps connection, the
// proxy and the CA file of az). BrickferryTools is skipped: the runner
// already has the executable.
func NewRunner(exe string, az *azurestandin.Azure, dev Credentials, work, summaryDir string, out io.Writer) *pipeline.Runner {
	return &pipeline.Runner{
		Exe:         exe,
		Groups:      map[string]map[string]pipeline.GroupVariable{"databricks": PipelineGroup(dev)},
		Connections: map[string]agent.Endpoint{ProdConnection: az.ServiceConnection(ProdConnection)},
		BaseEnv:     agentEnv(az, work),
		WorkDir:     work,
		SummaryDir:  summaryDir,
		Out:         out,
		Skip:        map[string]string{"BrickferryTools": "it installs brickferry on an agent; the local runner runs " + exe},
	}
}

// StandInAgent is the agent of the Azure DevOps stand-in's pool: it runs a
// queued run's pipeline with NewRunner (the executable exe, the `databricks`
// group with dev's credentials) in the job's work folder, with the run's
// build id, number, definition and branch, and System.Debug when the run
// was queued with it.
func StandInAgent(exe string, dev Credentials) azurestandin.PipelineAgent {
	return func(ctx context.Context, az *azurestandin.Azure, job azurestandin.AgentJob) (azurestandin.AgentResult, error) {
		if err := os.MkdirAll(job.WorkDir, 0o755); err != nil {
			return azurestandin.AgentResult{}, fmt.Errorf("the agent's work folder: %w", err)
		}
		r := NewRunner(exe, az, dev, job.WorkDir, "", io.Discard)
		for k, v := range map[string]string{
			"BUILD_BUILDID": strconv.Itoa(job.BuildID), "BUILD_BUILDNUMBER": job.BuildNumber,
			"BUILD_DEFINITIONNAME": job.DefinitionName, "SYSTEM_DEFINITIONID": strconv.Itoa(job.DefinitionID),
			"BUILD_SOURCEBRANCH": job.SourceBranch, "SYSTEM_DEBUG": job.Variables["system.debug"],
		} {
			if v != "" {
				r.BaseEnv[k] = v
			}
		}
		res, err := r.Run(ctx, job.Pipeline)
		return azurestandin.AgentResult{Result: res, Secrets: r.Secrets()}, err
	}
}

// agentEnv is what the agent sets for every step of this run: system
// variables, the job's Azure DevOps connection, the proxy and the CA.
func agentEnv(az *azurestandin.Azure, work string) map[string]string {
	env := map[string]string{
		"HOME":                 work,
		"AGENT_OS":             "Linux",
		"AGENT_OSARCHITECTURE": "X64",
		"SYSTEM_HOSTTYPE":      "build",
		"SYSTEM_PLANID":        "2f0e3c43-5ad6-4f1f-9d6c-1d1f1e2f3a4b",
		"SYSTEM_JOBATTEMPT":    "1",
		"BUILD_BUILDID":        "1001",
		"BUILD_BUILDNUMBER":    "20261125.1",
		"BUILD_DEFINITIONNAME": "churn-mlops",
		"SYSTEM_DEFINITIONID":  "12",
		"BUILD_SOURCEVERSION":  "6e4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
		"BUILD_SOURCEBRANCH":   "refs/heads/main",
		"BUILD_REPOSITORY_URI": "https://dev.azure.com/contoso/mlops/_git/churn",
	}
	for k, v := range az.Env() {
		env[k] = v
	}
	return env
}

// printState prints the model versions in both workspaces, the scored table
// and the serving endpoint, read back through the Databricks API.
func (w *World) printState(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "\n=== Final state (read back from the emulated workspaces)")
	for _, x := range []struct {
		ws    *emulator.Workspace
		model string
	}{{w.Dev, w.Sample.DevModel}, {w.Prod, w.Sample.ProdModel}} {
		versions, err := ModelVersions(ctx, x.ws.SDKConfig(), x.model)
		if err != nil {
			return fmt.Errorf("%s workspace: %w", x.ws.Name(), err)
		}
		where := "stage"
		if inUnityCatalog(x.model) {
			where = "aliases"
		}
		fmt.Fprintf(out, "\n%s workspace, model %s:\n  %-8s %-22s %-7s %s\n", x.ws.Name(), x.model, "version", where, "status", "lineage")
		for _, v := range versions {
			fmt.Fprintf(out, "  %-8s %-22s %-7s %s\n", v.Version, v.Where, v.Status, lineage(v.Tags))
		}
	}
	table := w.Sample.OutputTable
	rows, version, ok := w.Prod.Table(table)
	if ok {
		fmt.Fprintf(out, "\nprod table %s: %d rows, Delta version %d\n", table, rows, version)
	} else {
		fmt.Fprintf(out, "\nprod table %s: not written\n", table)
	}
	c, err := client.New(w.Prod.SDKConfig())
	if err != nil {
		return err
	}
	ep, err := serving.NewServingEndpoints(c).Get(ctx, serving.GetServingEndpointRequest{Name: Endpoint})
	if err != nil {
		fmt.Fprintf(out, "prod serving endpoint %s: %v\n", Endpoint, err)
		return nil
	}
	var served []string
	if ep.Config != nil {
		for _, e := range ep.Config.ServedEntities {
			served = append(served, e.EntityName+" v"+e.EntityVersion)
		}
	}
	fmt.Fprintf(out, "prod serving endpoint %s: %s, serving %s\n", Endpoint, ep.State.Ready, strings.Join(served, ", "))
	return nil
}

func lineage(tags map[string]string) string {
	var parts []string
	for _, k := range []string{"brickferry_build_id", "brickferry_source_workspace", "brickferry_source_version"} {
		if v, ok := tags[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
