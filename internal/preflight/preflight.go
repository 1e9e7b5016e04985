// Package preflight checks, before a task's first write or compute request,
// that what its inputs name exists in the workspace: the notebook or file
// to run (workspace get-status), the cluster, instance pools and cluster
// policy, the SQL warehouse, and the model version (resolved from a number,
// stage or alias, and READY). A typo then fails in seconds with the input's
// name, instead of after a job was rewritten or a cluster started.
//
// Checks collects every problem, so a step reports them all at once, the
// way agent.Inputs reports every bad input:
//
//	pf := preflight.New(ws.Client, ws.Host)
//	pf.Notebook(ctx, "notebookPath", o.NotebookPath)
//	pf.Compute(ctx, o.Compute)
//	if err := pf.Err(); err != nil { return err } // nothing written yet
//
// A check that cannot tell (the API refused the call, a network failure)
// is a problem too: the task does not start what it could not check.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/databricks/databricks-sdk-go/client"
	sdkcompute "github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/compute"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
)

// Checks are the preflight checks of one step against one workspace.
type Checks struct {
	c    *client.DatabricksClient
	host string
	errs []error
}

// New returns the checks of a step against the workspace at host.
func New(c *client.DatabricksClient, host string) *Checks {
	return &Checks{c: c, host: strings.TrimSuffix(host, "/")}
}

// Err is every problem found so far (joined), or nil.
func (p *Checks) Err() error { return errors.Join(p.errs...) }

// Problem is one thing a step's input names that the workspace does not
// have, or that could not be checked.
type Problem struct {
	Input string // the input's YAML name, e.g. clusterId
	Err   error
}

func (e *Problem) Error() string { return fmt.Sprintf("input %s: %v", e.Input, e.Err) }

func (e *Problem) Unwrap() error { return e.Err }

func (p *Checks) fail(input string, err error) {
	p.errs = append(p.errs, &Problem{Input: input, Err: err})
}

// missing reports whether err is the API's "does not exist" (404, or
// RESOURCE_DOES_NOT_EXIST as databricks-sdk-go maps it, apierr package).
func missing(err error) bool { return registry.NotFound(err) }

// Notebook checks that a notebook is at path (GET
// /api/2.0/workspace/get-status, databricks-sdk-go service/workspace).
func (p *Checks) Notebook(ctx context.Context, input, path string) {
	p.object(ctx, input, path, workspace.ObjectTypeNotebook, "notebook")
}

// File checks that a workspace file is at path (a Python file run by a
// spark_python_task).
func (p *Checks) File(ctx context.Context, input, path string) {
	p.object(ctx, input, path, workspace.ObjectTypeFile, "file")
}

func (p *Checks) object(ctx context.Context, input, path string, want workspace.ObjectType, what string) {
	info, err := workspace.NewWorkspace(p.c).GetStatus(ctx, workspace.GetStatusRequest{Path: path})
	switch {
	case missing(err):
		p.fail(input, fmt.Errorf("there is no %s %s in the workspace %s (or the task's identity may not see it): check the path", what, path, p.host))
	case err != nil:
		p.fail(input, fmt.Errorf("looking for the %s %s: %w", what, path, err))
	case info.ObjectType != want:
		p.fail(input, fmt.Errorf("%s is a %s in the workspace %s, not a %s", path, strings.ToLower(string(info.ObjectType)), p.host, what))
	}
}

// Compute checks the cluster of an existing-cluster spec, or the instance
// pools and cluster policy of a new-cluster spec (the input names are
// package compute's).
func (p *Checks) Compute(ctx context.Context, s compute.Spec) {
	switch s.Kind {
	case compute.ExistingCluster:
		_, err := sdkcompute.NewClusters(p.c).Get(ctx, sdkcompute.GetClusterRequest{ClusterId: s.ClusterID})
		p.check(compute.InputCluster, "cluster", s.ClusterID, err)
	case compute.NewCluster:
		pools := sdkcompute.NewInstancePools(p.c)
		if s.PoolID != "" {
			_, err := pools.Get(ctx, sdkcompute.GetInstancePoolRequest{InstancePoolId: s.PoolID})
			p.check(compute.InputPool, "instance pool", s.PoolID, err)
		}
		if s.DriverPoolID != "" && s.DriverPoolID != s.PoolID {
			_, err := pools.Get(ctx, sdkcompute.GetInstancePoolRequest{InstancePoolId: s.DriverPoolID})
			p.check(compute.InputDriverPool, "instance pool", s.DriverPoolID, err)
		}
		if s.PolicyID != "" {
			_, err := sdkcompute.NewClusterPolicies(p.c).Get(ctx, sdkcompute.GetClusterPolicyRequest{PolicyId: s.PolicyID})
			p.check(compute.InputPolicy, "cluster policy", s.PolicyID, err)
		}
	}
}

// Warehouse checks a SQL warehouse (GET /api/2.0/sql/warehouses/{id}).
func (p *Checks) Warehouse(ctx context.Context, input, id string) {
	_, err := sql.NewWarehouses(p.c).Get(ctx, sql.GetWarehouseRequest{Id: id})
	p.check(input, "SQL warehouse", id, err)
}

func (p *Checks) check(input, what, id string, err error) {
	switch {
	case missing(err):
		p.fail(input, fmt.Errorf("there is no %s %s in the workspace %s (or the task's identity may not see it)", what, id, p.host))
	case err != nil:
		p.fail(input, fmt.Errorf("looking for the %s %s: %w", what, id, err))
	}
}

// Model resolves a model version (a number, a stage of the workspace model
// registry, or a Unity Catalog alias) and checks that it is READY, so that
// nothing is set up to load a model that is not there. It returns the
// version, or the zero Version after recording the problem.
func (p *Checks) Model(ctx context.Context, input string, name modeluri.Name, ref modeluri.VersionRef) registry.Version {
	v, err := registry.New(p.host, p.c).Resolve(ctx, name, ref)
	if err != nil {
		p.fail(input, err)
		return registry.Version{}
	}
	if v.Status != "READY" {
		msg := ""
		if v.Message != "" {
			msg = " (" + v.Message + ")"
		}
		p.fail(input, fmt.Errorf("version %d of %s is %s%s, not READY, in the workspace %s", v.Number, name.Full, v.Status, msg, p.host))
		return registry.Version{}
	}
	return v
}
