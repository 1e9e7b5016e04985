// Package compute reads the compute a Databricks job task runs on from a
// task's inputs, and applies it to the SDK's job and one-time-run task types.
// DatabricksTrain and BatchScore declare the same inputs in their task.json
// (the names are the constants below):
//
//	compute               newCluster (default) | existingCluster | serverless
//	sparkVersion          Databricks Runtime key, e.g. 17.3.x-cpu-ml-scala2.13
//	nodeType              VM size, e.g. Standard_DS3_v2 (empty with a pool)
//	workers               a fixed number of workers, or
//	autoscale             min-max workers, e.g. 2-8, or
//	singleNode            true: a driver-only cluster
//	instancePoolId        take the nodes from an instance pool
//	driverInstancePoolId  the driver's pool (default: instancePoolId)
//	policyId              a cluster policy
//	sparkConf, customTags key=value lines
//	clusterId             an all-purpose cluster (existingCluster)
//
// Serverless means no cluster at all on the task: Databricks runs notebook
// tasks on serverless jobs compute when the workspace has it
// (https://learn.microsoft.com/azure/databricks/jobs/run-serverless-jobs).
package compute

import (
	"fmt"
	"regexp"
	"strconv"

	sdkcompute "github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/brickferry/brickferry/internal/agent"
)

// Kind is where a task runs.
type Kind string

const (
	NewCluster      Kind = "newCluster"
	ExistingCluster Kind = "existingCluster"
	Serverless      Kind = "serverless"
)

// Spec is the compute of one task.
type Spec struct {
	Kind         Kind
	SparkVersion string
	NodeType     string
	MinWorkers   int // a fixed size, or the autoscale range with MaxWorkers
	MaxWorkers   int
	SingleNode   bool
	PoolID       string
	DriverPoolID string
	PolicyID     string
	SparkConf    map[string]string
	CustomTags   map[string]string
	ClusterID    string // existingCluster

	Autoscale bool // MinWorkers-MaxWorkers is an autoscale range (even if equal)
}

// The inputs, as declared in the tasks' task.json.
const (
	InputKind         = "compute"
	InputSparkVersion = "sparkVersion"
	InputNodeType     = "nodeType"
	InputWorkers      = "workers"
	InputAutoscale    = "autoscale"
	InputSingleNode   = "singleNode"
	InputPool         = "instancePoolId"
	InputDriverPool   = "driverInstancePoolId"
	InputPolicy       = "policyId"
	InputSparkConf    = "sparkConf"
	InputCustomTags   = "customTags"
	InputCluster      = "clusterId"
)

// InputNames are the compute inputs every task that uses FromInputs must
// declare, with the same label, type, options and help (TestTaskJSONs).
var InputNames = []string{
	InputKind, InputSparkVersion, InputNodeType, InputWorkers, InputAutoscale, InputSingleNode,
	InputPool, InputDriverPool, InputPolicy, InputSparkConf, InputCustomTags, InputCluster,
}

// maxWorkers is a sanity bound, well above what a pipeline step should start.
const maxWorkers = 10000

