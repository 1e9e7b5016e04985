package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDidYouMean(t *testing.T) {
	inputs := []string{"notebookPath", "pythonFile", "endpointName", "trafficPercent", "modelName", "modelVersion", "modelUri", "workers"}
	for _, c := range []struct {
		word string
		want []string
	}{
		{"notebokPath", []string{"notebookPath"}},
		{"NOTEBOOKPATH", []string{"notebookPath"}},
		{"modelVersoin", []string{"modelVersion"}},
		{"endpoint", []string{"endpointName"}},
		{"modelNam", []string{"modelName"}},
		{"worker", []string{"workers"}},
		{"zzzzzz", nil},
		{"", nil},
	} {
		assert.Equal(t, c.want, DidYouMean(c.word, inputs), c.word)
	}
	assert.Equal(t, "; did you mean Production?", Suggestion("Prodution", []string{"Archived", "None", "Production", "Staging"}))
	assert.Equal(t, "; did you mean workers, work or worker?", Suggestion("workrs", []string{"work", "worker", "workers", "network"}))
	assert.Empty(t, Suggestion("Huge", []string{"Large", "Medium", "Small"}))
}

//nolint:misspell // a misspelling on purpose
func TestChoiceSuggests(t *testing.T) {
	in := testDefinition(t).InputsFrom(Env{"INPUT_MODE": "notebok"})
	assert.Empty(t, in.Choice("mode"))
	assert.EqualError(t, in.Err(), `input 'What to run' (mode): "notebok" is not one of: job, notebook; did you mean notebook?`)
}
