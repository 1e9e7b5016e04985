package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/microsoft/azure-devops-go-api/azuredevops/v7/build"
	"github.com/microsoft/azure-devops-go-api/azuredevops/v7/git"
	"github.com/microsoft/azure-devops-go-api/azuredevops/v7/pipelines"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/devops"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

// The sample pipeline's run on Azure DevOps: make live-devops creates or
// updates a YAML pipeline from the Unity Catalog sample
// (examples/azure-pipelines-uc.yml, as the repository holds it), runs it,
// waits, and reads back through the REST API what each step did.
//
// Where each thing is read, and why there:
//   - a step's result: the build timeline's records of type Task, named by
//     the step's displayName (build.GetBuildTimeline);
//   - its output variables: the agent keeps them only in the orchestration
//     timeline (ExecutionContext.SetVariable puts an output variable in the
//     record's Variables, azure-pipelines-agent src/Agent.Worker/ExecutionContext.cs),
//     which the build timeline of azure-devops-go-api does not carry
//     (build.TimelineRecord has no variables). So the run is queued with
//     system.debug=true, and the agent traces every ##vso command it
//     processed in the step's log as "##[debug]Processed: <command>"
//     (src/Agent.Worker/WorkerCommandManager.cs); the check reads the
//     step's log (build.GetBuildLogLines) and takes the
//     task.setvariable commands with isOutput=true;
//   - its summary: ##vso[task.uploadsummary] becomes an attachment of type
//     Distributedtask.Core.Summary on the step's timeline record
//     (src/Agent.Worker/TaskCommandExtension.cs, TaskUploadSummaryCommand),
//     listed by build.GetAttachments; its _links.self.href names the
//     record, and build.GetAttachment reads it.

// SummaryAttachmentType is the attachment type of an uploaded summary
// (the agent's CoreAttachmentType.Summary).
const SummaryAttachmentType = "Distributedtask.Core.Summary"

// PipelineReport is what RunSamplePipeline did and found.
type PipelineReport struct {
	DefinitionID int
	Revision     int
	// Saved says what was done to the pipeline: "created", "updated"
	// (another YAML file or repository) or "kept".
	Saved  string
	RunID  int
	Result string // the run's result (pipelines.RunResult)
	Steps  []StepReport
	// Problems lists everything the run did not do as the sample does; none
	// when it passed.
	Problems []string
}

// StepReport is one step of the sample as the run's records show it.
type StepReport struct {
	Name, Task, Job string
	Result          string            // the Task record's result; "" without a record
	Outputs         map[string]string // output variables, from the step's log
	Summaries       map[string]int    // summary attachment name → bytes
}

// sampleStep is a task step of the sample, as the YAML names it.
type sampleStep struct {
	stage, job, name, display, task string
}

