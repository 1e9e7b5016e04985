package live

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/brickferry/brickferry/internal/testworld/azurestandin"
	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
	"github.com/brickferry/brickferry/internal/testworld/pipeline"
)

// Options configure one run of one sample.
type Options struct {
	Targets Targets
	Plan    Plan
	Exe     string    // the brickferry executable
	Root    string    // the repository root (the sample pipelines, the training notebook)
	OutDir  string    // summaries and the stand-ins' CA file
	Out     io.Writer // the readable log
	// RecordTo, when set, is the file the tasks' exchanges with the
	// workspaces are written to, redacted (Recorder, Redactor).
	RecordTo string
}

// Report is what a run did.
type Report struct {
	Result *pipeline.Result
	// Output is the readable log and every step's stdout and stderr, but
	// for the lines that hand a secret to the agent
	// (demo.WithoutSecretHandOver).
	Output string
	// Secrets are every secret the run knew of: the workspaces' tokens,
	// the stand-ins' secrets and the tokens they minted, the secret
	// variables.
	Secrets []string
}

// Outcome is what demo.CheckOutcome checks after the run of o.
func (r *Report) Outcome(o Options) demo.Outcome {
	res := ""
	if r.Result != nil {
		res = r.Result.Result
	}
	return demo.Outcome{
		Sample: o.Plan.Sample, Dev: o.Targets.Dev, Prod: o.Targets.Prod, WarehouseID: o.Targets.WarehouseID,
		Result: res, Output: r.Output, Secrets: r.Secrets, SummaryDir: o.OutDir,
	}
}

// Run prepares the dev workspace (the run's folder and training notebook),
// runs the sample pipeline with the plan's names and cost guard, and
// reports. It deletes nothing: the caller calls Clean when it is done,
// whatever Run returned.
func Run(ctx context.Context, o Options) (*Report, error) {
	t, p := o.Targets, o.Plan
	devToken, err := bearer(ctx, t.Dev)
	if err != nil {
		return nil, err
	}
	prodToken, err := bearer(ctx, t.Prod)
	if err != nil {
		return nil, err
	}
	dev := demo.Credentials{Host: t.Dev.CanonicalHostName(), Token: devToken}
	prod := demo.Credentials{Host: t.Prod.CanonicalHostName(), Token: prodToken}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	// What the tasks are given: the workspaces, or the recorder's fronts.
	taskDev, taskProd := dev, prod
	ca := t.CA
	var rec *Recorder
	if o.RecordTo != "" {
		if ca == nil {
			if ca, err = emulator.NewCA(); err != nil {
				return nil, err
			}
		}
		rec = &Recorder{}
		defer rec.Close()
		for _, x := range []struct {
			name string
			in   demo.Credentials
			out  *demo.Credentials
		}{{"dev", dev, &taskDev}, {"prod", prod, &taskProd}} {
			u, err := url.Parse(x.in.Host)
			if err != nil {
				return nil, err
			}
			if x.out.Host, err = rec.Front(x.name, u, ca, t.CA); err != nil {
				return nil, err
			}
		}
	}
	standIns := demo.StandIns(ca, o.OutDir, taskDev, taskProd)
	// The tasks reach the real workspaces and their storage (Unity
	// Catalog's signed URLs) at their real addresses; the rest of Azure
	// stays stand-ins.
	standIns.PassThrough = []string{hostname(dev.Host), hostname(prod.Host), "blob.core.windows.net", "dfs.core.windows.net"}
	az, err := azurestandin.New(standIns)
	if err != nil {
		return nil, err
	}
	defer az.Close()

	if err := prepare(ctx, t, p, o.Root); err != nil {
		return nil, err
	}
	pl, err := pipeline.Load(filepath.Join(o.Root, filepath.FromSlash(p.Original.File)))
	if err != nil {
		return nil, err
	}
	if err := p.Rewrite(pl, t); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "brickferry-live-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(work) }()
	var log strings.Builder
	out := io.MultiWriter(o.Out, &log)
	fmt.Fprintf(out, "\n=== %s: dev %s, prod %s; Azure DevOps, Entra ID and Key Vault are stand-ins\n", p.Name, dev.Host, prod.Host)
	runner := demo.NewRunner(o.Exe, az, taskDev, work, o.OutDir, out)
	res, runErr := runner.Run(ctx, pl)
	r := &Report{Result: res}
	r.Secrets = append([]string{devToken, prodToken}, runner.Secrets()...)
	r.Secrets = append(r.Secrets, az.Secrets()...)
	r.Secrets = append(r.Secrets, az.Minted()...)
	var all strings.Builder
	all.WriteString(log.String())
	if res != nil {
		for _, s := range res.Steps() {
			all.WriteString(s.Stdout)
			all.WriteString(s.Stderr)
		}
	}
	r.Output = demo.WithoutSecretHandOver(all.String())
	if rec != nil {
		against := "azure"
		if t.CA != nil {
			against = "emulator"
		}
		red := NewRedactor(r.Secrets, map[string]string{dev.Host: "dev-host", prod.Host: "prod-host", taskDev.Host: "dev-host", taskProd.Host: "prod-host"})
		if err := rec.Write(o.RecordTo, Recording{Sample: p.Key, Plan: p.Name, Against: against}, red); err != nil {
			return r, err
		}
		fmt.Fprintf(out, "Recorded the tasks' exchanges with the workspaces to %s\n", o.RecordTo)
	}
	return r, runErr
}

func hostname(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Hostname()
	}
	return u
}

// prepare makes the run's folder in the dev workspace and imports the
// training notebook (examples/notebooks/train.py) into it.
func prepare(ctx context.Context, t Targets, p Plan, root string) error {
	src, err := os.ReadFile(filepath.Join(root, "examples", "notebooks", "train.py"))
	if err != nil {
		return err
	}
	c, err := client.New(t.Dev)
	if err != nil {
		return err
	}
	ws := workspace.NewWorkspace(c)
	if err := ws.Mkdirs(ctx, workspace.Mkdirs{Path: p.Folder}); err != nil {
		return fmt.Errorf("dev workspace: creating %s: %w", p.Folder, err)
	}
	err = ws.Import(ctx, workspace.Import{
		Path: p.TrainNotebook, Format: workspace.ImportFormatSource, Language: workspace.LanguagePython,
		Content: base64.StdEncoding.EncodeToString(src), Overwrite: true,
	})
	if err != nil {
		return fmt.Errorf("dev workspace: importing the training notebook to %s: %w", p.TrainNotebook, err)
	}
	return nil
}
