package registry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/ml"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/modeluri"
)

// ActionTags are the lineage tags of a version whose source run is runID
// after action (register, transition to Production, alias champion, ...):
// the pipeline run's, the run, the action.
func (l Lineage) ActionTags(runID, action string) []agent.KeyValue {
	return l.Tags(nil, agent.KeyValue{Key: TagModelRunID, Value: runID}, agent.KeyValue{Key: TagAction, Value: action})
}

// TagVersion sets tags on version v, skipping those that already have the
// value (a re-run writes nothing). Unity Catalog versions are tagged
// through MLflow's UC routes (their tags are read there too: the Unity
// Catalog model version API of SDK v0.81.0 carries none).
func (r *Registry) TagVersion(ctx context.Context, name modeluri.Name, v Version, tags []agent.KeyValue) error {
	have := v.Tags
	if name.UC() {
		var err error
		if have, err = r.ucTags(ctx, name.Full, v.Number); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if cur, ok := have[t.Key]; ok && cur == t.Value {
			continue
		}
		if err := r.setTag(ctx, name, v.Number, t.Key, t.Value); err != nil {
			return fmt.Errorf("tagging version %d of %s with %s: %w", v.Number, name.Full, t.Key, err)
		}
	}
	return nil
}

// setTag sets one tag on version n of either registry.
func (r *Registry) setTag(ctx context.Context, name modeluri.Name, n int, key, value string) error {
	if name.UC() {
		return r.Client.Do(ctx, http.MethodPost, UCRoute+"set-tag", nil, nil, UCSetTagRequest{Name: name.Full, Version: strconv.Itoa(n), Key: key, Value: value}, nil)
	}
	return r.Models.SetModelVersionTag(ctx, ml.SetModelVersionTagRequest{Name: name.Full, Version: strconv.Itoa(n), Key: key, Value: value})
}

// ucTags reads a UC version's tags through MLflow's UC get route.
func (r *Registry) ucTags(ctx context.Context, full string, n int) (map[string]string, error) {
	var resp UCVersionResponse
	err := r.Client.Do(ctx, http.MethodGet, UCRoute+"get", nil, map[string]any{"name": full, "version": strconv.Itoa(n)}, nil, &resp)
	if err != nil {
		return nil, fmt.Errorf("reading the tags of version %d of %s: %w", n, full, err)
	}
	out := map[string]string{}
	if resp.ModelVersion != nil {
		for _, t := range resp.ModelVersion.Tags {
			out[t.Key] = t.Value
		}
	}
	return out, nil
}

// UCReserved are the characters Unity Catalog refuses in a model version's
// tag key: INVALID_PARAMETER_VALUE "Tag name ... contains one or more of the
// reserved characters" (hence the brickferry_* lineage keys).
const UCReserved = ".,-=/:"

// CheckUCTagKey refuses a tag key Unity Catalog would refuse.
func CheckUCTagKey(key string) error {
	if strings.ContainsAny(key, UCReserved) {
		return fmt.Errorf("%q: a Unity Catalog model version tag name may not contain any of . , - = / : (use _ instead)", key)
	}
	return nil
}

// ToUCTags are key/value tags for a Unity Catalog version, each reserved
// character of a key rewritten to "_", as mlflow-export-import does when it
// copies tags into Unity Catalog: what a copy takes from elsewhere must not
// make the registration fail. (Keys a user gives are refused at input
// validation instead, CheckUCTagKey.)
func ToUCTags(kvs []agent.KeyValue) []UCTag {
	var out []UCTag
	for _, kv := range kvs {
		key := strings.Map(func(r rune) rune {
			if strings.ContainsRune(UCReserved, r) {
				return '_'
			}
			return r
		}, kv.Key)
		out = append(out, UCTag{Key: key, Value: kv.Value})
	}
	return out
}
