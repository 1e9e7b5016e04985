package converge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brickferry/brickferry/internal/converge"
)

func apiErr(status int, code string) error {
	return &apierr.APIError{StatusCode: status, ErrorCode: code, Message: code}
}

func TestAmbiguous(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"cancelled", context.Canceled, false},
		{"cancelled, wrapped", fmt.Errorf("creating: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"connection dropped", io.ErrUnexpectedEOF, true},
		{"network error", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, true},
		{"500", apiErr(http.StatusInternalServerError, "INTERNAL_ERROR"), true},
		{"502", apiErr(http.StatusBadGateway, ""), true},
		{"504", apiErr(http.StatusGatewayTimeout, ""), true},
		{"408", apiErr(http.StatusRequestTimeout, ""), true},
		{"500, wrapped", fmt.Errorf("creating a job: %w", apiErr(500, "INTERNAL_ERROR")), true},
		{"400", apiErr(http.StatusBadRequest, "INVALID_PARAMETER_VALUE"), false},
		{"404", apiErr(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST"), false},
		{"409 already exists", apiErr(http.StatusConflict, "RESOURCE_ALREADY_EXISTS"), false},
		{"429 after the transport's retries", apiErr(http.StatusTooManyRequests, "REQUEST_LIMIT_EXCEEDED"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, converge.Ambiguous(c.err))
		})
	}
}

// fakeStore is a server-side store whose create answers can be lost after
// the object was made (the 500-after-commit the emulator injects).
type fakeStore struct {
	objects  []string
	creates  int
	finds    int
	loseNext int   // answers to lose after carrying the create out
	fail     error // returned by create without carrying it out
	findErr  error
}

func (s *fakeStore) create(context.Context) (string, error) {
	s.creates++
	if s.fail != nil {
		return "", s.fail
	}
	id := fmt.Sprintf("obj-%d", len(s.objects)+1)
	s.objects = append(s.objects, id)
	if s.loseNext > 0 {
		s.loseNext--
		return "", apiErr(http.StatusInternalServerError, "INTERNAL_ERROR")
	}
	return id, nil
}

func (s *fakeStore) find(context.Context) (string, bool, error) {
	s.finds++
	if s.findErr != nil {
		return "", false, s.findErr
	}
	if len(s.objects) == 0 {
		return "", false, nil
	}
	return s.objects[0], true, nil
}

func TestConverge(t *testing.T) {
	cases := []struct {
		name        string
		store       fakeStore
		want        string
		wantErr     bool
		wantCreates int
		wantObjects int
	}{
		{"answered", fakeStore{}, "obj-1", false, 1, 1},
		{"lost answer: the effect is found, not created twice", fakeStore{loseNext: 1}, "obj-1", false, 1, 1},
		{"refused outright: not repeated", fakeStore{fail: apiErr(400, "INVALID_PARAMETER_VALUE")}, "", true, 1, 0},
		{"no answer and nothing made: created again", fakeStore{fail: io.ErrUnexpectedEOF}, "", true, converge.Tries, 0},
		{"find fails: not created twice, an error", fakeStore{loseNext: 1, findErr: io.ErrUnexpectedEOF}, "", true, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.store
			got, err := converge.Converge(context.Background(), s.find, s.create)
			if c.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.wantCreates, s.creates, "creates: after a create without a clear answer the create is sent again only when the look-up found nothing")
			assert.Len(t, s.objects, c.wantObjects, "objects made")
		})
	}
}

func TestCreateOnce(t *testing.T) {
	exists := apiErr(http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS") // workspace APIs
	ucExists := apiErr(http.StatusConflict, "ALREADY_EXISTS")          // Unity Catalog
	cases := []struct {
		name        string
		answers     []error // one per try; the last repeats
		wantCreated bool
		wantErr     error
		wantTries   int
	}{
		{"created", []error{nil}, true, nil, 1},
		{"already exists (someone else made it)", []error{exists}, false, nil, 1},
		{"lost answer, then already exists (ours)", []error{apiErr(500, "INTERNAL_ERROR"), exists}, false, nil, 2},
		{"Unity Catalog: already exists", []error{ucExists}, false, nil, 1},
		{"Unity Catalog: lost answer, then already exists", []error{io.ErrUnexpectedEOF, ucExists}, false, nil, 2},
		{"another conflict is not already exists", []error{apiErr(http.StatusConflict, "ABORTED")}, false, apierr.ErrAborted, 1},
		{"no answer, then created", []error{io.ErrUnexpectedEOF, nil}, true, nil, 2},
		{"refused", []error{apiErr(403, "PERMISSION_DENIED")}, false, apierr.ErrPermissionDenied, 1},
		{"never answered", []error{io.ErrUnexpectedEOF}, false, io.ErrUnexpectedEOF, converge.Tries},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tries := 0
			created, err := converge.CreateOnce(context.Background(), func(context.Context) error {
				a := c.answers[min(tries, len(c.answers)-1)]
				tries++
				return a
			})
			assert.Equal(t, c.wantCreated, created)
			if c.wantErr != nil {
				assert.ErrorIs(t, err, c.wantErr)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, c.wantTries, tries)
		})
	}
}
