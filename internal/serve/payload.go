package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Payload is a smoke test request body in one of the MLflow scoring shapes
// that Model Serving accepts
// (https://learn.microsoft.com/azure/databricks/machine-learning/model-serving/score-custom-model-endpoints):
// dataframe_split, dataframe_records, inputs or instances, optionally with
// params.
type Payload struct {
	Body  []byte // compact JSON, as sent
	Shape string // the key that carries the rows
	Rows  int    // input rows: the number of predictions expected
}

var payloadShapes = []string{"dataframe_split", "dataframe_records", "inputs", "instances"}

// ParsePayload checks that data is a JSON object in one of the accepted
// shapes and counts its input rows.
func ParsePayload(data []byte) (*Payload, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || !json.Valid(data) {
			return nil, fmt.Errorf("is not valid JSON: %w", err)
		}
		return nil, fmt.Errorf("must be a JSON object with one of %s", strings.Join(payloadShapes, ", "))
	}
	var shapes []string
	for k := range obj {
		switch {
		case slices.Contains(payloadShapes, k):
			shapes = append(shapes, k)
		case k == "params":
		default:
			return nil, fmt.Errorf("has an unexpected key %q: use one of %s (and optionally params)", k, strings.Join(payloadShapes, ", "))
		}
	}
	if len(shapes) != 1 {
		slices.Sort(shapes)
		return nil, fmt.Errorf("must have exactly one of %s, found %d (%s)", strings.Join(payloadShapes, ", "), len(shapes), strings.Join(shapes, ", "))
	}
	shape := shapes[0]
	rows, err := countRows(shape, obj[shape])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shape, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	return &Payload{Body: compact.Bytes(), Shape: shape, Rows: rows}, nil
}

func countRows(shape string, raw json.RawMessage) (int, error) {
	switch shape {
	case "dataframe_split":
		var split struct {
			Columns []json.RawMessage `json:"columns"`
			Data    []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &split); err != nil || split.Data == nil {
			return 0, errors.New(`must be an object {"columns": [...], "data": [[...], ...]}`)
		}
		if len(split.Data) == 0 {
			return 0, errors.New("has no rows in data")
		}
		return len(split.Data), nil
	case "dataframe_records":
		var records []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &records); err != nil {
			return 0, errors.New(`must be a list of records [{"column": value, ...}, ...]`)
		}
		if len(records) == 0 {
			return 0, errors.New("has no records")
		}
		return len(records), nil
	default: // inputs, instances
		return countTensorRows(raw)
	}
}

// countTensorRows counts the rows of a tensor input: the length of a list,
// or of the (equally long) lists of a dictionary of named tensors.
func countTensorRows(raw json.RawMessage) (int, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err == nil {
		if len(list) == 0 {
			return 0, errors.New("has no rows")
		}
		return len(list), nil
	}
	var named map[string][]json.RawMessage
	if err := json.Unmarshal(raw, &named); err != nil {
		return 0, errors.New("must be a list of rows or an object of equally long lists")
	}
	rows := -1
	for _, col := range named {
		if rows >= 0 && len(col) != rows {
			return 0, errors.New("has lists of different lengths")
		}
		rows = len(col)
	}
	if rows <= 0 {
		return 0, errors.New("has no rows")
	}
	return rows, nil
}

// countPredictions counts the predictions in a scoring response:
// {"predictions": [...]} or {"predictions": {"name": [...], ...}}, or a bare
// list as older MLflow servers answer.
func countPredictions(body []byte) (int, error) {
	var resp struct {
		Predictions json.RawMessage `json:"predictions"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		var list []json.RawMessage
		if json.Unmarshal(body, &list) == nil {
			return len(list), nil
		}
		return 0, errors.New("the response is not a JSON object with predictions")
	}
	if resp.Predictions == nil {
		return 0, errors.New("the response has no predictions")
	}
	var list []json.RawMessage
	if json.Unmarshal(resp.Predictions, &list) == nil {
		return len(list), nil
	}
	n, err := countTensorRows(resp.Predictions)
	if err != nil {
		return 0, fmt.Errorf("predictions %w", err)
	}
	return n, nil
}
