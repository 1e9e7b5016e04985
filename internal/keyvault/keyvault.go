// Package keyvault reads secrets from Azure Key Vault (azsecrets) for the
// credential resolver, and turns the vault's refusals into errors that say
// what to change.
//
// Key Vault's first request is unauthenticated: the vault answers 401 with a
// challenge naming the tenant and resource, and azsecrets then asks the
// credential for a token of that tenant. The vault host must end with the
// resource's domain unless DisableChallengeResourceVerification is set
// (azsecrets v1.5.1 custom_client.go; https://aka.ms/azsdk/blog/vault-uri).
package keyvault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// vaultName: 3-24 letters, digits and dashes, starting with a letter, ending
// with a letter or digit, no two dashes in a row (Key Vault naming rules).
var vaultName = regexp.MustCompile(`^[A-Za-z](?:[A-Za-z0-9]|-[A-Za-z0-9]){1,22}[A-Za-z0-9]?$`)

// secretName: 1-127 letters, digits and dashes.
var secretName = regexp.MustCompile(`^[A-Za-z0-9-]{1,127}$`)

// CheckVaultName says what is wrong with a vault name, or returns nil.
func CheckVaultName(name string) error {
	if len(name) < 3 || len(name) > 24 || !vaultName.MatchString(name) {
		return fmt.Errorf("%q is not a Key Vault name: use 3 to 24 letters, digits and single dashes, starting with a letter (the name only, not the https://... URL)", name)
	}
	return nil
}

// CheckSecretName says what is wrong with a secret name, or returns nil.
func CheckSecretName(name string) error {
	if !secretName.MatchString(name) {
		return fmt.Errorf("%q is not a Key Vault secret name: use 1 to 127 letters, digits and dashes", name)
	}
	return nil
}

// DefaultSuffix is the DNS suffix of vaults in Azure's public cloud.
const DefaultSuffix = "vault.azure.net"

// URL is the address of a vault given its name and DNS suffix
// (vault.azure.net, vault.azure.cn, vault.usgovcloudapi.net).
func URL(name, suffix string) string {
	if suffix == "" {
		suffix = DefaultSuffix
	}
	return "https://" + strings.ToLower(name) + "." + strings.TrimPrefix(suffix, ".")
}

// Client reads secrets from one vault.
type Client struct {
	name string
	c    *azsecrets.Client
}

// Options configure a Client.
type Options struct {
	Transport policy.Transporter // the agent-aware HTTP client
	// DisableChallengeResourceVerification lets a vault whose host is not under
	// the challenge's resource domain be used (tests only).
	DisableChallengeResourceVerification bool
}

// New returns a client for the vault at vaultURL, named name in messages.
func New(name, vaultURL string, cred azcore.TokenCredential, opts Options) (*Client, error) {
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: opts.Transport},
		DisableChallengeResourceVerification: opts.DisableChallengeResourceVerification,
	})
	if err != nil {
		return nil, fmt.Errorf("key vault %s: %w", name, err)
	}
	return &Client{name: name, c: c}, nil
}

// Error is a refusal by the vault.
type Error struct {
	Vault, Secret string
	Status        int    // HTTP status, 0 when the request did not get an answer
	Code          string // Key Vault error code, e.g. Forbidden, SecretNotFound
	Err           error
}

func (e *Error) Error() string {
	switch e.Status {
	case http.StatusForbidden:
		return fmt.Sprintf("key vault %s denied reading secret %s (%s): give the connection's identity the 'Key Vault Secrets User' role on the vault (Azure RBAC) or a 'Get' secret permission in its access policies", e.Vault, e.Secret, e.Code)
	case http.StatusNotFound:
		return fmt.Sprintf("key vault %s has no secret named %s (or it is disabled): check the secret name", e.Vault, e.Secret)
	case http.StatusUnauthorized:
		return fmt.Sprintf("key vault %s did not accept the connection's token for secret %s (%s): the vault may belong to another Microsoft Entra tenant than the service connection", e.Vault, e.Secret, e.Code)
	}
	return fmt.Sprintf("reading secret %s from key vault %s: %v", e.Secret, e.Vault, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Secret returns the current value of a secret. The caller registers it as a
// secret before doing anything else with it.
func (c *Client) Secret(ctx context.Context, name string) (string, error) {
	if err := CheckSecretName(name); err != nil {
		return "", err
	}
	resp, err := c.c.GetSecret(ctx, name, "", nil)
	if err != nil {
		kerr := &Error{Vault: c.name, Secret: name, Err: err}
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			kerr.Status, kerr.Code = re.StatusCode, re.ErrorCode
			kerr.Err = fmt.Errorf("%d %s", re.StatusCode, re.ErrorCode) // the full text repeats the request
		}
		return "", kerr
	}
	if resp.Value == nil {
		return "", &Error{Vault: c.name, Secret: name, Err: errors.New("the secret has no value")}
	}
	return *resp.Value, nil
}
