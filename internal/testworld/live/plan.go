package live

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

// Plan is what one run of one sample creates, every name starting with
// Name (<prefix>-<run id>-<sample>): the workspace folder first, so that a
// crashed run is found by it (Sweep).
type Plan struct {
	// Name is the run-unique prefix; Key the sample's key (uc, workspace).
	Name, Key string
	// Original is the sample as shipped; Sample has the run's names.
	Original, Sample demo.Sample
	// Folder is the workspace folder of the run in both workspaces: in
	// dev the training notebook (TrainNotebook) and the experiment
	// (Experiment), in prod the experiment of the copied runs (the same
	// path) and the scoring notebook (in ScoreFolder).
	Folder, TrainNotebook, Experiment, ScoreFolder string
	// JobName is the prod job the scoring step creates.
	JobName string
}

// NewRunID is a run id: 6 random hex digits.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewPlan is the plan of sample key's run run of t.
func NewPlan(t Targets, key, run string) (Plan, error) {
	orig, ok := demo.Samples()[key]
	if !ok {
		return Plan{}, fmt.Errorf("no sample %q: use uc or workspace", key)
	}
	short := map[string]string{"uc": "uc", "workspace": "ws"}[key]
	name := t.Prefix + "-" + run + "-" + short
	return planFor(t, key, name, orig), nil
}

func planFor(t Targets, key, name string, orig demo.Sample) Plan {
	uc := strings.ReplaceAll(name, "-", "_") // Unity Catalog and registry names: no hyphens
	p := Plan{Name: name, Key: key, Original: orig, Sample: orig}
	p.Folder = "/Shared/" + name
	p.TrainNotebook = p.Folder + "/train"
	p.Experiment = p.Folder + "/churn"
	p.ScoreFolder = p.Folder + "/score"
	p.JobName = name + "-batch-score"
	if orig.UnityCatalog() {
		p.Sample.DevModel = t.DevSchema + "." + uc + "_churn"
		p.Sample.ProdModel = t.ProdSchema + "." + uc + "_churn"
	} else {
		p.Sample.DevModel, p.Sample.ProdModel = uc+"_churn", uc+"_churn"
	}
	p.Sample.InputTable = t.InputTable
	p.Sample.OutputTable = t.ProdSchema + "." + uc + "_churn_predictions"
	p.Sample.Endpoint = name + "-churn"
	return p
}

// PlanOf is the plan a run's name stands for (Sweep, the conformance
// replay), false for a name that is not <t.Prefix>-<6 hex>-<uc|ws>.
func PlanOf(t Targets, name string) (Plan, bool) {
	parts := strings.Split(name, "-")
	if len(parts) != 3 || parts[0] != t.Prefix || len(parts[1]) != 6 {
		return Plan{}, false
	}
	if _, err := strconv.ParseUint(parts[1], 16, 32); err != nil {
		return Plan{}, false
	}
	key := map[string]string{"uc": "uc", "ws": "workspace"}[parts[2]]
	if key == "" {
		return Plan{}, false
	}
	return planFor(t, key, name, demo.Samples()[key]), true
}

// Print writes what the run creates and deletes, and the cost guard.
func (p Plan) Print(w io.Writer, t Targets) {
	fmt.Fprintf(w, "Run %s: the sample %s (%s)\n", p.Name, p.Key, p.Original.File)
	fmt.Fprintf(w, "  creates, and deletes at the end (or make live-clean after a crash):\n")
	fmt.Fprintf(w, "    dev  workspace folder   %s (the training notebook %s, the experiment %s)\n", p.Folder, p.TrainNotebook, p.Experiment)
	fmt.Fprintf(w, "    dev  registered model   %s (its versions)\n", p.Sample.DevModel)
	fmt.Fprintf(w, "    prod workspace folder   %s (the experiment %s, the scoring notebook in %s)\n", p.Folder, p.Experiment, p.ScoreFolder)
	fmt.Fprintf(w, "    prod registered model   %s (its versions)\n", p.Sample.ProdModel)
	fmt.Fprintf(w, "    prod job                %s\n", p.JobName)
	fmt.Fprintf(w, "    prod table              %s (dropped with the warehouse %s)\n", p.Sample.OutputTable, t.WarehouseID)
	fmt.Fprintf(w, "    prod serving endpoint   %s (scale to zero, Small)\n", p.Sample.Endpoint)
	fmt.Fprintf(w, "  reads: %s (dev, training), %s (prod, scoring)\n", t.TrainTable, p.Sample.InputTable)
	fmt.Fprintf(w, "  cost guard: each Databricks run on one single-node cluster (dev %s, prod %s), every run and serving update limited to %s\n", t.DevNodeType, t.ProdNodeType, t.Timeout)
}

