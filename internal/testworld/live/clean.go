package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/ml"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// gone reports whether err says the thing does not exist (already deleted).
func gone(err error) bool {
	return errors.Is(err, databricks.ErrResourceDoesNotExist) || errors.Is(err, databricks.ErrNotFound)
}

// Clean deletes everything p's run may have created, in both workspaces,
// printing each deletion; what is already gone is skipped, so it can run
// any number of times. The run's folders go last: while anything of the
// run is left, Sweep finds the run by them.
func Clean(ctx context.Context, t Targets, p Plan, out io.Writer) error {
	dev, err := client.New(t.Dev)
	if err != nil {
		return err
	}
	prod, err := client.New(t.Prod)
	if err != nil {
		return err
	}
	var errs []error
	step := func(what string, fn func() (bool, error)) {
		deleted, err := fn()
		switch {
		case err != nil && !gone(err):
			errs = append(errs, fmt.Errorf("deleting %s: %w", what, err))
			fmt.Fprintf(out, "  could not delete %s: %v\n", what, err)
		case deleted && err == nil:
			fmt.Fprintf(out, "  deleted %s\n", what)
		}
	}
	step("prod serving endpoint "+p.Sample.Endpoint, func() (bool, error) {
		return true, serving.NewServingEndpoints(prod).Delete(ctx, serving.DeleteServingEndpointRequest{Name: p.Sample.Endpoint})
	})
	step("prod job "+p.JobName, func() (bool, error) { return deleteJobs(ctx, prod, p.JobName) })
	step("prod table "+p.Sample.OutputTable, func() (bool, error) {
		return true, dropTable(ctx, prod, t.WarehouseID, p.Sample.OutputTable)
	})
	step("prod registered model "+p.Sample.ProdModel, func() (bool, error) { return deleteModel(ctx, prod, p.Sample.ProdModel) })
	step("dev registered model "+p.Sample.DevModel, func() (bool, error) { return deleteModel(ctx, dev, p.Sample.DevModel) })
	for _, x := range []struct {
		where string
		c     *client.DatabricksClient
	}{{"dev", dev}, {"prod", prod}} {
		step(x.where+" experiment "+p.Experiment, func() (bool, error) { return deleteExperiment(ctx, x.c, p.Experiment) })
	}
	for _, x := range []struct {
		where string
		c     *client.DatabricksClient
	}{{"dev", dev}, {"prod", prod}} {
		step(x.where+" folder "+p.Folder, func() (bool, error) {
			return true, workspace.NewWorkspace(x.c).Delete(ctx, workspace.Delete{Path: p.Folder, Recursive: true})
		})
	}
	return errors.Join(errs...)
}

func deleteJobs(ctx context.Context, c *client.DatabricksClient, name string) (bool, error) {
	js := jobs.NewJobs(c)
	all, err := js.ListAll(ctx, jobs.ListJobsRequest{Name: name})
	if err != nil {
		return false, err
	}
	for _, j := range all {
		if j.Settings == nil || j.Settings.Name != name {
			continue
		}
		if err := js.Delete(ctx, jobs.DeleteJob{JobId: j.JobId}); err != nil && !gone(err) {
			return false, err
		}
	}
	return len(all) > 0, nil
}

// dropTable drops a table with the SQL warehouse (DROP TABLE IF EXISTS).
func dropTable(ctx context.Context, c *client.DatabricksClient, warehouseID, table string) error {
	resp, err := sql.NewStatementExecution(c).ExecuteStatement(ctx, sql.ExecuteStatementRequest{
		WarehouseId: warehouseID, Statement: "DROP TABLE IF EXISTS " + table, WaitTimeout: "50s",
	})
	if err != nil {
		return err
	}
	if resp.Status == nil || resp.Status.State != sql.StatementStateSucceeded {
		msg := "the statement did not finish in 50 s"
		if resp.Status != nil && resp.Status.Error != nil {
			msg = resp.Status.Error.Message
		}
		return errors.New(msg)
	}
	return nil
}

