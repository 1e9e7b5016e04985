package auth

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/brickferry/brickferry/internal/agent"
	"github.com/brickferry/brickferry/internal/keyvault"
)

// Method is how a workspace is connected: the value of the connectionMethod
// input.
type Method string

// The connection methods, in the order the pick list shows them.
const (
	MethodAzureRM       Method = "azureRM"       // Azure Resource Manager connection → Microsoft Entra token
	MethodDatabricks    Method = "databricks"    // Databricks service connection: PAT or OAuth M2M
	MethodVariableGroup Method = "variableGroup" // databricks-host / databricks-token of a variable group
	MethodKeyVault      Method = "keyVault"      // secrets of an Azure Key Vault
	MethodToken         Method = "token"         // workspace URL and token inputs
	// MethodFederation: the pipeline's OIDC token exchanged at the workspace
	// for a Databricks token (Databricks workload identity federation).
	MethodFederation Method = "databricksFederation"
)

// Label is how messages name the method.
func (m Method) Label() string {
	switch m {
	case MethodAzureRM:
		return "Azure Resource Manager connection"
	case MethodDatabricks:
		return "Databricks service connection"
	case MethodVariableGroup:
		return "variable group"
	case MethodKeyVault:
		return "Azure Key Vault"
	case MethodToken:
		return "token input"
	case MethodFederation:
		return "Databricks workload identity federation"
	}
	return string(m)
}

// Base names of the inputs of one workspace group. With a group prefix
// ("target") the name becomes targetConnectionMethod, targetAzureSubscription, ...
const (
	inConnectionMethod     = "connectionMethod"
	inAzureSubscription    = "azureSubscription"
	inWorkspaceURL         = "workspaceUrl"
	inUseManagementToken   = "useManagementToken"
	inWorkspaceResourceID  = "workspaceResourceId"
	inDatabricksConnection = "databricksConnection"
	inVariableGroup        = "variableGroup"
	inVariableSuffix       = "variableSuffix"
	inKeyVaultName         = "keyVaultName"
	inKeyVaultCredential   = "keyVaultCredential"
	inKeyVaultHostSecret   = "keyVaultHostSecret"
	inKeyVaultTokenSecret  = "keyVaultTokenSecret"
	inKeyVaultClientID     = "keyVaultClientIdSecret"
	inKeyVaultClientSecret = "keyVaultClientSecretSecret"
	inToken                = "token"
	inFederationClientID   = "federationClientId"
	inFederationSubject    = "federationSubject"
)

// The values of the federationSubject input: whose ID token the pipeline
// presents to Databricks.
const (
	// SubjectPipeline: the pipeline's own token, subject
	// p://{organization}/{project}/{pipeline}.
	SubjectPipeline = "pipeline"
	// SubjectServiceConnection: the token of an Azure Resource Manager
	// connection (workload identity federation), subject
	// sc://{organization}/{project}/{connection}.
	SubjectServiceConnection = "serviceConnection"
)

// InputName is the name of a credential input in a group: the base name for
// the task's own workspace (group ""), prefixed and capitalised otherwise
// (InputName("target", "token") == "targetToken").
func InputName(group, base string) string {
	if group == "" {
		return base
	}
	return group + strings.ToUpper(base[:1]) + base[1:]
}

// Options say how to connect one workspace. ReadOptions fills them from the
// task's inputs; tests and local tools may fill them directly.
type Options struct {
	Group string // "" for the task's workspace, "target" for the copy target
	Name  string // how messages name the workspace, e.g. "workspace", "target workspace (prod)"

	Method Method
	Host   string // normalised https://host[:port]; empty when a group or vault provides it

	// MethodAzureRM, and the connection for MethodKeyVault and Key Vault-linked groups.
	ARM *agent.Endpoint
	// MethodAzureRM: send the Azure management token and workspace resource id
	// so that a service principal that is not yet a workspace user is added
	// (it needs Contributor on the workspace resource).
	ManagementToken     bool
	WorkspaceResourceID string

	Databricks *agent.Endpoint // MethodDatabricks

	VariableGroup  string // MethodVariableGroup: the group's name (default databricks)
	VariableSuffix string // "dev" reads databricks-host-dev, databricks-token-dev

	KeyVault                   string // MethodKeyVault: the vault's name
	KeyVaultOAuth              bool   // the vault holds an OAuth client id and secret instead of a token
	KeyVaultHostSecret         string
	KeyVaultTokenSecret        string
	KeyVaultClientIDSecret     string
	KeyVaultClientSecretSecret string

	Token string // MethodToken

	// MethodFederation: the application id of the Databricks service
	// principal whose federation policy trusts the token (empty: account-wide
	// federation), and whose token is presented (SubjectPipeline, or
	// SubjectServiceConnection with ARM).
	FederationClientID string
	FederationSubject  string
}

