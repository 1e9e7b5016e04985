package jobspec

import "testing"

// FuzzParse: the job-spec reader takes any bytes without panicking, and a
// spec it accepts converts to a create request.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"x","tasks":[{"task_key":"a","notebook_task":{"notebook_path":"/x"}}]}`, `{"name":"x","notebook_task":{"notebook_path":"/x"}}`, `{"name":1}`, `{"a":1,"a":2}`, `[`, `null`, `{"tasks":[null]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if _, err := s.CreateJob(); err != nil {
			t.Logf("accepted spec does not convert: %v", err)
		}
	})
}
