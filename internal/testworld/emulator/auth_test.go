package emulator_test

import (
	"context"
	"net/http"

	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/config/credentials"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/emulator"
)

func listJobs(t *testing.T, cfg *config.Config) error {
	t.Helper()
	cfg.Loaders = []config.Loader{emulator.NoEnvLoader{}}
	cfg.RetryTimeoutSeconds = 5
	c, err := client.New(cfg)
	require.NoError(t, err)
	_, err = jobs.NewJobs(c).ListAll(ctx(t), jobs.ListJobsRequest{})
	return err
}

func TestAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	const tenant = "11111111-2222-3333-4444-555555555555"
	ws, clock := start(t, emulator.Options{
		OAuthClients: map[string]string{"sp-client": "sp-secret"},
		Entra:        &emulator.EntraOptions{Key: &key.PublicKey, TenantID: tenant, Users: []string{"oid-allowed"}},
	})
	entra := func(oid string, aud string, exp time.Time) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"aud": aud, "iss": "https://sts.windows.net/" + tenant + "/", "oid": oid, "tid": tenant,
			"exp": exp.Unix(), "iat": clock.Now().Unix(),
		}).SignedString(key)
		require.NoError(t, err)
		return tok
	}
	now := clock.Now()

	t.Run("PAT", func(t *testing.T) {
		require.NoError(t, listJobs(t, &config.Config{Host: ws.URL(), Token: ws.Token, AuthType: "pat"}))
	})
	t.Run("wrong PAT is 403", func(t *testing.T) {
		err := listJobs(t, &config.Config{Host: ws.URL(), Token: "dapi-wrong", AuthType: "pat"})
		assert.ErrorIs(t, err, apierr.ErrPermissionDenied)
	})
	t.Run("missing credentials are 401", func(t *testing.T) {
		c, err := client.New(&config.Config{Host: ws.URL(), Credentials: noAuth{}, Loaders: []config.Loader{emulator.NoEnvLoader{}}})
		require.NoError(t, err)
		_, err = jobs.NewJobs(c).ListAll(ctx(t), jobs.ListJobsRequest{})
		assert.ErrorIs(t, err, apierr.ErrUnauthenticated)
	})
	t.Run("OAuth M2M through the SDK", func(t *testing.T) {
		require.NoError(t, listJobs(t, &config.Config{Host: ws.URL(), ClientID: "sp-client", ClientSecret: "sp-secret", AuthType: "oauth-m2m"}))
		recs := ws.RequestsTo("POST", "/oidc/v1/token")
		require.NotEmpty(t, recs)
		last := ws.Requests()[len(ws.Requests())-1]
		assert.Equal(t, "sp-client", last.Principal)
	})
	t.Run("OAuth M2M with a wrong secret", func(t *testing.T) {
		err := listJobs(t, &config.Config{Host: ws.URL(), ClientID: "sp-client", ClientSecret: "nope", AuthType: "oauth-m2m"})
		assert.Error(t, err)
	})
	t.Run("Entra token", func(t *testing.T) {
		require.NoError(t, listJobs(t, &config.Config{Host: ws.URL(), Token: entra("oid-allowed", emulator.AzureDatabricksResourceID, now.Add(time.Hour)), AuthType: "pat"}))
	})
	t.Run("Entra principal not in the workspace", func(t *testing.T) {
		err := listJobs(t, &config.Config{Host: ws.URL(), Token: entra("oid-stranger", emulator.AzureDatabricksResourceID, now.Add(time.Hour)), AuthType: "pat"})
		assert.ErrorIs(t, err, apierr.ErrPermissionDenied)
	})
	t.Run("Entra token for another resource", func(t *testing.T) {
		err := listJobs(t, &config.Config{Host: ws.URL(), Token: entra("oid-allowed", "https://management.azure.com/", now.Add(time.Hour)), AuthType: "pat"})
		assert.ErrorIs(t, err, apierr.ErrPermissionDenied)
	})
	t.Run("expired Entra token", func(t *testing.T) {
		err := listJobs(t, &config.Config{Host: ws.URL(), Token: entra("oid-allowed", emulator.AzureDatabricksResourceID, now.Add(-time.Hour)), AuthType: "pat"})
		assert.ErrorIs(t, err, apierr.ErrPermissionDenied)
	})
}

// noAuth sends no Authorization header at all.
type noAuth struct{}

func (noAuth) Name() string { return "none" }

func (noAuth) Configure(_ context.Context, _ *config.Config) (credentials.CredentialsProvider, error) {
	return credentials.CredentialsProviderFn(func(*http.Request) error { return nil }), nil
}
