package agent

import (
	"sort"
	"strings"
)

// Env is the process environment, read once at start-up and passed down.
// Nothing else in Brickferry calls os.Getenv.
type Env map[string]string

// NewEnv builds an Env from os.Environ()-style "KEY=value" entries.
func NewEnv(environ []string) Env {
	env := make(Env, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// Environ returns the "KEY=value" list, sorted, for starting a child process.
func (e Env) Environ() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Get returns the value of an environment variable by its exact name.
func (e Env) Get(name string) string { return e[name] }

// VariableKey is the environment name the agent gives a pipeline variable or
// input: upper-cased, with '.' and ' ' replaced by '_' (dashes are kept).
// (agent src/Agent.Worker/Handlers/Handler.cs AddVariablesToEnvironment)
func VariableKey(name string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", " ", "_").Replace(name))
}

// Variable returns a pipeline variable by its pipeline name (e.g.
// "Build.BuildId" or "databricks-token"). Secret variables, which the agent
// passes to Node-handler tasks as SECRET_<NAME>, are looked up too; secret
// reports which one was found.
func (e Env) Variable(name string) (value string, secret bool, ok bool) {
	key := VariableKey(name)
	if v, found := e["SECRET_"+key]; found {
		return v, true, true
	}
	v, found := e[key]
	return v, false, found
}

// TaskVariable returns a variable this step set for itself with
// Log.SetTaskVariable in an earlier try (empty when there was none).
func (e Env) TaskVariable(name string) string {
	return e["VSTS_TASKVARIABLE_"+VariableKey(name)]
}

// Secrets returns every value that must never be printed: secret variables,
// endpoint authorization parameters, the job access token and the proxy
// password. Empty and very short values are left out since masking them would
// garble the log (the agent ignores them as well).
func (e Env) Secrets() []string {
	var out []string
	for k, v := range e {
		if len(v) < minSecretLength {
			continue
		}
		if strings.HasPrefix(k, "SECRET_") || k == "SYSTEM_ACCESSTOKEN" ||
			(strings.HasPrefix(k, "ENDPOINT_AUTH_PARAMETER_") && !notSecretParameterVariable(k)) {
			out = append(out, v)
		}
		if strings.HasPrefix(k, "ENDPOINT_AUTH_") && !strings.HasPrefix(k, "ENDPOINT_AUTH_SCHEME_") &&
			!strings.HasPrefix(k, "ENDPOINT_AUTH_PARAMETER_") {
			// The JSON form carries the same parameters: mask each of them.
			if ep, err := parseEndpointAuth(v); err == nil {
				for key, p := range ep.Parameters {
					if len(p) >= minSecretLength && IsSecretParameter(key) {
						out = append(out, p)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

const minSecretLength = 3

// notSecretParameters are the service connection authorization parameters
// the agent does not mask, because they hold no secret
// (azure-pipelines-agent src/Microsoft.VisualStudio.Services.Agent/Util/MaskingUtil.cs
// IsEndpointAuthorizationParametersSecret, matched case-insensitively; the
// names are the EndpointAuthorizationParameters constants). Masking them
// would garble logs ("tenant ***") for nothing.
var notSecretParameters = []string{
	"IdToken", "Role", "Scope", "TenantId", "IssuedAt", "ExpiresAt", "Audience",
	"AuthenticationType", "authorizationType", "AccessTokenType", "AccessTokenFetchingMethod",
	"UseWindowsSecurity", "Unsecured", "OAuthAccessTokenIsSupplied", "CompleteCallbackPayload",
	"acceptUntrustedCerts",
}

// IsSecretParameter reports whether the agent treats a service connection
// authorization parameter as a secret: every one but notSecretParameters.
func IsSecretParameter(key string) bool {
	for _, p := range notSecretParameters {
		if strings.EqualFold(key, p) {
			return false
		}
	}
	return true
}

// notSecretParameterVariable reports whether an ENDPOINT_AUTH_PARAMETER_<id>_<KEY>
// variable holds one of notSecretParameters. The id (a GUID or
// SYSTEMVSSCONNECTION) has no underscore, so the key follows the first one.
func notSecretParameterVariable(name string) bool {
	rest := strings.TrimPrefix(name, "ENDPOINT_AUTH_PARAMETER_")
	_, key, ok := strings.Cut(rest, "_")
	return ok && !IsSecretParameter(key)
}