// HostVariable and TokenVariable are the variable names the group method
// reads: databricks-host[-suffix] and databricks-token[-suffix], as the
// reference pipeline's group "databricks" holds them.
func (o Options) HostVariable() string  { return suffixed("databricks-host", o.VariableSuffix) }
func (o Options) TokenVariable() string { return suffixed("databricks-token", o.VariableSuffix) }

func suffixed(name, suffix string) string {
	if suffix == "" {
		return name
	}
	return name + "-" + suffix
}

// uuidPattern is the application id of a service principal.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var suffixPattern = regexp.MustCompile(`^[A-Za-z0-9_]+(?:[-_][A-Za-z0-9_]+)*$`)

// workspaceResourceIDPattern is the Azure resource id of a Databricks workspace.
var workspaceResourceIDPattern = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Databricks/workspaces/[^/]+$`)

// ReadOptions reads the credential inputs of a group ("" for the task's
// workspace, "target" for the copy target) and records every problem in in,
// so that the task reports them all before any remote call. Every input of
// the group is read.
func ReadOptions(in *agent.Inputs, group string) Options {
	name := func(base string) string { return InputName(group, base) }
	o := Options{Group: group, Name: "workspace"}
	if group != "" {
		o.Name = group + " workspace"
	}
	o.Method = Method(in.Choice(name(inConnectionMethod)))

	// Plain values first: reading them is harmless whatever the method.
	rawHost := in.String(name(inWorkspaceURL))
	armID := in.String(name(inAzureSubscription))
	dbID := in.String(name(inDatabricksConnection))
	o.ManagementToken = in.Bool(name(inUseManagementToken))
	o.WorkspaceResourceID = in.String(name(inWorkspaceResourceID))
	o.VariableGroup = in.String(name(inVariableGroup))
	o.VariableSuffix = in.String(name(inVariableSuffix))
	o.KeyVault = in.String(name(inKeyVaultName))
	o.KeyVaultOAuth = in.Choice(name(inKeyVaultCredential)) == "oauth"
	o.KeyVaultHostSecret = in.String(name(inKeyVaultHostSecret))
	o.KeyVaultTokenSecret = in.String(name(inKeyVaultTokenSecret))
	o.KeyVaultClientIDSecret = in.String(name(inKeyVaultClientID))
	o.KeyVaultClientSecretSecret = in.String(name(inKeyVaultClientSecret))
	o.Token = in.String(name(inToken))
	o.FederationClientID = in.String(name(inFederationClientID))
	o.FederationSubject = in.Choice(name(inFederationSubject))

	host := func(required bool) {
		if rawHost == "" {
			if required {
				in.Fail(name(inWorkspaceURL), "is required for the %s method: give the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net", o.Method.Label())
			}
			return
		}
		h, err := NormalizeHost(rawHost)
		if err != nil {
			in.Fail(name(inWorkspaceURL), "%v", err)
			return
		}
		o.Host = h
	}
	arm := func(required bool, why string) {
		if armID == "" {
			if required {
				in.Fail(name(inAzureSubscription), "is required %s: choose an Azure Resource Manager service connection", why)
			}
			return
		}
		o.ARM = in.Connection(name(inAzureSubscription))
		if o.ARM != nil {
			if err := checkARM(o.ARM); err != nil {
				in.Fail(name(inAzureSubscription), "%v", err)
			}
		}
	}

	switch o.Method {
	case MethodAzureRM:
		arm(true, "for the Azure Resource Manager method")
		host(true)
		if o.ManagementToken {
			if o.WorkspaceResourceID == "" {
				in.Fail(name(inWorkspaceResourceID), "is required when the service principal is not yet a workspace user: give the workspace's Azure resource id, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Databricks/workspaces/<name>")
			} else if !workspaceResourceIDPattern.MatchString(o.WorkspaceResourceID) {
				in.Fail(name(inWorkspaceResourceID), "%q is not the Azure resource id of a Databricks workspace: expected /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Databricks/workspaces/<name>", o.WorkspaceResourceID)
			}
		}
	case MethodDatabricks:
		if dbID == "" {
			in.Fail(name(inDatabricksConnection), "is required for the Databricks service connection method: choose a connection of type Azure Databricks (Brickferry)")
			break
		}
		o.Databricks = in.Connection(name(inDatabricksConnection))
		if o.Databricks != nil {
			h, err := checkDatabricks(o.Databricks)
			if err != nil {
				in.Fail(name(inDatabricksConnection), "%v", err)
			}
			o.Host = h
		}
	case MethodVariableGroup:
		if o.VariableGroup == "" {
			in.Fail(name(inVariableGroup), "is required: give the name of the variable group that holds databricks-host and databricks-token (usually databricks)")
		}
		if o.VariableSuffix != "" && !suffixPattern.MatchString(o.VariableSuffix) {
			in.Fail(name(inVariableSuffix), "%q is not a suffix: use letters, digits, '-' or '_', e.g. dev or prod", o.VariableSuffix)
		}
		arm(false, "")
	case MethodKeyVault:
		arm(true, "to read the Key Vault")
		host(false)
		if o.KeyVault == "" {
			in.Fail(name(inKeyVaultName), "is required: give the name of the Key Vault (e.g. kv-mlops-prod)")
		} else if err := keyvault.CheckVaultName(o.KeyVault); err != nil {
			in.Fail(name(inKeyVaultName), "%v", err)
		}
		secretInput := func(base, value string, needed bool) {
			switch {
			case !needed:
			case value == "":
				in.Fail(name(base), "is required: give the name of the secret in the vault")
			default:
				if err := keyvault.CheckSecretName(value); err != nil {
					in.Fail(name(base), "%v", err)
				}
			}
		}
		secretInput(inKeyVaultHostSecret, o.KeyVaultHostSecret, o.Host == "")
		secretInput(inKeyVaultTokenSecret, o.KeyVaultTokenSecret, !o.KeyVaultOAuth)
		secretInput(inKeyVaultClientID, o.KeyVaultClientIDSecret, o.KeyVaultOAuth)
		secretInput(inKeyVaultClientSecret, o.KeyVaultClientSecretSecret, o.KeyVaultOAuth)
	case MethodFederation:
		host(true)
		if o.FederationClientID != "" && !uuidPattern.MatchString(o.FederationClientID) {
			in.Fail(name(inFederationClientID), "%q is not the application id of a Databricks service principal: expected a UUID such as 7e1b9c2d-3f4a-4b5c-8d6e-9f0a1b2c3d4e (workspace settings > Identity and access > Service principals), or leave it empty for account-wide federation", o.FederationClientID)
		}
		if o.FederationSubject == SubjectServiceConnection {
			arm(true, "when the federation subject is a service connection")
		}
	case MethodToken:
		host(true)
		switch {
		case o.Token == "":
			in.Fail(name(inToken), "is required for the token method: map a secret variable, e.g. token: $(databricks-token)")
		case strings.ContainsAny(o.Token, " \t\r\n"):
			in.Fail(name(inToken), "contains white space, which a Databricks token never does: check the variable's value")
		}
	}
	if o.Method == MethodVariableGroup && o.VariableSuffix != "" {
		o.Name += " (" + o.VariableSuffix + ")"
	}
	return o
}

// macro finds an unexpanded $(name) macro.
var macro = regexp.MustCompile(`\$\(([^)]*)\)`)

func unexpandedMacro(s string) string {
	if m := macro.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// dnsLabel is one label of a host name.
var dnsLabel = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// NormalizeHost validates a workspace URL and returns it as https://host[:port],
// without path, query, fragment or trailing slash: a URL copied from the
// browser (https://adb-1.7.azuredatabricks.net/?o=1#job/2) is accepted. A URL
// without scheme gets https://. Nothing else is accepted: other schemes,
// credentials in the URL, host names that cannot be real, unexpanded macros.
func NormalizeHost(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if m := unexpandedMacro(raw); m != "" {
		return "", fmt.Errorf("the variable %s is not defined, so the macro $(%s) was not replaced: define the variable or link the variable group that holds it", m, m)
	}
	if raw == "" {
		return "", fmt.Errorf("is empty: give the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: give the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net", raw)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return "", fmt.Errorf("%q must use https: Azure Databricks only serves its API over https", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("the workspace URL must not contain credentials (user@ or user:password@): give them through the connection method instead")
	}
	host := strings.ToLower(u.Hostname())
	if err := checkHostName(host); err != nil {
		return "", fmt.Errorf("%q: %w", u.Redacted(), err)
	}
	out := "https://" + host
	if h := strings.Contains(host, ":"); h { // IPv6
		out = "https://[" + host + "]"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q has an invalid port %q", raw, p)
		}
		if n != 443 {
			out += ":" + p
		}
	}
	return out, nil
}

func checkHostName(host string) error {
	if host == "" {
		return fmt.Errorf("has no host name: give the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(host) > 253 || len(labels) < 2 {
		return fmt.Errorf("%q is not a full host name: give the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net", host)
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return fmt.Errorf("%q is not a valid host name (only letters, digits, '-' and '.' are allowed)", host)
		}
	}
	return nil
}

// Authorization schemes of an Azure Resource Manager service connection
// (microsoft/azure-pipelines-tasks-common-packages azure-arm-rest
// azure-arm-endpoint.ts, constants.ts).
const (
	schemeWorkloadIdentity = "WorkloadIdentityFederation"
	schemeServicePrincipal = "ServicePrincipal"
	schemeManagedIdentity  = "ManagedServiceIdentity"
)

func checkARM(ep *agent.Endpoint) error {
	scheme := ep.Scheme
	if scheme == "" {
		scheme = schemeServicePrincipal // azure-arm-endpoint.ts: no scheme means a service principal
	}
	switch {
	case strings.EqualFold(scheme, schemeWorkloadIdentity), strings.EqualFold(scheme, schemeServicePrincipal):
		if ep.Param("tenantid") == "" || ep.Param("serviceprincipalid") == "" {
			return fmt.Errorf("the service connection has no tenant id or service principal id: edit and save it again")
		}
		if strings.EqualFold(scheme, schemeServicePrincipal) {
			if strings.EqualFold(ep.Param("authenticationType"), "spnCertificate") {
				if ep.Param("servicePrincipalCertificate") == "" {
					return fmt.Errorf("the service connection uses a certificate but holds none: edit it and upload the PEM certificate with its private key")
				}
			} else if ep.Param("serviceprincipalkey") == "" {
				return fmt.Errorf("the service connection holds no service principal secret: edit it and enter the secret, or use workload identity federation")
			}
		}
	case strings.EqualFold(scheme, schemeManagedIdentity):
	default:
		return fmt.Errorf("the service connection uses the %s scheme, which cannot sign in to Azure Databricks: use workload identity federation, a service principal or a managed identity", scheme)
	}
	return nil
}

// Authorization schemes of the Databricks service connection type that the
// extension contributes (docs/credentials.md, "Service endpoint type contribution").
const (
	schemeToken = "Token" // personal access token in parameter apitoken
	schemeOAuth = "None"  // OAuth M2M: parameters clientId and clientSecret
)

// oauthClient is the OAuth machine-to-machine client of a Databricks service
// connection. Its OAuth scheme is Azure DevOps' basic scheme relabelled
// (ms.vss-endpoint.endpoint-auth-scheme-basic), which the agent passes as the
// parameters username and password; clientId/clientSecret are accepted too.
func oauthClient(ep *agent.Endpoint) (id, secret string) {
	if id, secret = ep.Param("clientId"), ep.Param("clientSecret"); id != "" || secret != "" {
		return id, secret
	}
	return ep.Param("username"), ep.Param("password")
}

func checkDatabricks(ep *agent.Endpoint) (string, error) {
	host, err := NormalizeHost(ep.URL)
	if err != nil {
		return "", fmt.Errorf("the connection's server URL: %w", err)
	}
	id, secret := oauthClient(ep)
	switch {
	case id != "" || secret != "":
		if id == "" || secret == "" {
			return host, fmt.Errorf("the connection's OAuth client id or secret is empty: edit the connection")
		}
	case strings.EqualFold(ep.Scheme, schemeToken) || ep.Param("apitoken") != "":
		if ep.Param("apitoken") == "" {
			return host, fmt.Errorf("the connection holds no personal access token: edit the connection")
		}
	default:
		return host, fmt.Errorf("the connection (scheme %s) holds neither a personal access token nor an OAuth client id and secret: edit the connection", ep.Scheme)
	}
	return host, nil
}
