package modelcopy

import (
	"context"

	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/registry"
)

// The dry run's plan.

// plan prints what a copy would do.
func (s *session) plan(ctx context.Context, sv *sourceVersion, existing []candidate, out Outcome) error {
	o := s.opts
	s.log.Section("Dry run: the plan (nothing is changed)")
	s.log.Info("Source: %s version %d in %s, run %s: %d files, %s.", o.Source.Full, sv.number, s.src.Host, orNone(sv.runID), out.Files, mib(out.Bytes))
	for _, c := range existing {
		if c.version > 0 && (c.status == "READY" || c.status == "PENDING_REGISTRATION") && c.digest != "" {
			s.log.Info("Target version %d of %s was copied from this source version (digest %s): a real run reads the source (%s), and reuses it if the content is unchanged.", c.version, o.Target.Full, c.digest, mib(out.Bytes))
			break
		}
	}
	modelExists, err := s.targetModelExists(ctx)
	if err != nil {
		return err
	}
	expID, err := s.experiment(ctx)
	if err != nil {
		return err
	}
	s.log.Info("Target workspace: %s", s.tgt.Host)
	s.log.Info("  experiment %s: %s", o.Experiment, existsWord(expID != "", "exists", "would be created"))
	resume := ""
	for _, c := range existing {
		if c.version == 0 && c.run != nil && c.run.Info != nil && c.run.Info.Status != ml.RunInfoStatusFinished && tagOf(c.run, registry.TagCopyStatus) != statusSuperseded {
			resume = c.runID
		}
	}
	params, metrics, tags := 0, 0, 0
	if sv.run != nil && sv.run.Data != nil {
		params, metrics, tags = len(sv.run.Data.Params), len(sv.run.Data.Metrics), len(copiedTags(sv.run, ""))
	}
	if resume != "" {
		s.log.Info("  run %s left by an earlier attempt would be resumed", resume)
	} else {
		s.log.Info("  a new run would get %d parameters, %d metrics, %d tags and %d lineage tags", params, metrics, tags, len(s.lineage(sv))+2)
	}
	s.log.Info("  registered model %s (%s): %s", o.Target.Full, registryName(o.Target.UC()), existsWord(modelExists, "exists", "would be created"))
	logged, err := s.targetHasLoggedModels(ctx)
	if err != nil {
		return err
	}
	switch {
	case logged && o.Target.UC():
		s.log.Info("  a logged model of the run would be created (MLflow 3) and get the %d files (%s); a new version would be created from it, the files uploaded to its storage location, then finalized", out.Files, mib(out.Bytes))
	case logged:
		s.log.Info("  a logged model of the run would be created (MLflow 3) and get the %d files (%s), then a new version registered from it", out.Files, mib(out.Bytes))
	case o.Target.UC():
		s.log.Info("  a new version would be created, %d files (%s) uploaded to its storage location, then finalized", out.Files, mib(out.Bytes))
	default:
		s.log.Info("  %d files (%s) would be copied into the run's artifacts, then a new version registered from them", out.Files, mib(out.Bytes))
	}
	if o.Stage != "" || o.Alias != "" {
		s.log.Info("  the version would then be moved to %s", s.targetLabel())
	}
	return nil
}

func existsWord(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func registryName(uc bool) string {
	if uc {
		return "Unity Catalog"
	}
	return "workspace model registry"
}