var (
	autoscaleRe = regexp.MustCompile(`^\s*(\d+)\s*-\s*(\d+)\s*$`)
	// Runtime keys look like 17.3.x-cpu-ml-scala2.13 or 14.3.x-scala2.12
	// (GET /api/2.1/clusters/spark-versions); only the shape is checked.
	sparkVersionRe = regexp.MustCompile(`^\d+\.\d+\.x-[A-Za-z0-9._-]+$`)
	// Cluster, pool and policy ids: 0123-456789-abcdefgh, 0123-456789-pool12-abcdefgh, E0123456789ABCDEF.
	idRe       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{2,99}$`)
	nodeTypeRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// FromInputs reads the compute inputs; problems are recorded in in.
// defaultWorkers is the size of a new cluster when none of workers,
// autoscale and singleNode is given; negative makes one of them required.
func FromInputs(in *agent.Inputs, defaultWorkers int) Spec {
	s := Spec{Kind: Kind(in.Choice(InputKind))}
	switch s.Kind {
	case NewCluster:
		s.readNewCluster(in, defaultWorkers)
	case ExistingCluster:
		s.ClusterID = in.String(InputCluster)
		if s.ClusterID != "" && !idRe.MatchString(s.ClusterID) {
			in.Fail(InputCluster, "%q is not a cluster id such as 0123-456789-abcdefgh", agent.Neutralize(s.ClusterID))
		}
	}
	return s
}

func (s *Spec) readNewCluster(in *agent.Inputs, defaultWorkers int) {
	s.SparkVersion = in.String(InputSparkVersion)
	if s.SparkVersion != "" && !sparkVersionRe.MatchString(s.SparkVersion) {
		in.Fail(InputSparkVersion, "%q is not a Databricks Runtime version key such as 17.3.x-cpu-ml-scala2.13", agent.Neutralize(s.SparkVersion))
	}
	s.PoolID = readID(in, InputPool, "an instance pool id")
	s.DriverPoolID = readID(in, InputDriverPool, "an instance pool id")
	s.PolicyID = readID(in, InputPolicy, "a cluster policy id")
	if s.DriverPoolID != "" && s.PoolID == "" {
		in.Fail(InputDriverPool, "needs an instance pool for the workers as well (%s)", InputPool)
	}
	s.NodeType = in.String(InputNodeType)
	switch {
	case s.NodeType == "" && s.PoolID == "":
		in.Fail(InputNodeType, "is required unless the nodes come from an instance pool: give a VM size such as Standard_DS3_v2")
	case s.NodeType != "" && !nodeTypeRe.MatchString(s.NodeType):
		in.Fail(InputNodeType, "%q is not a node type such as Standard_DS3_v2", agent.Neutralize(s.NodeType))
	}
	if s.PoolID != "" {
		s.NodeType = "" // the pool decides (the API refuses both)
	}
	workers, autoscale, single := in.String(InputWorkers), in.String(InputAutoscale), in.Bool(InputSingleNode)
	switch {
	case workers != "" && autoscale != "":
		in.Fail(InputAutoscale, "cannot be combined with Workers (%s): give one of them", agent.Neutralize(workers))
	case single && (workers != "" && workers != "0" || autoscale != ""):
		in.Fail(InputSingleNode, "a single-node cluster has no workers: clear Workers and Autoscale")
	case single:
		s.SingleNode = true
	case autoscale != "":
		m := autoscaleRe.FindStringSubmatch(autoscale)
		if m == nil {
			in.Fail(InputAutoscale, "%q is not a range of workers like 2-8 (min at least 1, max not below min)", agent.Neutralize(autoscale))
			break
		}
		s.MinWorkers, _ = strconv.Atoi(m[1])
		s.MaxWorkers, _ = strconv.Atoi(m[2])
		if s.MinWorkers < 1 || s.MaxWorkers < s.MinWorkers || s.MaxWorkers > maxWorkers {
			in.Fail(InputAutoscale, "%q is not a range of workers like 2-8 (min at least 1, max not below min, at most %d)", autoscale, maxWorkers)
		}
		s.Autoscale = true
	case workers != "":
		n, err := strconv.Atoi(workers)
		if err != nil || n < 0 || n > maxWorkers {
			in.Fail(InputWorkers, "%q is not a number of workers from 0 to %d", agent.Neutralize(workers), maxWorkers)
		}
		s.MinWorkers, s.MaxWorkers = n, n
	case defaultWorkers >= 0:
		s.MinWorkers, s.MaxWorkers = defaultWorkers, defaultWorkers
	default:
		in.Fail(InputWorkers, "is required: give a number of workers, an autoscale range (Autoscale), or tick Single node")
	}
	s.SparkConf = keyValues(in.KeyValues(InputSparkConf))
	s.CustomTags = keyValues(in.KeyValues(InputCustomTags))
}

func keyValues(kvs []agent.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func readID(in *agent.Inputs, name, what string) string {
	v := in.String(name)
	if v != "" && !idRe.MatchString(v) {
		in.Fail(name, "%q is not %s", agent.Neutralize(v), what)
	}
	return v
}

// NewCluster is the cluster a newCluster spec starts (nil for an existing
// cluster or serverless).
//
// It always asks for the dedicated (single user) access mode,
// data_security_mode SINGLE_USER, without single_user_name: on a job cluster
// Databricks then gives the cluster to the identity the run runs as (the
// pipeline's service principal or user). That is the mode Databricks Runtime
// for Machine Learning needs to read and write Unity Catalog: the standard
// (shared) mode refuses ML runtimes ("does not support Table Access
// Control"), and a cluster created through the API with no mode gets no
// isolation and no Unity Catalog access
// (https://learn.microsoft.com/azure/databricks/compute/access-mode-limitations).
// A cluster policy that fixes another access mode makes Databricks refuse
// the cluster; such a policy must allow SINGLE_USER.
func (s Spec) NewCluster() *sdkcompute.ClusterSpec {
	if s.Kind != NewCluster {
		return nil
	}
	c := &sdkcompute.ClusterSpec{
		SparkVersion:         s.SparkVersion,
		NodeTypeId:           s.NodeType,
		InstancePoolId:       s.PoolID,
		DriverInstancePoolId: s.DriverPoolID,
		PolicyId:             s.PolicyID,
		DataSecurityMode:     sdkcompute.DataSecurityModeSingleUser,
		SparkConf:            copyMap(s.SparkConf),
		CustomTags:           copyMap(s.CustomTags),
	}
	if s.PoolID != "" && s.DriverPoolID == "" {
		c.DriverInstancePoolId = s.PoolID
	}
	switch {
	case s.SingleNode:
		// https://learn.microsoft.com/azure/databricks/compute/configure#single-node
		c.ForceSendFields = []string{"NumWorkers"}
		if c.SparkConf == nil {
			c.SparkConf = map[string]string{}
		}
		if c.CustomTags == nil {
			c.CustomTags = map[string]string{}
		}
		c.SparkConf["spark.databricks.cluster.profile"] = "singleNode"
		c.SparkConf["spark.master"] = "local[*, 4]"
		c.CustomTags["ResourceClass"] = "SingleNode"
	case s.Autoscale:
		c.Autoscale = &sdkcompute.AutoScale{MinWorkers: s.MinWorkers, MaxWorkers: s.MaxWorkers}
	default:
		c.NumWorkers = s.MinWorkers
		c.ForceSendFields = []string{"NumWorkers"}
	}
	return c
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ApplyToJobTask points a job task at the compute and returns the job
// clusters the job must declare (one, keyed clusterKey, for a new cluster).
func (s Spec) ApplyToJobTask(t *jobs.Task, clusterKey string) []jobs.JobCluster {
	switch s.Kind {
	case ExistingCluster:
		t.ExistingClusterId = s.ClusterID
	case NewCluster:
		t.JobClusterKey = clusterKey
		return []jobs.JobCluster{{JobClusterKey: clusterKey, NewCluster: *s.NewCluster()}}
	}
	return nil
}

// ApplyToSubmitTask points a one-time-run task at the compute.
func (s Spec) ApplyToSubmitTask(t *jobs.SubmitTask) {
	switch s.Kind {
	case ExistingCluster:
		t.ExistingClusterId = s.ClusterID
	case NewCluster:
		t.NewCluster = s.NewCluster()
	}
}

// String describes the compute for the log and the summary.
func (s Spec) String() string {
	switch s.Kind {
	case NewCluster:
		size := fmt.Sprintf("%d workers", s.MinWorkers)
		switch {
		case s.SingleNode:
			size = "single node"
		case s.Autoscale:
			size = fmt.Sprintf("%d-%d workers", s.MinWorkers, s.MaxWorkers)
		case s.MinWorkers == 1:
			size = "1 worker"
		}
		nodes := s.NodeType
		if s.PoolID != "" {
			nodes = "pool " + s.PoolID
		}
		return fmt.Sprintf("new job cluster %s, %s, %s", s.SparkVersion, nodes, size)
	case ExistingCluster:
		return "existing cluster " + s.ClusterID
	case Serverless:
		return "serverless"
	}
	return string(s.Kind)
}
