// Package modelcopy is the copy command of MLflowPromote@1: it deploys a
// model version from one Azure Databricks workspace to another, with its run.
//
// In the target workspace an experiment gets a new run carrying the source
// run's parameters, metrics (latest values), tags and run name plus lineage
// tags (brickferry_*: source workspace, run, model version, pipeline run,
// commit, content digest); the model's files are streamed into that run
// (package artifacts), a version is registered from it and the copy waits
// until it is READY, then optionally moves it to a stage or alias. In a
// target of MLflow 3 the files go to a logged model of that run instead, and
// the version is registered from it (loggedmodel.go). Unity
// Catalog targets get their version through MLflow's UC protocol (create,
// temporary credentials, upload to the storage location, finalize); within
// one metastore nothing moves and only the alias is set.
//
// The copy is idempotent: a target version whose lineage names the same
// source version and whose content digest equals the source's is reused; a
// run left half-made by a failure or a killed process is resumed by the next
// attempt, and no version is ever registered from files that were not all
// written and checked. See docs/copy.md.
package modelcopy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/service/catalog"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/artifacts"
	"github.com/brickferry/brickferry/internal/converge"
	"github.com/brickferry/brickferry/internal/modeluri"
	"github.com/brickferry/brickferry/internal/registry"
)

// Deps are the copy's connections to the outside.
type Deps struct {
	// Source and Target connect the two workspaces (package auth in the
	// task: ReadOptions(in, "") and ReadOptions(in, "target")).
	Source func(ctx context.Context) (*client.DatabricksClient, error)
	Target func(ctx context.Context) (*client.DatabricksClient, error)
	// Storage carries the requests to signed storage URLs (the agent's proxy
	// and certificates, no credentials). Nil: Go's default transport.
	Storage *http.Client
	// Transfer tunes the file transfer (block size, files in parallel,
	// retries); HTTPClient, Files and Progress are filled in by Run.
	Transfer artifacts.Options
	// Poll is the first pause between readings of a version's status
	// (default 250 ms); it doubles up to 10 s, as registrations take seconds
	// to minutes (the register command waits the same way).
	Poll time.Duration
	// Clock drives that wait (default the wall clock); tests advance an
	// emulated workspace with it.
	Clock converge.Clock
}

// Outcome is what the copy did, for the outputs and the summary.
type Outcome struct {
	SourceHost, TargetHost string
	Source                 modeluri.Name
	SourceVersion          int
	SourceRunID            string
	Target                 modeluri.Name
	TargetVersion          int
	TargetRunID            string
	TargetExperimentID     string
	Files                  int   // files in the model
	Bytes                  int64 // bytes in the model
	FilesCopied            int
	BytesCopied            int64
	Digest                 string
	Reused                 bool // an existing target version was reused
	Concurrent             bool // a concurrent copy made the version first (twins.go)
	SameMetastore          bool // Unity Catalog within one metastore: nothing moved
	Resumed                bool // a half-made run of an earlier attempt was finished
	DryRun                 bool
	Lineage                []agent.KeyValue
	Stage, Alias           string
	SourceURL, TargetURL   string // links to the versions
	TargetRunURL           string
}

// ModelURI is the target version's models:/ URI.
func (o Outcome) ModelURI() string {
	if o.TargetVersion == 0 {
		return ""
	}
	return modeluri.ModelsURI(o.Target.Full, strconv.Itoa(o.TargetVersion))
}

type session struct {
	opts     Options
	deps     Deps
	log      *agent.Log
	src, tgt *workspace
	copier   *artifacts.Copier
	poll     time.Duration
	clock    converge.Clock
	digest   string // the source's content digest, once read (sourceDigest)
	// The target experiment as this session last saw it (experiment): its
	// id once read or created, or that it was not there. Each request to a
	// workspace waits its turn under the SDK's rate limit (15 a second), so
	// the copy asks once, not at every step that needs the id.
	expID      string
	expMissing bool
}

// Run copies a model version as Options say, writes the task's outputs and
// summary, and returns what it did.
func Run(ctx context.Context, o Options, d Deps, log *agent.Log) (Outcome, error) {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	srcC, err := d.Source(ctx)
	if err != nil {
		return Outcome{}, err
	}
	tgtC, err := d.Target(ctx)
	if err != nil {
		return Outcome{}, err
	}
	s := &session{opts: o, deps: d, log: log, src: newWorkspace(srcC), tgt: newWorkspace(tgtC), poll: d.Poll, clock: converge.Or(d.Clock)}
	if s.poll <= 0 {
		s.poll = 250 * time.Millisecond
	}
	s.copier = artifacts.New(s.transferOptions())
	out, err := s.run(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) && o.Timeout > 0 {
			err = fmt.Errorf("the copy did not finish within %s: %w", o.Timeout, err)
		}
		return out, err
	}
	if !o.DryRun {
		s.report(out)
	}
	return out, nil
}

