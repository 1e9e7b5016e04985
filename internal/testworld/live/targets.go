package live

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/compute"

	"github.com/brickferry/brickferry/internal/testworld/demo"
	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

// Targets are the two workspaces a run uses and the settings of the run.
type Targets struct {
	// Dev and Prod configure clients of the two workspaces.
	Dev, Prod *config.Config
	// DevSchema and ProdSchema are the catalog.schema the Unity Catalog
	// sample registers its models in (the prod one also holds the scored
	// table of both samples).
	DevSchema, ProdSchema string
	// TrainTable is the dev table the training notebook reads, InputTable
	// the prod table the scoring step reads: both the rows of
	// examples/data/customer.csv.
	TrainTable, InputTable string
	// WarehouseID is a SQL warehouse of the prod workspace.
	WarehouseID string
	// Prefix starts the name of everything the suite creates.
	Prefix string
	// DevNodeType and ProdNodeType are the node types of the Databricks
	// runs in each workspace (the cost guard: single node, this type):
	// BRICKFERRY_LIVE_NODE_TYPE for both, or, when it is not set, each
	// workspace's smallest node type with a local disk (SmallestNodeTypes).
	DevNodeType, ProdNodeType string
	// Timeout bounds every Databricks run and every serving update.
	Timeout time.Duration
	// Samples are the sample pipelines to run, by demo.Samples' names.
	Samples []string
	// CA is trusted besides the system's roots: the emulator's CA, nil
	// for real workspaces.
	CA *emulator.CA
}

// Environment variables of a live run.
const (
	EnvGate        = "BRICKFERRY_LIVE"              // must be 1
	EnvDev         = "BRICKFERRY_LIVE_DEV_"         // + a unified auth variable, e.g. DATABRICKS_HOST
	EnvProd        = "BRICKFERRY_LIVE_PROD_"        // + a unified auth variable
	EnvDevSchema   = "BRICKFERRY_LIVE_DEV_SCHEMA"   // catalog.schema, default dev.ml
	EnvProdSchema  = "BRICKFERRY_LIVE_PROD_SCHEMA"  // catalog.schema, default prod.ml
	EnvInputTable  = "BRICKFERRY_LIVE_INPUT_TABLE"  // default <prod schema>.customer
	EnvTrainTable  = "BRICKFERRY_LIVE_TRAIN_TABLE"  // default <dev schema>.customer
	EnvWarehouse   = "BRICKFERRY_LIVE_WAREHOUSE_ID" // required
	EnvPrefix      = "BRICKFERRY_LIVE_PREFIX"       // default bflive
	EnvNodeType    = "BRICKFERRY_LIVE_NODE_TYPE"    // default: each workspace's smallest (SmallestNodeTypes)
	EnvTimeout     = "BRICKFERRY_LIVE_TIMEOUT_MINUTES"
	EnvSamples     = "BRICKFERRY_LIVE_SAMPLES" // uc,workspace (default both)
	DefaultTimeout = 30 * time.Minute
)

var (
	schemaName = regexp.MustCompile(`^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$`)
	tableName  = regexp.MustCompile(`^[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$`)
	prefixName = regexp.MustCompile(`^[a-z][a-z0-9]{1,15}$`)
)

// ErrNotEnabled is FromEnv's answer without BRICKFERRY_LIVE=1.
var ErrNotEnabled = errors.New(EnvGate + "=1 is not set: the live suite creates and deletes resources in real workspaces (and costs money), so it runs only when asked to")

