package datasource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/datasource"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// root is the repository's root, from this package's folder.
const root = "../../.."

// workspace is an emulated workspace with two of everything the pick lists
// offer, and the items each data source must give for it.
func workspace(t *testing.T) (*emulator.Workspace, map[string][]datasource.Item) {
	t.Helper()
	clock := emulator.NewManualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	ws := emulator.Start(t, emulator.Options{Clock: clock})
	ctx := context.Background()
	c := ws.Client(t)

	ws.AddCluster(compute.ClusterDetails{ClusterId: "0923-164208-meows279", ClusterName: "mlops-shared", State: compute.StateRunning})
	ws.AddCluster(compute.ClusterDetails{ClusterId: "1107-090000-abcd1234", ClusterName: "gpu <train> & score", State: compute.StateTerminated})
	ws.AddWarehouse(sql.GetWarehouseResponse{Id: "a1b2c3d4e5f60718", Name: "Serverless Starter"})
	// A name with a double quote would break the resultTemplate's JSON (it
	// renders {"DisplayValue": "reporting "prod""}): Azure DevOps documents no
	// JSON-escaping helper for it, so such a name is a known limit (see
	// docs/credentials.md), not modelled here.
	ws.AddWarehouse(sql.GetWarehouseResponse{Id: "f0e1d2c3b4a59687", Name: "reporting 'prod'"})

	want := map[string][]datasource.Item{
		"DatabricksClusters": {
			{Value: "0923-164208-meows279", DisplayValue: "mlops-shared (0923-164208-meows279)"},
			{Value: "1107-090000-abcd1234", DisplayValue: "gpu <train> & score (1107-090000-abcd1234)"},
		},
		"DatabricksWarehouses": {
			{Value: "a1b2c3d4e5f60718", DisplayValue: "Serverless Starter (a1b2c3d4e5f60718)"},
			{Value: "f0e1d2c3b4a59687", DisplayValue: "reporting 'prod' (f0e1d2c3b4a59687)"},
		},
	}
	api := jobs.NewJobs(c)
	for _, name := range []string{"churn-train", "churn-score"} {
		j, err := api.Create(ctx, jobs.CreateJob{Name: name, Tasks: []jobs.Task{{
			TaskKey: "main", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Shared/" + name}, ExistingClusterId: "0923-164208-meows279",
		}}})
		require.NoError(t, err)
		clock.Advance(time.Second)
		// jobs/list answers the newest first
		want["DatabricksJobs"] = append([]datasource.Item{{Value: fmt.Sprint(j.JobId), DisplayValue: fmt.Sprintf("%s (%d)", name, j.JobId)}}, want["DatabricksJobs"]...)
	}
	for _, name := range []string{"churn", "fraud"} {
		_, err := catalog.NewRegisteredModels(c).Create(ctx, catalog.CreateRegisteredModelRequest{CatalogName: "main", SchemaName: "ml", Name: name})
		require.NoError(t, err)
		want["DatabricksRegisteredModels"] = append(want["DatabricksRegisteredModels"], datasource.Item{Value: "main.ml." + name, DisplayValue: "main.ml." + name})
	}
	// Serving endpoints serve a workspace registry model version.
	version := ws.RegisterModel(t, "churn")
	clock.Advance(time.Minute)
	for _, name := range []string{"churn-prod", "churn-staging"} {
		_, err := serving.NewServingEndpoints(c).Create(ctx, serving.CreateServingEndpoint{Name: name, Config: &serving.EndpointCoreConfigInput{
			ServedEntities: []serving.ServedEntityInput{{EntityName: "churn", EntityVersion: version, WorkloadSize: "Small", ScaleToZeroEnabled: true}},
		}})
		require.NoError(t, err)
		want["DatabricksServingEndpoints"] = append(want["DatabricksServingEndpoints"], datasource.Item{Value: name, DisplayValue: name})
	}
	return ws, want
}

// endpointType reads the Databricks service connection type of the
// extension's manifest.
func endpointType(t *testing.T) *datasource.EndpointType {
	t.Helper()
	et, err := datasource.ReadEndpointType(filepath.Join(root, "vss-extension.json"), "databricks")
	require.NoError(t, err)
	return et
}

// pat is a Databricks service connection with a personal access token, as
// Azure DevOps holds it: the URL as its help text shows it, no trailing slash.
func pat(ws *emulator.Workspace, token string) datasource.Endpoint {
	return datasource.Endpoint{URL: ws.URL(), Scheme: datasource.SchemeToken, Parameters: map[string]string{"apitoken": token}}
}

