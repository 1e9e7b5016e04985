package cli

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/config"

	"github.com/brickferry/brickferry/internal/agent"
)

// The service connections local mode makes from the Databricks unified auth
// settings (their ids, which the connection inputs name).
const (
	unifiedConnection       = "databricks-unified-auth"
	unifiedTargetConnection = "databricks-unified-auth-target"
)

// connect gives the task its workspace from the Databricks unified auth
// settings (DATABRICKS_HOST, DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID and
// DATABRICKS_CLIENT_SECRET, DATABRICKS_CONFIG_PROFILE, ~/.databrickscfg),
// as the Databricks CLI and SDKs read them, when the inputs and variables
// say nothing about the workspace or --profile names a profile; and the
// copy target from --target-profile. The settings become a Databricks
// service connection, the connection method that takes a personal access
// token or an OAuth client. Only local mode calls it: under the agent these
// settings are never read (package auth configures the SDK to load nothing).
func (f localFlags) connect(run *localRun, def agent.Definition, ask func(string) (string, error)) error {
	given := func(name string) bool {
		_, ok := run.env["INPUT_"+agent.VariableKey(name)]
		return ok
	}
	if _, ok := def.Input("connectionMethod"); !ok {
		if f.profile != "" || f.targetProfile != "" {
			return fmt.Errorf("--profile, --target-profile: task %s connects to no workspace", def.Name)
		}
		return nil
	}
	var errs []error
	switch {
	case f.profile != "" && given("connectionMethod"):
		errs = append(errs, errors.New("--profile and the input connectionMethod both say how to connect to the workspace: keep one"))
	case f.profile != "" || (!given("connectionMethod") && !hasGroupVariables(run.env)):
		ep, note, err := unifiedWorkspace(run.env, f.profile, true, unifiedConnection, ask)
		switch {
		case err != nil:
			errs = append(errs, err)
		case ep != nil:
			run.useConnection("", *ep, note)
		}
	}
	if f.targetProfile != "" {
		switch _, ok := def.Input("targetConnectionMethod"); {
		case !ok:
			errs = append(errs, fmt.Errorf("--target-profile: task %s has no target workspace", def.Name))
		case given("targetConnectionMethod"):
			errs = append(errs, errors.New("--target-profile and the input targetConnectionMethod both say how to connect to the target workspace: keep one"))
		default:
			ep, note, err := unifiedWorkspace(run.env, f.targetProfile, false, unifiedTargetConnection, ask)
			if err != nil {
				errs = append(errs, fmt.Errorf("--target-profile: %w", err))
			} else if ep != nil {
				run.useConnection("target", *ep, note)
			}
		}
	}
	return errors.Join(errs...)
}

// useConnection makes the task connect a workspace group ("" or "target")
// through the given Databricks service connection.
func (run *localRun) useConnection(group string, ep agent.Endpoint, note string) {
	input := func(base string) string {
		if group == "" {
			return "INPUT_" + agent.VariableKey(base)
		}
		return "INPUT_" + agent.VariableKey(group+strings.ToUpper(base[:1])+base[1:])
	}
	run.env[input("connectionMethod")] = "databricks"
	run.env[input("databricksConnection")] = ep.ID
	for k, v := range ep.Environ() {
		run.env[k] = v
	}
	run.notes = append(run.notes, note)
}

// hasGroupVariables reports whether the variables of the variable group
// method (databricks-host[-suffix], databricks-token[-suffix]) were given.
func hasGroupVariables(env agent.Env) bool {
	suffix := strings.TrimSpace(env["INPUT_VARIABLESUFFIX"])
	for _, name := range []string{"databricks-host", "databricks-token"} {
		if suffix != "" {
			name += "-" + suffix
		}
		if _, _, ok := env.Variable(name); ok {
			return true
		}
	}
	return false
}

