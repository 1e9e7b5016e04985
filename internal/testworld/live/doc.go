// Package live runs the shipped sample pipelines (demo.WorkspaceRegistry,
// demo.UnityCatalog) against real Azure Databricks workspaces: `make live`.
//
// Everything a run creates is named with a run-unique prefix
// (<BRICKFERRY_LIVE_PREFIX>-<run id>-<sample>, see Plan) and deleted at the
// end; `make live-clean` deletes whatever a crashed run left (Sweep). Before
// it touches a workspace the suite prints its plan: what it creates, what it
// deletes, and the cost guard (one single-node cluster of the smallest node
// type per Databricks run, a timeout on every run and serving update).
//
// The workspaces come from environment variables (Targets, FromEnv): for
// each workspace the Databricks unified authentication variables with a
// prefix, e.g. BRICKFERRY_LIVE_DEV_DATABRICKS_HOST and
// BRICKFERRY_LIVE_DEV_DATABRICKS_TOKEN, or BRICKFERRY_LIVE_DEV_DATABRICKS_AUTH_TYPE=azure-cli
// for an Azure login. Nothing starts without BRICKFERRY_LIVE=1.
//
// Azure DevOps, Entra ID and Key Vault stay stand-ins (internal/testworld/azurestandin)
// here: the prod workspace's credentials reach the tasks through the
// stand-in Key Vault, as the sample pipeline reads them. The tasks are the
// real brickferry executable, run step by step by the local pipeline runner.
//
// The same code path runs in `make test` with its targets pointed at the
// emulated workspaces (TestLiveOnEmulator): only the addresses differ.
//
// `make live-devops` (DevOps, CheckProject, RunSamplePipeline) works in a
// real Azure DevOps project instead: it creates or updates a pipeline from
// the Unity Catalog sample, runs it there and checks each step's result,
// output variables and summary through the REST API; in `make test` it runs
// against the Azure DevOps stand-in, whose agent is the local runner.
// docs/live.md describes the prerequisites and the commands.
package live