func (s *session) transferOptions() artifacts.Options {
	t := s.deps.Transfer
	if t.HTTPClient == nil {
		t.HTTPClient = s.deps.Storage
	}
	if s.opts.Parallel > 0 {
		t.Files = s.opts.Parallel
	}
	last := -1
	t.Progress = func(done, total int64) {
		if total == 0 {
			return
		}
		pct := int(done * 100 / total)
		if pct/5 != last/5 {
			last = pct
			s.log.Progress(pct, fmt.Sprintf("%s of %s copied", mib(done), mib(total)))
		}
	}
	t.Retried = func(path string, attempt int, err error) {
		s.log.Info("Retrying %s (attempt %d): %v", path, attempt, err)
	}
	return t
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (s *session) run(ctx context.Context) (Outcome, error) {
	o := s.opts
	sv, err := s.resolveSource(ctx)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{SourceHost: s.src.Host, TargetHost: s.tgt.Host, Source: o.Source, SourceVersion: sv.number, SourceRunID: sv.runID,
		Target: o.Target, DryRun: o.DryRun, Stage: o.Stage, Alias: o.Alias, SourceURL: s.src.VersionURL(o.Source, sv.number)}
	s.log.Info("Source: version %d of %s in %s (run %s).", sv.number, o.Source.Full, s.src.Host, orNone(sv.runID))

	if o.Source.UC() && o.Target.UC() && o.Source.Full == o.Target.Full {
		same, err := s.sameMetastore(ctx, sv)
		if err != nil {
			return out, err
		}
		if same {
			return s.aliasOnly(ctx, sv, out)
		}
	}
	if err := s.listFiles(ctx, sv); err != nil {
		return out, err
	}
	for _, f := range sv.files {
		out.Bytes += f.Size
	}
	out.Files = len(sv.files)
	s.log.Info("%d files, %s to copy.", out.Files, mib(out.Bytes))

	existing, err := s.findExisting(ctx, sv)
	if err != nil {
		return out, err
	}
	if o.DryRun {
		return out, s.plan(ctx, sv, existing, out)
	}
	if reused, ok, err := s.tryReuse(ctx, sv, existing, out); err != nil || ok {
		if err == nil {
			err = s.transition(ctx, reused.TargetVersion)
		}
		return reused, err
	}
	out, err = s.copy(ctx, sv, existing, out)
	if err != nil {
		return out, err
	}
	return out, s.transition(ctx, out.TargetVersion)
}

// transition moves the target version to the stage or alias asked for,
// with the transition command's rules (registry.Transition).
func (s *session) transition(ctx context.Context, version int) error {
	if s.opts.Stage == "" && s.opts.Alias == "" {
		return nil
	}
	_, err := s.tgt.Transition(ctx, registry.TransitionRequest{
		Model: s.opts.Target, Version: modeluri.VersionRef{Number: version}, Stage: s.opts.Stage, Alias: s.opts.Alias,
		ArchiveExisting: true, Lineage: registry.LineageOf(s.opts.Pipeline), Log: s.log,
	})
	if err != nil {
		return fmt.Errorf("version %d of %s was copied, but moving it to %s failed: %w", version, s.opts.Target.Full, s.targetLabel(), err)
	}
	return nil
}

func (s *session) targetLabel() string {
	if s.opts.Alias != "" {
		return "@" + s.opts.Alias
	}
	return s.opts.Stage
}

// sameMetastore reports whether the target workspace sees the very same
// Unity Catalog version (same metastore, same version id): then the
// source is already in the target and no bytes need to move.
func (s *session) sameMetastore(ctx context.Context, sv *sourceVersion) (bool, error) {
	mv, err := s.tgt.UCVersions.Get(ctx, catalogGet(sv.name.Full, sv.number))
	if err != nil {
		if registry.NotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("looking for %s version %d in the target workspace: %w", sv.name.Full, sv.number, err)
	}
	return mv.Id != "" && mv.Id == sv.ucID && mv.MetastoreId == sv.metastore, nil
}

func (s *session) aliasOnly(ctx context.Context, sv *sourceVersion, out Outcome) (Outcome, error) {
	out.SameMetastore, out.Reused = true, true
	out.TargetVersion, out.TargetRunID = sv.number, sv.runID
	out.TargetURL = s.tgt.VersionURL(s.opts.Target, sv.number)
	s.log.Info("Source and target workspaces share the Unity Catalog metastore %s: version %d of %s is already visible in %s. No bytes move.", sv.metastore, sv.number, sv.name.Full, s.tgt.Host)
	if s.opts.DryRun {
		if s.opts.Alias != "" {
			s.log.Info("Dry run: would set @%s on version %d of %s. Nothing was changed.", s.opts.Alias, sv.number, sv.name.Full)
		} else {
			s.log.Info("Dry run: nothing to do. Nothing was changed.")
		}
		return out, nil
	}
	return out, s.transition(ctx, sv.number)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func catalogGet(full string, n int) catalog.GetModelVersionRequest {
	return catalog.GetModelVersionRequest{FullName: full, Version: n}
}
