package batchscore

import (
	"context"
	"fmt"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/preflight"
)

// preflight checks what the job will use (package preflight) and returns
// the model version the URI names now.
func (s *step) preflight(ctx context.Context, host string) (int, error) {
	o, log := s.opts, s.log
	pf := preflight.New(s.c, host)
	name, ref, err := o.Model.Registered()
	if err != nil {
		return 0, fmt.Errorf("model URI %s: %w", o.Model.URI, err)
	}
	v := pf.Model(ctx, "modelUri", name, ref)
	if !o.Shipped {
		pf.Notebook(ctx, "notebookPath", o.NotebookPath)
	}
	pf.Compute(ctx, o.Compute)
	if o.SQLWarehouseID != "" {
		pf.Warehouse(ctx, "sqlWarehouseId", o.SQLWarehouseID)
	}
	if err := pf.Err(); err != nil {
		return 0, err
	}
	log.Info("Model: %s is version %d of %s, READY.", o.Model.URI, v.Number, name.Full)
	if o.SQLWarehouseID != "" {
		log.Info("SQL warehouse %s: found.", o.SQLWarehouseID)
	}
	return v.Number, nil
}

// checkChange shows what writing settings changes in the existing job, and
// refuses a change to another pipeline's job, or one that removes a
// schedule, unless allowJobTakeover says so.
func (s *step) checkChange(existing *jobs.Job, settings jobs.JobSettings) error {
	o, log := s.opts, s.log
	if existing == nil {
		log.Info("No job is named %q yet: it will be created, owned by %s.", o.JobName, o.Owner)
		return nil
	}
	change := compareJob(existing.Settings, settings, o.Owner)
	if len(change.diff) == 0 {
		log.Info("The job %q (%d) of %s already has these settings.", o.JobName, existing.JobId, change.owner)
	} else {
		log.Group(fmt.Sprintf("Changes to the job %q (%d)", o.JobName, existing.JobId))
		for _, line := range change.diff {
			log.Info("%s", line)
		}
		log.EndGroup()
	}
	why := change.refusal(o.Owner)
	switch {
	case why == "":
		if change.owner.ID == "" && o.Owner.ID != "" {
			log.Info("The job %q (%d) has no owner pipeline yet (an earlier Brickferry made it): %s takes it.", o.JobName, existing.JobId, o.Owner)
		}
		return nil
	case o.AllowTakeover:
		log.Warning("the job %q (%d) is changed although %s: allowJobTakeover is true", o.JobName, existing.JobId, why)
		return nil
	}
	return fmt.Errorf("the job %q (%d) was left unchanged: %s. The changes are listed above. "+
		"To keep both jobs, give this step its own jobName (without one, the job is named after the output table); "+
		"to change this job anyway, set allowJobTakeover: true", o.JobName, existing.JobId, why)
}

// oldDefaultName is the job name Brickferry used for every step that gave
// no jobName, before the name came from the output table.
const oldDefaultName = "brickferry-batch-score"

// warnOldDefault warns about a job an earlier Brickferry kept under the old
// shared default name: it still runs on its schedule, with the settings its
// last pipeline run gave it.
func (s *step) warnOldDefault(ctx context.Context, api jobsAPI) {
	ids, err := jobsNamed(ctx, api, oldDefaultName)
	if err != nil || len(ids) == 0 {
		return
	}
	list := make([]string, len(ids))
	for i, id := range ids {
		list[i] = fmt.Sprint(id)
	}
	s.log.Warning("the job %q (id %s), which earlier Brickferry versions kept for every step without a jobName, still exists and keeps its schedule; "+
		"this step now keeps the job %q. Delete the old job, or set jobName: %s to go on using it",
		oldDefaultName, strings.Join(list, ", "), s.opts.JobName, oldDefaultName)
}