// unifiedWorkspace reads the Databricks unified auth settings with
// databricks-sdk-go's config package: the environment (when useEnv) and the
// profile of the config file (named, or DATABRICKS_CONFIG_PROFILE, or
// DEFAULT). It returns nil when they name no workspace and no profile was
// asked for; an error when they name a workspace without a credential
// Brickferry can use (a personal access token, or an OAuth client id and
// secret). A workspace named with no credential at all gets a token typed
// on the terminal, when there is one (ask).
func unifiedWorkspace(env agent.Env, profile string, useEnv bool, id string, ask func(string) (string, error)) (*agent.Endpoint, string, error) {
	cfg := &config.Config{Profile: profile, ConfigFile: configFile(env)}
	cfg.Loaders = []config.Loader{config.ConfigFile}
	if useEnv {
		cfg.Loaders = []config.Loader{environment(env), config.ConfigFile}
	}
	if err := cfg.EnsureResolved(); err != nil {
		return nil, "", fmt.Errorf("the Databricks settings: %w", err)
	}
	details := cfg.GetAuthDetails().Configuration
	from := func(attr string) string {
		d, ok := details[attr]
		switch {
		case !ok:
			return "the settings"
		case d.Source.Type == config.SourceFile:
			return fmt.Sprintf("profile %s of %s", cmp.Or(cfg.Profile, "DEFAULT"), d.Source.Name)
		case d.Source.Type == config.SourceEnv:
			return "environment variable " + d.Source.Name
		}
		return d.Source.String()
	}
	if cfg.Host == "" {
		if profile != "" {
			return nil, "", fmt.Errorf("profile %s of %s has no host", profile, cfg.ConfigFile)
		}
		return nil, "", nil
	}
	ep := agent.Endpoint{ID: id, URL: cfg.Host}
	var credential, credentialFrom string
	switch {
	case cfg.Token != "":
		ep.Scheme, ep.Parameters = "Token", map[string]string{"apitoken": cfg.Token} // the connection type's token scheme
		credential, credentialFrom = "personal access token", from("token")
	case cfg.ClientID != "" && cfg.ClientSecret != "":
		// As the connection type's OAuth scheme (Azure DevOps' basic scheme, relabelled) passes them.
		ep.Scheme, ep.Parameters = "UsernamePassword", map[string]string{"username": cfg.ClientID, "password": cfg.ClientSecret}
		credential, credentialFrom = "OAuth client id and secret", from("client_secret")
	case ask != nil && cfg.AuthType == "" && !hasOtherAuth(cfg):
		token, err := ask(fmt.Sprintf("Personal access token for %s (not shown): ", cfg.Host))
		if token = strings.TrimSpace(token); err != nil || token == "" {
			return nil, "", missingCredential(cfg, from("host"))
		}
		ep.Scheme, ep.Parameters = "Token", map[string]string{"apitoken": token}
		credential, credentialFrom = "personal access token", "the terminal"
	default:
		return nil, "", missingCredential(cfg, from("host"))
	}
	which := "workspace"
	if id != unifiedConnection {
		which = "target workspace"
	}
	note := fmt.Sprintf("Local mode: the %s %s and its %s come from %s", which, cfg.Host, credential, from("host"))
	if credentialFrom != from("host") {
		note = fmt.Sprintf("Local mode: the %s %s comes from %s, its %s from %s", which, cfg.Host, from("host"), credential, credentialFrom)
	}
	note += "; the task gets them as a Databricks service connection."
	return &ep, note, nil
}

// otherAuth lists the credential settings other than a token or an OAuth
// client (Azure, Google, basic, metadata service, ...).
func otherAuth(cfg *config.Config) []string {
	var other []string
	for _, a := range config.ConfigAttributes {
		if a.HasAuthAttribute() && !a.IsZero(cfg) && !slices.Contains([]string{"token", "client_id", "client_secret"}, a.Name) {
			other = append(other, a.Name)
		}
	}
	return other
}

func hasOtherAuth(cfg *config.Config) bool { return len(otherAuth(cfg)) > 0 }

// missingCredential says what a workspace named by the settings lacks.
func missingCredential(cfg *config.Config, hostFrom string) error {
	other := otherAuth(cfg)
	switch {
	case cfg.ClientID != "" || cfg.ClientSecret != "":
		return fmt.Errorf("the workspace %s (from %s) has an OAuth client id or secret but not both: set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (client_id and client_secret in a profile)", cfg.Host, hostFrom)
	case cfg.AuthType != "" || len(other) > 0:
		how := cfg.AuthType
		if how == "" {
			how = strings.Join(other, ", ")
		}
		return fmt.Errorf("the workspace %s (from %s) is set up for %s authentication, which brickferry does not take from these settings: give a personal access token (DATABRICKS_TOKEN, or token in the profile) or an OAuth client (DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET)", cfg.Host, hostFrom, how)
	}
	return fmt.Errorf("missing token: the workspace %s (from %s) has no token: set DATABRICKS_TOKEN (token in a profile), or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET for an OAuth client, or run in a terminal to be asked for the token", cfg.Host, hostFrom)
}

// configFile is the Databricks config file: DATABRICKS_CONFIG_FILE, or
// .databrickscfg in the home folder of the environment main was given (the
// SDK's own default, ~/.databrickscfg, would read the process's).
func configFile(env agent.Env) string {
	if f := env["DATABRICKS_CONFIG_FILE"]; f != "" {
		return f
	}
	home := env["HOME"]
	if runtime.GOOS == "windows" {
		home = env["USERPROFILE"]
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".databrickscfg")
}

// environment is databricks-sdk-go's environment loader (the variables of
// config.ConfigAttributes) over the Env main was given rather than the
// process's own, which nothing below main reads.
type environment agent.Env

func (e environment) Name() string { return "environment" }

func (e environment) Configure(cfg *config.Config) error {
	for _, a := range config.ConfigAttributes {
		if !a.IsZero(cfg) {
			continue
		}
		for _, name := range a.EnvVars {
			if v := e[name]; v != "" {
				if err := a.SetS(cfg, v); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				cfg.SetAttrSource(&a, config.Source{Type: config.SourceEnv, Name: name})
				break
			}
		}
	}
	return nil
}