// deleteModel deletes a registered model and its versions: a Unity Catalog
// one (catalog.schema.model) version by version, then the model; a
// workspace registry one after moving its Staging and Production versions
// to Archived (the registry refuses to delete a model with versions in
// those stages).
func deleteModel(ctx context.Context, c *client.DatabricksClient, name string) (bool, error) {
	if strings.Count(name, ".") == 2 {
		versions, err := catalog.NewModelVersions(c).ListAll(ctx, catalog.ListModelVersionsRequest{FullName: name})
		if err != nil {
			return false, err
		}
		for _, v := range versions {
			err := catalog.NewModelVersions(c).Delete(ctx, catalog.DeleteModelVersionRequest{FullName: name, Version: v.Version})
			if err != nil && !gone(err) {
				return false, err
			}
		}
		return true, catalog.NewRegisteredModels(c).Delete(ctx, catalog.DeleteRegisteredModelRequest{FullName: name})
	}
	reg := ml.NewModelRegistry(c)
	versions, err := reg.SearchModelVersionsAll(ctx, ml.SearchModelVersionsRequest{Filter: "name='" + name + "'"})
	if err != nil {
		return false, err
	}
	for _, v := range versions {
		if slices.Contains([]string{"Staging", "Production"}, v.CurrentStage) {
			_, err := reg.TransitionStage(ctx, ml.TransitionModelVersionStageDatabricks{Name: name, Version: v.Version, Stage: "Archived"})
			if err != nil {
				return false, err
			}
		}
	}
	return true, reg.DeleteModel(ctx, ml.DeleteModelRequest{Name: name})
}

func deleteExperiment(ctx context.Context, c *client.DatabricksClient, name string) (bool, error) {
	exps := ml.NewExperiments(c)
	got, err := exps.GetByName(ctx, ml.GetByNameRequest{ExperimentName: name})
	if err != nil {
		return false, err
	}
	if got.Experiment == nil || got.Experiment.LifecycleStage != "active" {
		return false, nil
	}
	return true, exps.DeleteExperiment(ctx, ml.DeleteExperiment{ExperimentId: got.Experiment.ExperimentId})
}

// Sweep finds the runs with t.Prefix that left something behind (a run
// folder under /Shared in either workspace, a serving endpoint or a job in
// prod) and cleans each (make live-clean, after a crash). It returns the
// runs it found.
func Sweep(ctx context.Context, t Targets, out io.Writer) ([]string, error) {
	found := map[string]Plan{}
	note := func(name string) {
		if p, ok := PlanOf(t, name); ok {
			found[p.Name] = p
		}
	}
	for _, cfg := range []*config.Config{t.Dev, t.Prod} {
		c, err := client.New(cfg)
		if err != nil {
			return nil, err
		}
		objs, err := workspace.NewWorkspace(c).ListAll(ctx, workspace.ListWorkspaceRequest{Path: "/Shared"})
		if err != nil && !gone(err) {
			return nil, fmt.Errorf("listing /Shared in %s: %w", cfg.Host, err)
		}
		for _, o := range objs {
			if o.ObjectType == workspace.ObjectTypeDirectory {
				note(strings.TrimPrefix(o.Path, "/Shared/"))
			}
		}
	}
	prod, err := client.New(t.Prod)
	if err != nil {
		return nil, err
	}
	eps, err := serving.NewServingEndpoints(prod).ListAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the prod serving endpoints: %w", err)
	}
	for _, e := range eps {
		note(strings.TrimSuffix(e.Name, "-churn"))
	}
	all, err := jobs.NewJobs(prod).ListAll(ctx, jobs.ListJobsRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing the prod jobs: %w", err)
	}
	for _, j := range all {
		if j.Settings != nil {
			note(strings.TrimSuffix(j.Settings.Name, "-batch-score"))
		}
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []error
	for _, n := range names {
		fmt.Fprintf(out, "Run %s left resources behind:\n", n)
		if err := Clean(ctx, t, found[n], out); err != nil {
			errs = append(errs, err)
		}
	}
	return names, errors.Join(errs...)
}
