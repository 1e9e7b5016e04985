// Package azurestandin is a local, stateful stand-in for the Azure services a
// Brickferry task talks to besides Azure Databricks, for tests and the demo:
//
//   - Microsoft Entra ID (login.microsoftonline.com): a tenant's OpenID
//     configuration and its client credentials token endpoint, accepting a
//     client secret, a certificate assertion or a pipeline OIDC token that
//     matches a federated credential, and refusing with Entra's error body
//     and AADSTS code (7000215 wrong secret, 7000222 expired secret, 700016
//     unknown app, 700213 no federated credential, 700027 bad certificate
//     assertion, 90002 unknown tenant);
//   - the managed identity endpoint of the Instance Metadata Service
//     (169.254.169.254, in-process only: see IMDSAddr);
//   - Azure DevOps (dev.azure.com/{org}): the location and resource area
//     lookups azure-devops-go-api makes first, the project's variable groups
//     (plain and Key Vault-linked, secret values null), and the pipeline's
//     OIDC endpoint, all behind the job's access token; with
//     Options.Pipelines, the project's Azure Repos Git repositories (local
//     folders), YAML pipelines (build definitions) and their runs, which
//     the PipelineAgent hook runs and the stand-in records as the agent
//     and server do: timeline, logs, summary attachments (pipelines.go);
//   - the Visual Studio Marketplace (marketplace.visualstudio.com) and the
//     organization's extension management (extmgmt.dev.azure.com): what
//     tfx-cli's `extension publish --share-with` calls, with the .vsix
//     checked as the Marketplace checks it, and installing the shared
//     extension, after which dev.azure.com serves its tasks at the route
//     the agent (and the launcher) download a task from (gallery.go);
//   - Azure Key Vault ({name}.vault.azure.net): the 401 challenge naming the
//     vault's tenant, then audience, tenant and reader checks;
//   - a forward proxy (HTTP CONNECT and absolute-URI requests, optional basic
//     credentials) for the executable, which cannot be handed a dialer.
//
// # Contract
//
//   - The services answer at their public names over HTTPS with
//     certificates of one CA (Options.CA; pass the emulated workspaces' CA so
//     that one AGENT_CAINFO file covers everything). Nothing is changed in
//     the process's DNS: in-process clients dial through DialContext, the
//     executable goes through the proxy (Env sets AGENT_PROXYURL and its
//     credentials, which package httpclient honours for every client).
//   - Names in Azure's domains that no stand-in serves do not resolve, so a
//     test or the demo never reaches the real Azure; other addresses (the
//     loopback emulators, Azurite) are dialled as they are.
//   - State lives in the process: apps, connections, groups and vaults come
//     from Options, AddVariableGroup and SetSecret. Tokens are RS256 JWTs
//     signed with keys made at New; an emulated workspace accepts the Entra
//     ones with EntraOptions.
//   - Requests are recorded without headers or bodies (Requests), proxy
//     targets too (Tunnelled); Secrets lists every secret held, for leak
//     checks.
//   - The package is for tests and the demo: the brickferry executable does
//     not link it.
//
// # Example
//
// A task that reads its workspace credentials from a Key Vault-linked
// variable group by name, run as the built executable:
//
//	ca, _ := emulator.NewCA()
//	ws := emulator.Start(t, emulator.Options{CA: ca}) // https://127.0.0.1:port
//	az := azurestandin.Start(t, azurestandin.Options{
//		CA:          ca,
//		ProxyUser:   "build-agent", ProxyPassword: "pr0xy-Pa55word!",
//		Connections: []azurestandin.Connection{{Name: "mlops-arm"}}, // service principal with a secret
//		VariableGroups: []azurestandin.VariableGroup{{
//			Name: "databricks-kv",
//			KeyVault: &azurestandin.GroupVault{Vault: "kv-mlops", Connection: "mlops-arm",
//				Secrets: map[string]string{"databricks-host": ws.URL(), "databricks-token": ws.Token}},
//		}},
//	})
//	arm := az.ServiceConnection("mlops-arm")
//	res := agenttest.Run{
//		Task: "MLflowPromote",
//		Inputs: map[string]string{"variableGroup": "databricks-kv", "azureSubscription": arm.ID,
//			"command": "transition", "modelName": "churn", "modelVersion": "1", "stage": "Staging"},
//		Endpoints: []agent.Endpoint{arm},
//		Env:       az.Env(), // collection, project, job token, OIDC endpoint, proxy, AGENT_CAINFO
//		JobToken:  az.JobToken,
//	}.Exec(t, agenttest.Executable(t))
//
// In-process, pass az.DialContext where a dialer is taken
// (auth.Resolver.DialContext) and leave the proxy variables out of Env.
// Options.Hosts (or AddHost) also serves a workspace at a real-looking name,
// e.g. adb-1234567890123456.7.azuredatabricks.net → the *emulator.Workspace.
//
// Not stood in: Azure Resource Manager (management.azure.com), Entra's
// authorization code and device flows, Key Vault writes and versions, the
// rest of the Azure DevOps API (pipeline permissions, approvals and checks,
// agent pools, Git contents: a run reads its repository's folder as is),
// the Marketplace's asynchronous validation (a version is valid at once)
// and its publisher management.
package azurestandin