// TestEveryBinding: every dataSourceBinding of every task, evaluated as
// Azure DevOps evaluates it against a connection to the emulated workspace,
// lists exactly the workspace's items; every data source but TestConnection
// is bound somewhere, and every binding's target is an editable pick list
// bound through a Databricks connection input.
func TestEveryBinding(t *testing.T) {
	ws, want := workspace(t)
	et := endpointType(t)
	used := map[string]bool{}
	matches, err := filepath.Glob(filepath.Join(root, "tasks", "*", "task.json"))
	require.NoError(t, err)
	n := 0
	for _, taskJSON := range matches {
		bindings, err := datasource.ReadBindings(taskJSON)
		require.NoError(t, err)
		inputs := taskInputs(t, taskJSON)
		for _, b := range bindings {
			n++
			target := inputs[b.Target]
			assert.Equal(t, "pickList", target.Type, "%s: %s", taskJSON, b.Target)
			assert.Equal(t, "True", target.Properties["EditableOptions"], "%s: %s stays editable, so YAML users can type", taskJSON, b.Target)
			conn := strings.TrimSuffix(strings.TrimPrefix(b.EndpointID, "$("), ")")
			assert.Equal(t, "connectedService:databricks", inputs[conn].Type, "%s: %s is bound through %s", taskJSON, b.Target, b.EndpointID)
			used[b.DataSourceName] = true
			t.Run(filepath.Base(filepath.Dir(taskJSON))+"/"+b.Target, func(t *testing.T) {
				require.Contains(t, want, b.DataSourceName, "a data source the test does not know")
				items, err := et.Items(context.Background(), http.DefaultClient, b, pat(ws, ws.Token))
				require.NoError(t, err)
				assert.Equal(t, want[b.DataSourceName], items)
			})
		}
	}
	assert.Equal(t, 8, n, "the bindings of DatabricksTrain, BatchScore, MLflowPromote and ModelServe")
	for _, s := range et.DataSources {
		if s.Name != "TestConnection" {
			assert.True(t, used[s.Name], "data source %s is bound by no task", s.Name)
		}
	}
}

// input is an input of a task.json, as far as the bindings concern it.
type input struct {
	Type       string            `json:"type"`
	Properties map[string]string `json:"properties"`
}

func taskInputs(t *testing.T, taskJSON string) map[string]input {
	t.Helper()
	b, err := os.ReadFile(taskJSON)
	require.NoError(t, err)
	var def struct {
		Inputs []struct {
			Name string `json:"name"`
			input
		} `json:"inputs"`
	}
	require.NoError(t, json.Unmarshal(b, &def))
	out := map[string]input{}
	for _, in := range def.Inputs {
		out[in.Name] = in.input
	}
	return out
}

// TestVerify: the connection's Verify button (the TestConnection data
// source) succeeds with a valid token and fails with a revoked one, and the
// token goes as a bearer token (Databricks refuses the token scheme's
// default header, the bare token).
func TestVerify(t *testing.T) {
	ws, _ := workspace(t)
	et := endpointType(t)
	ctx := context.Background()
	nodes, err := et.Select(ctx, http.DefaultClient, "TestConnection", pat(ws, ws.Token), nil)
	require.NoError(t, err)
	assert.Equal(t, []any{ws.UserName}, nodes, "Verify shows who the connection signs in as")

	_, err = et.Select(ctx, http.DefaultClient, "TestConnection", pat(ws, "dapi-revoked"), nil)
	var se *datasource.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, http.StatusForbidden, se.Status)

	req, err := et.Request(ctx, "TestConnection", pat(ws, ws.Token), nil)
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+ws.Token, req.Header.Get("Authorization"))
	assert.Equal(t, ws.URL()+"/api/2.0/preview/scim/v2/Me", req.URL.String())
}

// TestOAuthConnectionsCannotListItems: with the OAuth machine-to-machine
// scheme Azure DevOps sends the client id and secret as HTTP basic
// credentials, which Databricks' REST API refuses: such a connection's
// Verify fails and its pick lists stay empty (they remain editable). The
// docs say so; this test keeps the claim true.
func TestOAuthConnectionsCannotListItems(t *testing.T) {
	ws, _ := workspace(t)
	ep := datasource.Endpoint{URL: ws.URL(), Scheme: datasource.SchemeBasic, Parameters: map[string]string{"username": "7e1b9c2d-3f4a-4b5c-8d6e-9f0a1b2c3d4e", "password": "dose-secret"}}
	_, err := endpointType(t).Select(context.Background(), http.DefaultClient, "TestConnection", ep, nil)
	var se *datasource.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, http.StatusUnauthorized, se.Status)
}
