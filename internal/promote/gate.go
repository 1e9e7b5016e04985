package promote

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/brickferry/brickferry/internal/registry"
)

// gate compares the candidate's metric with the metric of the version that
// holds the target stage or alias. The decision is the output promote; a
// candidate that does not pass fails the task or warns (onGateFail).
func (s *step) gate(ctx context.Context) (*result, error) {
	o := s.opts
	name := o.Model
	cand, err := s.ws.Resolve(ctx, name, o.Version)
	if err != nil {
		return nil, err
	}
	res := &result{version: cand.Number, stage: cand.Stage}
	candValue, err := s.metric(ctx, cand, "candidate")
	if err != nil {
		return nil, err
	}
	cur, hasCur, err := s.holder(ctx)
	if err != nil {
		return nil, err
	}
	s.log.Info("Candidate: version %d of %s, %s = %s.", cand.Number, name.Full, o.Metric, num(candValue))

	var reasons []string // why the candidate does not pass
	pass := func(cond bool, why string) {
		if !cond {
			reasons = append(reasons, why)
		}
	}
	better := "higher"
	if !o.HigherIsBetter {
		better = "lower"
	}
	if o.Threshold != nil {
		t := *o.Threshold
		if o.HigherIsBetter {
			pass(candValue >= t, fmt.Sprintf("%s = %s is below the threshold %s", o.Metric, num(candValue), num(t)))
		} else {
			pass(candValue <= t, fmt.Sprintf("%s = %s is above the threshold %s", o.Metric, num(candValue), num(t)))
		}
	}
	switch {
	case !hasCur:
		s.log.Info("No version of %s holds %s yet: the candidate is only checked against the threshold, if any.", name.Full, o.Target())
		res.note = fmt.Sprintf("No version held %s.", o.Target())
	case cur.Number == cand.Number:
		s.log.Info("Version %d already holds %s: nothing to compare with.", cand.Number, o.Target())
		res.previous = cur.Number
		res.note = fmt.Sprintf("Version %d already held %s.", cand.Number, o.Target())
	default:
		res.previous = cur.Number
		curValue, err := s.metric(ctx, cur, "current "+o.Target())
		if err != nil {
			// Without the metric on the current version there is nothing to
			// compare: the gate does not pass, and says why.
			reasons = append(reasons, err.Error())
			break
		}
		s.log.Info("Current %s: version %d, %s = %s.", o.Target(), cur.Number, o.Metric, num(curValue))
		need := curValue + o.MinImprovement
		ok := candValue >= need
		if !o.HigherIsBetter {
			need = curValue - o.MinImprovement
			ok = candValue <= need
		}
		pass(ok, fmt.Sprintf("%s = %s does not beat version %d (%s) by %s (%s is better): it needed %s", o.Metric, num(candValue), cur.Number, num(curValue), num(o.MinImprovement), better, num(need)))
		res.note = fmt.Sprintf("Compared %s with version %d in %s: %s vs %s (%s is better, minimum improvement %s).", o.Metric, cur.Number, o.Target(), num(candValue), num(curValue), better, num(o.MinImprovement))
	}
	promote := len(reasons) == 0
	res.promote = &promote
	if promote {
		s.log.Info("Gate passed: version %d may be promoted to %s.", cand.Number, o.Target())
		res.note += " Gate passed."
		return res, nil
	}
	msg := fmt.Sprintf("gate not passed for version %d of %s to %s: %s", cand.Number, name.Full, o.Target(), strings.Join(reasons, "; "))
	res.note += " Gate not passed: " + strings.Join(reasons, "; ") + "."
	if o.FailOnGate {
		return res, fmt.Errorf("%s", msg)
	}
	s.log.Warning("%s (onGateFail is warn: the pipeline goes on with promote=false)", msg)
	return res, nil
}

// holder is the version that now holds the target stage (the newest, when
// several do) or alias.
func (s *step) holder(ctx context.Context) (registry.Version, bool, error) {
	name := s.opts.Model
	if name.UC() {
		aliases, err := s.ws.Aliases(ctx, name)
		if err != nil {
			return registry.Version{}, false, err
		}
		n, ok := aliases[s.opts.Alias]
		if !ok {
			return registry.Version{}, false, nil
		}
		v, err := s.ws.Get(ctx, name, n)
		return v, err == nil, err
	}
	all, err := s.ws.Versions(ctx, name)
	if err != nil {
		return registry.Version{}, false, err
	}
	for _, v := range all {
		if v.Stage == s.opts.Stage {
			return v, true, nil
		}
	}
	return registry.Version{}, false, nil
}

// metric reads the gate's metric from a version's source run.
func (s *step) metric(ctx context.Context, v registry.Version, role string) (float64, error) {
	name, metric := s.opts.Model.Full, s.opts.Metric
	if v.RunID == "" {
		return 0, fmt.Errorf("the %s version %d of %s has no source run, so it has no metric %s", role, v.Number, name, metric)
	}
	run, err := s.ws.run(ctx, v.RunID, fmt.Sprintf("source run of the %s version %d of %s", role, v.Number, name))
	if err != nil {
		return 0, err
	}
	var have []string
	if run.Data != nil {
		for _, m := range run.Data.Metrics {
			if m.Key == metric {
				return m.Value, nil
			}
			have = append(have, m.Key)
		}
	}
	sort.Strings(have)
	logged := "it logged no metrics"
	if len(have) > 0 {
		logged = "it logged: " + strings.Join(have, ", ")
	}
	return 0, fmt.Errorf("metric %s not found in MLflow run %s, the source run of the %s version %d of %s in workspace %s (%s)", metric, v.RunID, role, v.Number, name, s.ws.Host, logged)
}

// num prints a metric value without floating-point noise (0.95, not 0.9500000000000001).
func num(f float64) string { return strconv.FormatFloat(f, 'g', 12, 64) }