// Rewrite gives the sample pipeline p the run's names and the cost guard:
// every variable and task input whose value is one of the sample's names
// (models, tables, notebook, experiment, endpoint) gets the run's name; the
// training step reads t.TrainTable; the copy puts its runs in the run's
// experiment; the scoring step gets the run's job name and notebook
// folder; every step that
// starts a cluster runs on one single node of the workspace's node type
// (t.DevNodeType, t.ProdNodeType); every run and
// serving update is limited to t.Timeout. It fails when the pipeline no
// longer uses one of the names (the sample changed: change the plan too).
func (p Plan) Rewrite(pl *pipeline.Pipeline, t Targets) error {
	names := map[string]string{
		p.Original.DevModel: p.Sample.DevModel, p.Original.ProdModel: p.Sample.ProdModel,
		p.Original.InputTable: p.Sample.InputTable, p.Original.OutputTable: p.Sample.OutputTable,
		demo.TrainNotebook: p.TrainNotebook, demo.Experiment: p.Experiment,
	}
	used := map[string]bool{}
	// The endpoint by its input only: the workspace-registry sample's model
	// and endpoint are both "churn".
	const endpoint = "endpointName"
	rename := func(v string) string {
		if n, ok := names[v]; ok {
			used[v] = true
			return n
		}
		return v
	}
	renameVars := func(vs pipeline.Variables) {
		for i := range vs {
			vs[i].Value = rename(vs[i].Value)
		}
	}
	minutes := pipeline.Scalar(strconv.Itoa(int(t.Timeout.Minutes())))
	renameVars(pl.Variables)
	for si := range pl.Stages {
		st := &pl.Stages[si]
		renameVars(st.Variables)
		for ji := range st.Jobs {
			job := &st.Jobs[ji]
			renameVars(job.Variables)
			for _, step := range job.AllSteps() {
				for k, v := range step.Inputs {
					if k == endpoint && string(v) == p.Original.Endpoint {
						used[endpoint] = true
						step.Inputs[k] = pipeline.Scalar(p.Sample.Endpoint)
						continue
					}
					step.Inputs[k] = pipeline.Scalar(rename(string(v)))
				}
				task, _, _ := strings.Cut(step.Task, "@")
				switch task {
				case "DatabricksTrain", "BatchScore":
					if step.Inputs["compute"] == "newCluster" {
						delete(step.Inputs, "workers")
						delete(step.Inputs, "autoscale")
						step.Inputs["singleNode"] = "true"
						step.Inputs["nodeType"] = pipeline.Scalar(t.DevNodeType)
						if task == "BatchScore" { // the scoring runs in prod
							step.Inputs["nodeType"] = pipeline.Scalar(t.ProdNodeType)
						}
					}
					step.Inputs["timeoutMinutes"] = minutes
					if task == "DatabricksTrain" {
						step.Inputs["parameters"] = pipeline.Scalar(strings.TrimRight(string(step.Inputs["parameters"]), "\n") + "\ninput_table=" + t.TrainTable + "\n")
					}
					if task == "BatchScore" {
						step.Inputs["jobName"] = pipeline.Scalar(p.JobName)
						step.Inputs["notebookFolder"] = pipeline.Scalar(p.ScoreFolder)
					}
				case "MLflowPromote":
					if step.Inputs["command"] == "copy" {
						step.Inputs["targetExperiment"] = pipeline.Scalar(p.Experiment)
					}
				case "ModelServe":
					step.Inputs["timeoutMinutes"] = minutes
					step.Inputs["workloadSize"] = "Small"
					step.Inputs["scaleToZero"] = "true"
				}
			}
		}
	}
	var missing []string
	if !used[endpoint] {
		missing = append(missing, "the endpoint "+p.Original.Endpoint)
	}
	for old := range names {
		if !used[old] {
			missing = append(missing, old)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%s no longer uses %s: give the live plan its names (internal/testworld/live, Plan)", p.Original.File, strings.Join(missing, ", "))
	}
	return nil
}
