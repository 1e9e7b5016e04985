package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Strict decoding.
//
// Databricks rejects a request whose body has a field the API does not know
// or a value of the wrong type with 400 INVALID_PARAMETER_VALUE. The SDK's
// request types implement UnmarshalJSON through its marshal package, which
// ignores unknown fields (json.Decoder.DisallowUnknownFields does not reach
// into custom unmarshalers), so strictness is implemented here: the raw JSON
// is walked against the Go type's json tags first, and only then decoded with
// encoding/json (which runs the SDK's own unmarshalers).

// decodeStrictJSON checks raw against the shape of T and decodes it.
func decodeStrictJSON(raw []byte, dst any) *apiError {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return invalidParam("Malformed request body: %v", err)
	}
	if dec.More() {
		return invalidParam("Malformed request body: trailing data after the JSON value")
	}
	if err := checkShape(reflect.TypeOf(dst).Elem(), generic, ""); err != nil {
		return invalidParam("%s", err.Error())
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return invalidParam("Invalid request body: %v", err)
	}
	return nil
}

var rawMessageType = reflect.TypeOf(json.RawMessage{})

// checkShape reports the first place where v does not fit t.
func checkShape(t reflect.Type, v any, path string) error {
	if v == nil {
		return nil // JSON null is accepted for any field, as protobuf JSON does.
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType {
		return nil
	}
	where := path
	if where == "" {
		where = "request body"
	}
	switch t.Kind() {
	case reflect.Interface:
		return nil
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("Expected an object for %s", where)
		}
		fields := jsonFields(t)
		for key, val := range obj {
			f, ok := fields[key]
			if !ok {
				return fmt.Errorf("Invalid JSON given in the body of the request - unknown field %q in %s", key, where)
			}
			if err := checkShape(f.Type, val, joinPath(path, key)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("Expected an object for %s", where)
		}
		for key, val := range obj {
			if err := checkShape(t.Elem(), val, joinPath(path, key)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("Expected an array for %s", where)
		}
		for i, val := range arr {
			if err := checkShape(t.Elem(), val, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("Expected a string for %s", where)
		}
		return checkEnum(t, s, where)
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("Expected a boolean for %s", where)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("Expected an integer for %s", where)
		}
		if _, err := n.Int64(); err != nil {
			return fmt.Errorf("Expected an integer for %s, got %s", where, n)
		}
		return nil
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("Expected a number for %s", where)
		}
		return nil
	}
	return nil
}

// checkEnum validates a value of an SDK enum type (a string type with a
// Values() method listing the accepted values).
func checkEnum(t reflect.Type, s, where string) error {
	// The SDK declares Values on the pointer receiver.
	m, ok := reflect.PointerTo(t).MethodByName("Values")
	if !ok || t.Kind() != reflect.String || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 {
		return nil
	}
	out := m.Func.Call([]reflect.Value{reflect.New(t)})[0]
	if out.Kind() != reflect.Slice || out.Len() == 0 {
		return nil
	}
	allowed := make([]string, out.Len())
	for i := range allowed {
		allowed[i] = out.Index(i).String()
	}
	if slices.Contains(allowed, s) {
		return nil
	}
	return fmt.Errorf("Invalid value %q for %s: expected one of %s", s, where, strings.Join(allowed, ", "))
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields maps JSON names to struct fields, flattening embedded structs.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// decodeQuery fills dst (a pointer to an SDK request struct) from query
// parameters using the `url` tags the SDK encodes them with (go-querystring).
// An unknown parameter or a value of the wrong type is rejected.
func decodeQuery(q url.Values, dst any) *apiError {
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	fields := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("url"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	var forced []string
	for key, vals := range q {
		i, ok := fields[key]
		if !ok {
			return invalidParam("Invalid query parameter %q", key)
		}
		f := v.Field(i)
		if err := setFromStrings(f, vals); err != nil {
			return invalidParam("Invalid value for query parameter %q: %v", key, err)
		}
		forced = append(forced, t.Field(i).Name)
	}
	// Mark explicitly sent zero values the way the SDK's marshal package does,
	// so handlers can tell "false" from "absent".
	if fsf := v.FieldByName("ForceSendFields"); fsf.IsValid() && fsf.Kind() == reflect.Slice && len(forced) > 0 {
		slices.Sort(forced)
		fsf.Set(reflect.ValueOf(forced))
	}
	return nil
}

func setFromStrings(f reflect.Value, vals []string) error {
	if f.Kind() == reflect.Slice {
		s := reflect.MakeSlice(f.Type(), len(vals), len(vals))
		for i, val := range vals {
			if err := setFromString(s.Index(i), val); err != nil {
				return err
			}
		}
		f.Set(s)
		return nil
	}
	if len(vals) != 1 {
		return fmt.Errorf("expected one value, got %d", len(vals))
	}
	return setFromString(f, vals[0])
}

func setFromString(f reflect.Value, s string) error {
	switch f.Kind() {
	case reflect.String:
		if err := checkEnum(f.Type(), s, "query parameter"); err != nil {
			return err
		}
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.SetFloat(n)
	default:
		return fmt.Errorf("unsupported parameter type %s", f.Type())
	}
	return nil
}
