package serve

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/serving"

	"github.com/brickferry/brickferry/internal/agent"
)

// Options is everything ModelServe@1 was asked to do, read from its inputs
// and validated before any remote call.
type Options struct {
	Endpoint       string // serving endpoint name
	Model          string // workspace registry name, or catalog.schema.model
	Version        string // a positive whole number
	WorkloadSize   string // Small, Medium or Large
	WorkloadType   serving.ServingModelWorkloadType
	ScaleToZero    bool
	EnvVars        map[string]string // plain values or {{secrets/scope/key}}
	Tags           []serving.EndpointTag
	TrafficPercent int  // 1..100: share of traffic for the new version
	FailIfUpdating bool // fail instead of waiting when an update is in progress
	Timeout        time.Duration
	Rollback       bool
	SmokeTest      bool
	Payload        *Payload // nil: use the model's input example
	Gateway        Gateway  // AI Gateway parts to set (aigateway.go)
	Canary         Canary   // how a canary is judged (canary.go)
	RouteOptimized bool     // create the endpoint route-optimized (routeopt.go)
}

// endpointName is what the serving API accepts for an endpoint name:
// letters, digits, dashes and underscores
// (https://docs.databricks.com/api/azure/workspace/servingendpoints/create;
// databricks-sdk-go v0.81.0 service/serving model.go, CreateServingEndpoint.Name:
// "An endpoint name can consist of alphanumeric characters, dashes, and
// underscores"), at most 63 characters (the limit the workspace UI enforces).
var endpointName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// secretRef is a Databricks secret reference as accepted in a served
// entity's environment_vars
// (https://learn.microsoft.com/azure/databricks/machine-learning/model-serving/store-env-variable-model-serving).
var secretRef = regexp.MustCompile(`^\{\{secrets/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\}\}$`)

// envName is a POSIX environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// workloadSizes are the sizes the serving API names for CPU and GPU models.
var workloadSizes = []string{"Small", "Medium", "Large"}

const maxTimeout = 24 * time.Hour

// readOptions is ReadOptions as auth.Task calls it.
func readOptions(_ agent.Env, in *agent.Inputs) Options { return ReadOptions(in) }

// ReadOptions reads the task's inputs into Options, recording every problem
// in in (see agent.Inputs.Err). A request body file is read here, so that a
// missing or malformed one is reported with the other inputs.
func ReadOptions(in *agent.Inputs) Options {
	o := Options{
		Endpoint:       in.String("endpointName"),
		Model:          in.String("modelName"),
		Version:        in.String("modelVersion"),
		WorkloadSize:   in.Choice("workloadSize"),
		WorkloadType:   serving.ServingModelWorkloadType(in.Choice("workloadType")),
		ScaleToZero:    in.Bool("scaleToZero"),
		RouteOptimized: in.Bool("routeOptimized"),
		TrafficPercent: in.Int("trafficPercent", 1, 100),
		FailIfUpdating: in.Choice("ifUpdateInProgress") == "fail",
		Rollback:       in.Bool("rollback"),
		SmokeTest:      in.Bool("smokeTest"),
	}
	if o.Endpoint != "" && !endpointName.MatchString(o.Endpoint) {
		in.Fail("endpointName", "%q is not a valid endpoint name: use 1 to 63 letters, digits, dashes (-) and underscores (_)", agent.Neutralize(o.Endpoint))
	}
	if o.Model != "" && (strings.ContainsAny(o.Model, "/ \t") || strings.HasPrefix(o.Model, ".") || strings.HasSuffix(o.Model, ".") || strings.Contains(o.Model, "..")) {
		in.Fail("modelName", "%q is not a model name: give a workspace registry name (churn) or a Unity Catalog name (catalog.schema.model)", agent.Neutralize(o.Model))
	}
	if o.Version != "" {
		if n, err := strconv.Atoi(o.Version); err != nil || n < 1 || strconv.Itoa(n) != o.Version {
			in.Fail("modelVersion", "%q is not a model version number (1, 2, ...)", agent.Neutralize(o.Version))
		}
	}
	if o.WorkloadSize != "" && !slices.Contains(workloadSizes, o.WorkloadSize) {
		in.Fail("workloadSize", "%q is not a workload size: use one of %s", o.WorkloadSize, strings.Join(workloadSizes, ", "))
	}
	o.Timeout = in.Minutes("timeoutMinutes", time.Second, maxTimeout)
	o.Gateway = readGateway(in)
	o.Canary = readCanary(in, o.TrafficPercent)
	o.EnvVars = readEnvVars(in)
	for _, kv := range in.KeyValues("tags") {
		o.Tags = append(o.Tags, serving.EndpointTag{Key: kv.Key, Value: kv.Value})
	}
	inline := in.String("smokeTestPayload")
	file := in.FilePath("smokeTestPayloadFile")
	if !o.SmokeTest {
		return o
	}
	switch {
	case inline != "" && file != "":
		in.Fail("smokeTestPayloadFile", "give either a request body file or an inline request body, not both")
	case inline != "":
		p, err := ParsePayload([]byte(inline))
		if err != nil {
			in.Fail("smokeTestPayload", "%v", err)
		}
		o.Payload = p
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			in.Fail("smokeTestPayloadFile", "cannot read %s: %v", file, err)
			break
		}
		p, err := ParsePayload(data)
		if err != nil {
			in.Fail("smokeTestPayloadFile", "%s: %v", file, err)
		}
		o.Payload = p
	}
	return o
}

func readEnvVars(in *agent.Inputs) map[string]string {
	kvs := in.KeyValues("environmentVariables")
	if len(kvs) == 0 {
		return nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if !envName.MatchString(kv.Key) {
			in.Fail("environmentVariables", "%q is not an environment variable name (letters, digits and _, not starting with a digit)", agent.Neutralize(kv.Key))
			continue
		}
		if strings.Contains(kv.Value, "{{") && !secretRef.MatchString(kv.Value) {
			in.Fail("environmentVariables", "%s: a secret reference must be the whole value, as {{secrets/<scope>/<key>}}", kv.Key)
			continue
		}
		out[kv.Key] = kv.Value
	}
	return out
}

// servedName is the name of the served entity for a model version, the
// default the serving API gives one (dots of a Unity Catalog name become
// dashes): churn-3, main-ml-churn-3.
func servedName(model, version string) string {
	return fmt.Sprintf("%s-%s", strings.ReplaceAll(model, ".", "-"), version)
}