// FromEnv reads Targets from the environment getenv reads. It refuses
// without BRICKFERRY_LIVE=1 (ErrNotEnabled), and names every missing or
// invalid variable, with its valid values, before anything is contacted.
func FromEnv(getenv func(string) string) (Targets, error) {
	if getenv(EnvGate) != "1" {
		return Targets{}, ErrNotEnabled
	}
	var problems []string
	t := Targets{
		DevSchema: orDefault(getenv(EnvDevSchema), "dev.ml"), ProdSchema: orDefault(getenv(EnvProdSchema), "prod.ml"),
		WarehouseID: getenv(EnvWarehouse), Prefix: orDefault(getenv(EnvPrefix), "bflive"),
		DevNodeType: getenv(EnvNodeType), ProdNodeType: getenv(EnvNodeType), Timeout: DefaultTimeout,
		Samples: []string{"uc", "workspace"},
	}
	t.InputTable = orDefault(getenv(EnvInputTable), t.ProdSchema+".customer")
	t.TrainTable = orDefault(getenv(EnvTrainTable), t.DevSchema+".customer")
	for name, v := range map[string]string{EnvDevSchema: t.DevSchema, EnvProdSchema: t.ProdSchema} {
		if !schemaName.MatchString(v) {
			problems = append(problems, fmt.Sprintf("%s=%q: give catalog.schema (letters, digits, _)", name, v))
		}
	}
	for name, v := range map[string]string{EnvInputTable: t.InputTable, EnvTrainTable: t.TrainTable} {
		if !tableName.MatchString(v) {
			problems = append(problems, fmt.Sprintf("%s=%q: give catalog.schema.table", name, v))
		}
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`).MatchString(t.WarehouseID) {
		problems = append(problems, fmt.Sprintf("%s=%q: give the id of a SQL warehouse in the prod workspace (letters and digits, as in /sql/warehouses/<id>)", EnvWarehouse, t.WarehouseID))
	}
	if !prefixName.MatchString(t.Prefix) {
		problems = append(problems, fmt.Sprintf("%s=%q: 2 to 16 lower-case letters and digits, starting with a letter", EnvPrefix, t.Prefix))
	}
	if v := getenv(EnvTimeout); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 240 {
			problems = append(problems, fmt.Sprintf("%s=%q: minutes from 1 to 240", EnvTimeout, v))
		}
		t.Timeout = time.Duration(n) * time.Minute
	}
	if v := getenv(EnvSamples); v != "" {
		t.Samples = strings.Split(v, ",")
		for _, s := range t.Samples {
			if _, ok := demo.Samples()[s]; !ok {
				problems = append(problems, fmt.Sprintf("%s=%q: a comma-separated list of uc and workspace", EnvSamples, v))
				break
			}
		}
	}
	var err error
	if t.Dev, err = workspaceConfig(EnvDev, getenv); err != nil {
		problems = append(problems, err.Error())
	}
	if t.Prod, err = workspaceConfig(EnvProd, getenv); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return Targets{}, fmt.Errorf("the live suite's settings:\n  %s", strings.Join(problems, "\n  "))
	}
	return t, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// prefixedEnv is a config.Loader that reads the Databricks unified
// authentication variables (every attribute's env names, DATABRICKS_HOST,
// DATABRICKS_TOKEN, ARM_CLIENT_ID, ...) under a prefix, and nothing else: a
// DATABRICKS_HOST of the shell does not leak into either workspace.
type prefixedEnv struct {
	prefix string
	getenv func(string) string
}

func (l prefixedEnv) Name() string { return "environment variables " + l.prefix + "*" }

func (l prefixedEnv) Configure(cfg *config.Config) error {
	for _, attr := range config.ConfigAttributes {
		if !attr.IsZero(cfg) {
			continue
		}
		for _, env := range attr.EnvVars {
			if v := l.getenv(l.prefix + env); v != "" {
				if err := attr.SetS(cfg, v); err != nil {
					return fmt.Errorf("%s%s: %w", l.prefix, env, err)
				}
				break
			}
		}
	}
	return nil
}

// workspaceConfig is the SDK configuration the variables under prefix
// describe; a profile of ~/.databrickscfg is read only when
// <prefix>DATABRICKS_CONFIG_PROFILE names one.
func workspaceConfig(prefix string, getenv func(string) string) (*config.Config, error) {
	loaders := []config.Loader{prefixedEnv{prefix: prefix, getenv: getenv}}
	if getenv(prefix+"DATABRICKS_CONFIG_PROFILE") != "" {
		loaders = append(loaders, config.ConfigFile)
	}
	cfg := &config.Config{Loaders: loaders}
	if err := cfg.EnsureResolved(); err != nil {
		return nil, fmt.Errorf("%sDATABRICKS_*: %w", prefix, err)
	}
	if cfg.Host == "" {
		return nil, fmt.Errorf("%sDATABRICKS_HOST is not set: give the workspace URL (https://adb-<id>.<n>.azuredatabricks.net), and its credentials in %sDATABRICKS_TOKEN, or %sDATABRICKS_AUTH_TYPE=azure-cli after az login, or %sARM_CLIENT_ID, %sARM_CLIENT_SECRET and %sARM_TENANT_ID", prefix, prefix, prefix, prefix, prefix, prefix)
	}
	return cfg, nil
}

// SmallestNodeTypes fills DevNodeType and ProdNodeType, where not set,
// with each workspace's smallest node type that has a local disk
// (databricks-sdk-go's ClustersAPI.SelectNodeType, the Terraform
// provider's databricks_node_type with local_disk = true).
func SmallestNodeTypes(ctx context.Context, t *Targets) error {
	for _, x := range []struct {
		cfg *config.Config
		out *string
	}{{t.Dev, &t.DevNodeType}, {t.Prod, &t.ProdNodeType}} {
		if *x.out != "" {
			continue
		}
		c, err := client.New(x.cfg)
		if err != nil {
			return err
		}
		nt, err := compute.NewClusters(c).SelectNodeType(ctx, compute.NodeTypeRequest{LocalDisk: true})
		if err != nil {
			return fmt.Errorf("the smallest node type of %s (set %s to choose one): %w", x.cfg.Host, EnvNodeType, err)
		}
		*x.out = nt
	}
	return nil
}

// bearer is a token for the workspace cfg configures, as the tasks need
// one: a personal access token as it is, or an Entra ID token for an Azure
// login (valid about an hour: see docs/live.md).
func bearer(ctx context.Context, cfg *config.Config) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host, nil)
	if err != nil {
		return "", err
	}
	if err := cfg.Authenticate(req); err != nil {
		return "", fmt.Errorf("authenticating to %s: %w", cfg.Host, err)
	}
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return "", fmt.Errorf("authenticating to %s: the %s credentials give no bearer token, which the tasks need (use a token, OAuth or an Azure login)", cfg.Host, cfg.AuthType)
	}
	return tok, nil
}
