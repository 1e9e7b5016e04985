package azurite_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/testworld/azurite"
)

func TestStartAnswersAndStops(t *testing.T) {
	s := azurite.Start(t)
	assert.Equal(t, azurite.AccountName, s.AccountName)
	resp, err := http.Get(s.BlobEndpoint + "?comp=list")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "an unsigned request reaches Azurite and is refused")
	s.Close()
	resp, err = http.Get(s.BlobEndpoint + "?comp=list")
	if err == nil {
		_ = resp.Body.Close()
	}
	assert.Error(t, err, "stopped")
}
