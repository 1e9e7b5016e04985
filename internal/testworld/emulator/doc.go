// Package emulator is a local, stateful Azure Databricks workspace for tests
// and the demo. There is no Databricks in CI: every task is tested against
// this package, so it aims at wire fidelity rather than convenience.
//
// # Contract
//
//   - Each Workspace listens on its own 127.0.0.1 port with its own state,
//     personal access token and workspace id. Start any number of them.
//   - Every request body and query is decoded strictly into
//     databricks-sdk-go v0.81.0's own request type for the route: an unknown
//     field, a wrong JSON type or an invalid enum value is 400
//     INVALID_PARAMETER_VALUE. Responses are encoded from the SDK's response
//     types. Errors use Databricks' {"error_code", "message"} shape with the
//     statuses the SDK's apierr package maps (RESOURCE_DOES_NOT_EXIST 404,
//     RESOURCE_ALREADY_EXISTS 400, INVALID_STATE 400, PERMISSION_DENIED 403,
//     REQUEST_LIMIT_EXCEEDED 429, TEMPORARILY_UNAVAILABLE 503; jobs/get,
//     runs/get and clusters/get answer 400 "... does not exist" which the SDK
//     turns into apierr.ErrResourceDoesNotExist). Routes the SDK has no type
//     for (artifact credentials, UC model version create/credentials/finalize,
//     model-version list-artifacts/get-signed-download-uri, logged-model
//     artifacts and credentials) have types here, defined from MLflow's
//     published protocol and cited where defined; so do the MLflow 3 fields
//     the SDK's types lack (model_id of a registered version, a run's
//     outputs).
//   - MLflow era (Options.MLflow, MLflowEra): an MLflow2 workspace (the
//     default) logs a training notebook's model under the run's artifacts
//     and has no logged-model routes; an MLflow3 workspace logs it as a
//     logged model (models:/m-<id>) with its own files and serves the
//     logged-model routes (loggedmodels.go).
//   - An unknown route answers 404 ENDPOINT_NOT_FOUND.
//   - SOURCES.md, beside this file, cites where each route and each rule it
//     enforces comes from (or says it is unverified); TestSources checks it
//     against the routes served (Workspace.Routes), databricks-sdk-go's
//     generated services, MLflow's protos and the routes the product calls.
//   - Auth: Bearer PAT (Workspace.Token); OAuth machine-to-machine
//     (Options.OAuthClients, /oidc/v1/token); Microsoft Entra ID tokens
//     (Options.Entra). No credentials → 401, invalid ones → 403.
//   - Time: runs, model registrations and serving deployments are derived
//     from Options.Clock when a request arrives. With a ManualClock nothing
//     moves until the test calls Advance.
//   - Artifacts: with Options.Blob (Azurite in tests) bytes live in a blob
//     container per workspace and clients get SAS URLs; without it they live
//     in memory and the signed-URL routes answer 501 NOT_IMPLEMENTED. The
//     URLs are Blob SAS URLs (AZURE_SAS_URI), or with Options.CredentialType
//     CredentialAzureADLS ADLS Gen2 SAS URLs (AZURE_ADLS_GEN2_SAS_URI) of the
//     workspace's own DFS endpoint over the same container (dfsfront.go),
//     handed out with a customer-provided key that every request must carry
//     when Options.CustomerKey is set. A workspace registry version keeps
//     its own copy of the files (model-versions/list-artifacts,
//     get-signed-download-uri); PurgeRun deletes a run and its artifacts for
//     good.
//   - Every answer carries X-Databricks-Org-Id, the workspace id.
//   - Every request is recorded (Requests, RequestsTo, Writes), faults are
//     injected from a seeded FaultPlan (SetFaults): before the handler runs,
//     or after it carried the request out, the answer lost
//     (FaultKind.AfterCommit).
//   - Job tasks are scripted per notebook path or task key (OnNotebook,
//     OnTask): duration, outcome, notebook output, and notebook-like effects
//     (Train creates an MLflow run with a model, Score writes a table).
//   - For the test's side of the wire: Workspace.Client is an SDK client for
//     setting up and checking state, Workspace.TrainedRun runs a training
//     notebook and returns its MLflow run id.
//
// # Example
//
//	clock := emulator.NewManualClock(time.Now())
//	ws := emulator.Start(t, emulator.Options{Clock: clock})
//	ws.OnNotebook("/Repos/mlops/notebooks/train", emulator.Behaviour{
//		Duration: 10 * time.Minute,
//		Train: &emulator.Train{
//			Experiment: "/Shared/churn",
//			ModelDir:   fixtures.ChurnModel(t), // internal/testworld/fixtures
//			Metrics:    map[string]float64{"auc": 0.91},
//		},
//	})
//	c, _ := client.New(ws.SDKConfig()) // PAT auth, no env, no ~/.databrickscfg
//	jobsAPI := jobs.NewJobs(c)
//	sub, _ := jobsAPI.Submit(ctx, jobs.SubmitRun{RunName: "train", IdempotencyToken: "build-42",
//		Tasks: []jobs.SubmitTask{{TaskKey: "train",
//			NotebookTask: &jobs.NotebookTask{NotebookPath: "/Repos/mlops/notebooks/train"}}}})
//	clock.Advance(11 * time.Minute)                  // PENDING → RUNNING → TERMINATING → TERMINATED
//	run, _ := jobsAPI.GetRun(ctx, jobs.GetRunRequest{RunId: sub.RunId})
//	out, _ := jobsAPI.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: run.Tasks[0].RunId})
//	// out.NotebookOutput.Result == `{"mlflow_run_id":"..."}`
//	_ = ws.Writes()                                  // count of requests that could change state
//
// cmd/brickferry-emulator starts a dev and a prod workspace for the demo.
package emulator
