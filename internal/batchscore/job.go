package batchscore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/converge"
)

// taskKey and clusterKey name the job's single task and its job cluster.
const (
	taskKey    = "score"
	clusterKey = "score_cluster"
)

// Params are the notebook parameters: the task's own (only those with a
// value) and the user's extra ones. They are the job's parameter defaults,
// so the scheduled runs use them too, and are passed again with run-now so
// this run scores what this pipeline asked even if another pipeline reset
// the job in between.
func (o Options) Params() map[string]string {
	p := map[string]string{
		paramModelURI:       o.Model.URI,
		paramInputTable:     o.InputTable,
		paramInputPath:      o.InputPath,
		paramOutputTable:    o.OutputTable,
		paramWriteMode:      o.WriteMode,
		paramIDColumns:      strings.Join(o.IDColumns, ","),
		paramFeatureColumns: strings.Join(o.FeatureColumns, ","),
		paramMergeKeys:      strings.Join(o.MergeKeys, ","),
	}
	if o.InputPath != "" {
		p[paramInputFormat] = o.InputFormat
	}
	for k, v := range p {
		if v == "" {
			delete(p, k)
		}
	}
	for _, kv := range o.ExtraParams {
		p[kv.Key] = kv.Value
	}
	return p
}

// JobSettings is the whole definition of the job, written with jobs/create
// or jobs/reset (which replaces every setting, so nothing a previous
// pipeline run set survives).
func (o Options) JobSettings(sys agent.System) jobs.JobSettings {
	task := jobs.Task{
		TaskKey:      taskKey,
		Description:  "Score " + o.sourceText() + " with " + o.Model.URI,
		NotebookTask: &jobs.NotebookTask{NotebookPath: o.NotebookPath, Source: jobs.SourceWorkspace},
	}
	clusters := o.Compute.ApplyToJobTask(&task, clusterKey)
	params := o.Params()
	var defs []jobs.JobParameterDefinition
	for _, k := range slices.Sorted(maps.Keys(params)) {
		defs = append(defs, jobs.JobParameterDefinition{Name: k, Default: params[k]})
	}
	desc := "Batch scoring job kept up to date by the Brickferry BatchScore@1 pipeline task: each pipeline run resets these settings."
	if u := sys.RunURL(); u != "" {
		desc += " Last updated by " + u
	}
	s := jobs.JobSettings{
		Name:        o.JobName,
		Description: desc,
		Tasks:       []jobs.Task{task},
		JobClusters: clusters,
		Parameters:  defs,
		// One run at a time; a run started while another one (e.g. a
		// scheduled one) is active waits in the queue instead of being
		// skipped.
		MaxConcurrentRuns: 1,
		Queue:             &jobs.QueueSettings{Enabled: true},
		Tags:              map[string]string{tagTask: taskName},
	}
	if o.Owner.ID != "" {
		s.Tags[tagOwnerID], s.Tags[tagOwner] = o.Owner.ID, o.Owner.Name
	}
	if o.Timeout > 0 {
		s.TimeoutSeconds = int(o.Timeout.Seconds())
	}
	if o.Schedule != nil {
		pause := jobs.PauseStatusUnpaused
		if o.Schedule.Paused {
			pause = jobs.PauseStatusPaused
		}
		s.Schedule = &jobs.CronSchedule{QuartzCronExpression: o.Schedule.Cron, TimezoneId: o.Schedule.TimeZone, PauseStatus: pause}
	}
	return s
}

func (o Options) sourceText() string {
	if o.InputTable != "" {
		return o.InputTable
	}
	return o.InputFormat + " files at " + o.InputPath
}

// DuplicateJobsError is a job name that more than one job has: the task
// will not guess which one to update.
type DuplicateJobsError struct {
	Name string
	IDs  []int64
}

func (e *DuplicateJobsError) Error() string {
	ids := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	return fmt.Sprintf("%d jobs are named %q (job ids %s); the task updates one job by its exact name: rename or delete the others, or choose another job name",
		len(e.IDs), e.Name, strings.Join(ids, ", "))
}

// jobsAPI is the part of the Jobs API the task uses; *jobs.JobsAPI has it.
type jobsAPI interface {
	ListAll(ctx context.Context, request jobs.ListJobsRequest) ([]jobs.BaseJob, error)
	Get(ctx context.Context, request jobs.GetJobRequest) (*jobs.Job, error)
	Create(ctx context.Context, request jobs.CreateJob) (*jobs.CreateResponse, error)
	Reset(ctx context.Context, request jobs.ResetJob) error
}

// jobsNamed lists the ids of the jobs named exactly name (the list filter
// ignores case, https://docs.databricks.com/api/azure/workspace/jobs/list).
func jobsNamed(ctx context.Context, api jobsAPI, name string) ([]int64, error) {
	found, err := api.ListAll(ctx, jobs.ListJobsRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("looking for the job %q: %w", name, err)
	}
	var ids []int64
	for _, j := range found {
		if j.Settings != nil && j.Settings.Name == name {
			ids = append(ids, j.JobId)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// findJob reads the job named exactly name with all its settings, or
// answers nil when there is none. Two jobs with the name are an error: the
// task will not guess which one to change.
func findJob(ctx context.Context, api jobsAPI, name string) (*jobs.Job, error) {
	ids, err := jobsNamed(ctx, api, name)
	if err != nil {
		return nil, err
	}
	switch len(ids) {
	case 0:
		return nil, nil
	case 1:
		j, err := api.Get(ctx, jobs.GetJobRequest{JobId: ids[0]})
		if err != nil {
			return nil, fmt.Errorf("reading the job %q (%d): %w", name, ids[0], err)
		}
		return j, nil
	}
	return nil, &DuplicateJobsError{Name: name, IDs: ids}
}

// writeJob resets the existing job to settings, or creates the job when
// existing is nil.
func writeJob(ctx context.Context, api jobsAPI, existing *jobs.Job, settings jobs.JobSettings) (id int64, created bool, err error) {
	if existing != nil {
		if err := api.Reset(ctx, jobs.ResetJob{JobId: existing.JobId, NewSettings: settings}); err != nil {
			return 0, false, fmt.Errorf("updating the job %q (%d): %w", settings.Name, existing.JobId, err)
		}
		return existing.JobId, false, nil
	}
	var req jobs.CreateJob
	if err := convert(settings, &req); err != nil {
		return 0, false, err
	}
	id, err = converge.Converge(ctx, func(ctx context.Context) (int64, bool, error) {
		// jobs/create is not idempotent and got no clear answer: if the
		// job exists now, it is this request's; else create it again.
		ids, err := jobsNamed(ctx, api, settings.Name)
		if err != nil || len(ids) == 0 {
			return 0, false, err
		}
		return ids[0], true, nil
	}, func(ctx context.Context) (int64, error) {
		resp, err := api.Create(ctx, req)
		if err != nil {
			return 0, err
		}
		return resp.JobId, nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("creating the job %q: %w", settings.Name, err)
	}
	return id, true, nil
}

// convert copies between SDK types of the same JSON shape (JobSettings and
// CreateJob share their fields).
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return fmt.Errorf("encoding the job settings: %w", err)
	}
	if err := json.Unmarshal(b, to); err != nil {
		return fmt.Errorf("encoding the job settings: %w", err)
	}
	return nil
}