// RunSamplePipeline creates or updates the sample's pipeline in d.Project
// (found by name and folder), runs it on d.Branch with system.debug, waits
// for it (d.Timeout) and checks each step: its Task record succeeded, it set
// the output variables the pipeline reads of it (and, for a Brickferry task
// other than BrickferryTools, at least one it declares), and it uploaded a
// summary. The sample's steps are read from d.Root, the local copy of the
// repository the pipeline runs from. Errors are failures to talk to Azure
// DevOps; what the run did wrong is in the report's Problems.
func RunSamplePipeline(ctx context.Context, d DevOps, out io.Writer) (*PipelineReport, error) {
	file := demo.UnityCatalog().File
	steps, refs, err := sampleSteps(filepath.Join(d.Root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	c, err := newDevOpsClients(ctx, d)
	if err != nil {
		return nil, err
	}
	def, saved, err := ensurePipeline(ctx, c, d, file)
	if err != nil {
		return nil, err
	}
	rep := &PipelineReport{DefinitionID: *def.Id, Revision: deref(def.Revision), Saved: saved}
	fmt.Fprintf(out, "pipeline %s\\%s (id %d, revision %d): %s\n", strings.TrimPrefix(d.PipelineFolder, `\`), d.PipelineName, rep.DefinitionID, rep.Revision, saved)

	run, err := c.pipelines.RunPipeline(ctx, pipelines.RunPipelineArgs{
		Project: &d.Project, PipelineId: def.Id,
		RunParameters: &pipelines.RunPipelineParameters{
			Resources: &pipelines.RunResourcesParameters{Repositories: &map[string]pipelines.RepositoryResourceParameters{"self": {RefName: &d.Branch}}},
			Variables: &map[string]pipelines.Variable{"system.debug": {Value: new("true")}},
		},
	})
	if err != nil {
		return rep, fmt.Errorf("running pipeline %d on %s: %w", rep.DefinitionID, d.Branch, err)
	}
	rep.RunID = *run.Id
	fmt.Fprintf(out, "run %d (%s) queued, waiting up to %s\n", rep.RunID, deref(run.Name), d.Timeout)
	deadline := time.Now().Add(d.Timeout)
	for run.State == nil || *run.State != pipelines.RunStateValues.Completed {
		if time.Now().After(deadline) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("run %d did not finish within %s (state %s): it may wait for an agent, a permission to use a resource, or the approval of environment production", rep.RunID, d.Timeout, derefState(run.State)))
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(d.Poll):
		}
		if run, err = c.pipelines.GetRun(ctx, pipelines.GetRunArgs{Project: &d.Project, PipelineId: def.Id, RunId: &rep.RunID}); err != nil {
			return rep, fmt.Errorf("reading run %d: %w", rep.RunID, err)
		}
	}
	if run.Result != nil {
		rep.Result = string(*run.Result)
	}
	fmt.Fprintf(out, "run %d: %s\n", rep.RunID, rep.Result)
	if rep.Result != string(pipelines.RunResultValues.Succeeded) {
		rep.Problems = append(rep.Problems, fmt.Sprintf("run %d: result %s", rep.RunID, orNone(rep.Result)))
	}
	if err := checkSteps(ctx, c, d, rep, steps, refs); err != nil {
		return rep, err
	}
	for _, s := range rep.Steps {
		fmt.Fprintf(out, "  %-10s %s (%s): output variables %s; summaries %d\n", orNone(s.Result), s.Name, s.Job,
			orNone(strings.Join(slices.Sorted(maps.Keys(s.Outputs)), ", ")), len(s.Summaries))
	}
	return rep, nil
}

// sampleSteps reads the task steps of the pipeline at path and the output
// variables it reads of them: $(step.var) macros and
// outputs['[job.]step.var'] expressions.
func sampleSteps(path string) ([]sampleStep, map[string][]string, error) {
	p, err := pipeline.Load(path)
	if err != nil {
		return nil, nil, fmt.Errorf("the sample pipeline: %w", err)
	}
	var steps []sampleStep
	for _, st := range p.Stages {
		for _, j := range st.Jobs {
			for _, s := range j.AllSteps() {
				if s.Task == "" {
					continue
				}
				task, _, _ := strings.Cut(s.Task, "@")
				steps = append(steps, sampleStep{stage: st.Stage, job: j.Name(), name: s.Name, display: orString(s.DisplayName, task), task: task})
			}
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	refs := map[string][]string{}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\)`),
		regexp.MustCompile(`outputs\['(?:[A-Za-z0-9_]+\.)*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)'\]`),
	} {
		for _, m := range re.FindAllStringSubmatch(string(text), -1) {
			named := slices.ContainsFunc(steps, func(s sampleStep) bool { return s.name == m[1] })
			if named && !slices.Contains(refs[m[1]], m[2]) {
				refs[m[1]] = append(refs[m[1]], m[2])
			}
		}
	}
	return steps, refs, nil
}

// devOpsClients are azure-devops-go-api's clients on d's HTTP client.
type devOpsClients struct {
	pipelines pipelines.Client
	build     build.Client
	git       git.Client
}

// newDevOpsClients makes the build, Git and pipelines clients through
// package devops (one resource-area lookup, d.HTTP for every request). The
// pipelines client works on the collection URL (pipelines.NewClient).
func newDevOpsClients(ctx context.Context, d DevOps) (*devOpsClients, error) {
	c := devops.New(d.CollectionURL, d.Token, d.HTTP)
	areas, err := c.Areas(ctx, build.ResourceAreaId, git.ResourceAreaId)
	if err != nil {
		return nil, fmt.Errorf("asking %s where its services are: %w", d.CollectionURL, err)
	}
	return &devOpsClients{
		pipelines: &pipelines.ClientImpl{Client: c.Root()},
		build:     &build.ClientImpl{Client: areas[0]},
		git:       &git.ClientImpl{Client: areas[1]},
	}, nil
}

// EnsureSamplePipeline creates or updates the sample's pipeline as
// RunSamplePipeline does, without running it: its id, revision and what
// was done ("created", "updated", "kept").
func EnsureSamplePipeline(ctx context.Context, d DevOps) (int, int, string, error) {
	c, err := newDevOpsClients(ctx, d)
	if err != nil {
		return 0, 0, "", err
	}
	def, saved, err := ensurePipeline(ctx, c, d, demo.UnityCatalog().File)
	if err != nil {
		return 0, 0, "", err
	}
	return deref(def.Id), deref(def.Revision), saved, nil
}

// ensurePipeline finds the pipeline by name in its folder and makes it run
// file of d.Repository: created if missing, updated if it runs another file
// or repository, kept otherwise. It is a build definition with a YAML
// process (build.YamlProcess, type 2): the Pipelines API can create one but
// not update it, and azure-devops-go-api's CreatePipelineConfigurationParameters
// has no field for the YAML path or repository.
func ensurePipeline(ctx context.Context, c *devOpsClients, d DevOps, file string) (*build.BuildDefinition, string, error) {
	repo, err := c.git.GetRepository(ctx, git.GetRepositoryArgs{Project: &d.Project, RepositoryId: &d.Repository})
	if err != nil {
		return nil, "", fmt.Errorf("the Azure Repos Git repository %s of project %s: %w", d.Repository, d.Project, err)
	}
	repository := &build.BuildRepository{Id: new(repo.Id.String()), Name: repo.Name, Type: new("TfsGit"), DefaultBranch: &d.Branch}
	process := build.YamlProcess{Type: new(2), YamlFilename: &file}
	found, err := c.build.GetDefinitions(ctx, build.GetDefinitionsArgs{Project: &d.Project, Name: &d.PipelineName, Path: &d.PipelineFolder})
	if err != nil {
		return nil, "", fmt.Errorf("looking for pipeline %s in folder %s: %w", d.PipelineName, d.PipelineFolder, err)
	}
	if len(found.Value) == 0 {
		def, err := c.build.CreateDefinition(ctx, build.CreateDefinitionArgs{Project: &d.Project, Definition: &build.BuildDefinition{
			Name: &d.PipelineName, Path: &d.PipelineFolder, Process: process, Repository: repository,
		}})
		if err != nil {
			return nil, "", fmt.Errorf("creating pipeline %s: %w", d.PipelineName, err)
		}
		return def, "created", nil
	}
	def, err := c.build.GetDefinition(ctx, build.GetDefinitionArgs{Project: &d.Project, DefinitionId: found.Value[0].Id})
	if err != nil {
		return nil, "", fmt.Errorf("reading pipeline %s: %w", d.PipelineName, err)
	}
	have, _ := def.Process.(map[string]any)
	if have["yamlFilename"] == file && def.Repository != nil && strings.EqualFold(deref(def.Repository.Id), *repository.Id) {
		return def, "kept", nil
	}
	def.Process, def.Repository = process, repository
	def, err = c.build.UpdateDefinition(ctx, build.UpdateDefinitionArgs{Project: &d.Project, DefinitionId: def.Id, Definition: def})
	if err != nil {
		return nil, "", fmt.Errorf("updating pipeline %s: %w", d.PipelineName, err)
	}
	return def, "updated", nil
}

// checkSteps reads the run's timeline, logs and summary attachments and
// adds a problem for each step that did not do what the sample does.
func checkSteps(ctx context.Context, c *devOpsClients, d DevOps, rep *PipelineReport, steps []sampleStep, refs map[string][]string) error {
	tl, err := c.build.GetBuildTimeline(ctx, build.GetBuildTimelineArgs{Project: &d.Project, BuildId: &rep.RunID})
	if err != nil {
		return fmt.Errorf("reading the timeline of run %d: %w", rep.RunID, err)
	}
	// Task records by name, in the order they started: two steps of the
	// same name (the two BrickferryTools steps) are told apart by it.
	records := map[string][]build.TimelineRecord{}
	if tl.Records != nil {
		tasks := slices.Clone(*tl.Records)
		slices.SortStableFunc(tasks, func(a, b build.TimelineRecord) int {
			if a.StartTime == nil || b.StartTime == nil {
				return 0
			}
			return a.StartTime.Time.Compare(b.StartTime.Time)
		})
		for _, r := range tasks {
			if r.Type != nil && *r.Type == "Task" && r.Name != nil {
				records[*r.Name] = append(records[*r.Name], r)
			}
		}
	}
	summaries, err := summaryAttachments(ctx, c, d, rep.RunID)
	if err != nil {
		return err
	}
	for _, s := range steps {
		sr := StepReport{Name: s.display, Task: s.task, Job: s.stage + "/" + s.job, Outputs: map[string]string{}, Summaries: map[string]int{}}
		where := fmt.Sprintf("step %q (%s, %s)", s.display, s.task, sr.Job)
		if len(records[s.display]) == 0 {
			rep.Problems = append(rep.Problems, where+": did not run (no Task record in the timeline)")
			rep.Steps = append(rep.Steps, sr)
			continue
		}
		r := records[s.display][0]
		records[s.display] = records[s.display][1:]
		if r.Result != nil {
			sr.Result = string(*r.Result)
		}
		if sr.Result != string(build.TaskResultValues.Succeeded) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: result %s%s", where, orNone(sr.Result), issues(r)))
		}
		if r.Log != nil && r.Log.Id != nil {
			lines, err := c.build.GetBuildLogLines(ctx, build.GetBuildLogLinesArgs{Project: &d.Project, BuildId: &rep.RunID, LogId: r.Log.Id})
			if err != nil {
				return fmt.Errorf("reading the log of %s: %w", where, err)
			}
			sr.Outputs = outputVariables(*lines)
		}
		for _, v := range refs[s.name] {
			if sr.Outputs[v] == "" {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: output variable %s.%s, which the pipeline reads, was not set (read from the step's log with system.debug)", where, s.name, v))
			}
		}
		isBrickferry := slices.Contains(brickferryTasks, s.task)
		if isBrickferry && s.task != "BrickferryTools" && sr.Result == string(build.TaskResultValues.Succeeded) {
			if len(sr.Outputs) == 0 {
				rep.Problems = append(rep.Problems, where+": set no output variable")
			}
			if r.Id != nil {
				sr.Summaries = summaries[*r.Id]
			}
			if len(sr.Summaries) == 0 {
				rep.Problems = append(rep.Problems, where+": uploaded no summary (no "+SummaryAttachmentType+" attachment on its record)")
			}
			for name, size := range sr.Summaries {
				if size == 0 {
					rep.Problems = append(rep.Problems, fmt.Sprintf("%s: summary %s is empty", where, name))
				}
			}
		}
		rep.Steps = append(rep.Steps, sr)
	}
	return nil
}

// brickferryTasks are the extension's tasks (tasks/*V1).
var brickferryTasks = []string{"BrickferryTools", "DatabricksTrain", "MLflowPromote", "BatchScore", "ModelServe"}

// summaryAttachments reads every summary attachment of run id, by the
// timeline record it is on: record id → name → bytes.
func summaryAttachments(ctx context.Context, c *devOpsClients, d DevOps, id int) (map[uuid.UUID]map[string]int, error) {
	list, err := c.build.GetAttachments(ctx, build.GetAttachmentsArgs{Project: &d.Project, BuildId: &id, Type: new(SummaryAttachmentType)})
	if err != nil {
		return nil, fmt.Errorf("listing the summaries of run %d: %w", id, err)
	}
	out := map[uuid.UUID]map[string]int{}
	for _, a := range *list {
		timeline, record, err := attachmentRecord(a)
		if err != nil {
			return nil, fmt.Errorf("summary %s of run %d: %w", deref(a.Name), id, err)
		}
		body, err := c.build.GetAttachment(ctx, build.GetAttachmentArgs{Project: &d.Project, BuildId: &id, TimelineId: &timeline, RecordId: &record, Type: new(SummaryAttachmentType), Name: a.Name})
		if err != nil {
			return nil, fmt.Errorf("reading summary %s of run %d: %w", deref(a.Name), id, err)
		}
		data, err := io.ReadAll(body)
		_ = body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading summary %s of run %d: %w", deref(a.Name), id, err)
		}
		if out[record] == nil {
			out[record] = map[string]int{}
		}
		out[record][deref(a.Name)] = len(data)
	}
	return out, nil
}

// attachmentRecord is the timeline and record an attachment is on, from
// its _links.self.href, the route of Attachments - Get
// (.../builds/{buildId}/{timelineId}/{recordId}/attachments/{type}/{name}).
func attachmentRecord(a build.Attachment) (uuid.UUID, uuid.UUID, error) {
	links, _ := a.Links.(map[string]any)
	self, _ := links["self"].(map[string]any)
	href, _ := self["href"].(string)
	u, err := url.Parse(href)
	if err != nil || href == "" {
		return uuid.UUID{}, uuid.UUID{}, fmt.Errorf("no usable _links.self.href (%q)", href)
	}
	parts := strings.Split(u.Path, "/")
	i := slices.Index(parts, "attachments")
	if i < 2 {
		return uuid.UUID{}, uuid.UUID{}, fmt.Errorf("_links.self.href %q does not name a timeline record", href)
	}
	timeline, err1 := uuid.Parse(parts[i-2])
	record, err2 := uuid.Parse(parts[i-1])
	if err := errors.Join(err1, err2); err != nil {
		return uuid.UUID{}, uuid.UUID{}, fmt.Errorf("_links.self.href %q: %w", href, err)
	}
	return timeline, record, nil
}

// outputVariables are the output variables a step's log shows the agent
// processed: "##[debug]Processed: ##vso[task.setvariable variable=x;isOutput=true]v",
// each line after the time the build log puts first.
func outputVariables(lines []string) map[string]string {
	out := map[string]string{}
	for _, line := range lines {
		_, rest, ok := strings.Cut(line, "##[debug]Processed: ")
		if !ok {
			continue
		}
		cmd, ok := agent.ParseCommand(rest)
		if ok && cmd.Area == "task" && cmd.Event == "setvariable" && strings.EqualFold(cmd.Properties["isoutput"], "true") {
			out[cmd.Properties["variable"]] = cmd.Message
		}
	}
	return out
}

func issues(r build.TimelineRecord) string {
	if r.Issues == nil {
		return ""
	}
	var msgs []string
	for _, i := range *r.Issues {
		if i.Message != nil && i.Type != nil && *i.Type == build.IssueTypeValues.Error {
			msgs = append(msgs, *i.Message)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return ": " + strings.Join(msgs, "; ")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefState(s *pipelines.RunState) string { return orNone(string(deref(s))) }

func orNone(s string) string { return orString(s, "(none)") }

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
