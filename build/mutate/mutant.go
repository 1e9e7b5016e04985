package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/tools/txtar"
)

// A mutant file is a txtar archive (golang.org/x/tools/txtar). Its comment
// holds "key: value" lines:
//
//	bug:  what the planted bug does, as a reviewer would describe it (one line)
//	test: <package> [<go test -run pattern>]  (one or more; run in order)
//
// and any other text. Its files come in pairs, one pair per edit:
//
//	-- search internal/batchscore/job.go --
//	<lines as they are in the file>
//	-- replace internal/batchscore/job.go --
//	<the same lines with the bug>
//
// The search text must occur exactly once in the file, so a mutant breaks
// loudly when the code it plants into moves or changes.

// mutant is one planted bug.
type mutant struct {
	Name  string // the file name without .txtar
	File  string // the mutant file, relative to the repository root
	Bug   string
	Tests []testCmd
	Edits []edit
}

// testCmd is one go test command: one package, optionally a -run pattern.
type testCmd struct {
	Package string
	Run     string
}

func (c testCmd) String() string {
	if c.Run == "" {
		return c.Package
	}
	return c.Package + " -run " + c.Run
}

// edit replaces Search, which occurs exactly once in Path, with Replace.
type edit struct {
	Path            string // relative to the repository root, slash-separated
	Search, Replace string
}

// loadMutants reads every *.txtar of dir (relative to root) whose name
// matches only (all when nil) and checks each edit against the files under
// root.
func loadMutants(root, dir string, only *regexp.Regexp) ([]mutant, error) {
	files, err := filepath.Glob(filepath.Join(root, dir, "*.txtar"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no mutant files (*.txtar) in %s", filepath.Join(root, dir))
	}
	slices.Sort(files)
	var out []mutant
	var problems []error
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		if only != nil && !only.MatchString(name) {
			continue
		}
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := parseMutant(name, filepath.ToSlash(rel), data)
		if err == nil {
			err = m.check(root)
		}
		if err != nil {
			problems = append(problems, err)
			continue
		}
		out = append(out, m)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no mutant name matches %s", only)
	}
	return out, nil
}

// parseMutant reads one mutant file.
func parseMutant(name, file string, data []byte) (mutant, error) {
	m := mutant{Name: name, File: file}
	bad := func(format string, args ...any) (mutant, error) {
		return mutant{}, fmt.Errorf("%s: %s", file, fmt.Sprintf(format, args...))
	}
	a := txtar.Parse(data)
	for _, line := range strings.Split(string(a.Comment), "\n") {
		key, value, ok := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch {
		case !ok:
		case key == "bug":
			if m.Bug != "" {
				return bad("two bug: lines")
			}
			m.Bug = value
		case key == "test":
			f := strings.Fields(value)
			if len(f) < 1 || len(f) > 2 || !strings.HasPrefix(f[0], "./") {
				return bad("test: wants ./<package>/ and at most one -run pattern, got %q", value)
			}
			c := testCmd{Package: strings.TrimSuffix(f[0], "/") + "/"}
			if len(f) == 2 {
				if _, err := regexp.Compile(f[1]); err != nil {
					return bad("test: -run pattern %q: %v", f[1], err)
				}
				c.Run = f[1]
			}
			m.Tests = append(m.Tests, c)
		}
	}
	if m.Bug == "" {
		return bad("no bug: line")
	}
	if len(m.Tests) == 0 {
		return bad("no test: line")
	}
	if len(a.Files) == 0 || len(a.Files)%2 != 0 {
		return bad("wants pairs of -- search <path> -- and -- replace <path> -- sections, has %d sections", len(a.Files))
	}
	for i := 0; i < len(a.Files); i += 2 {
		s, r := a.Files[i], a.Files[i+1]
		sp, okS := strings.CutPrefix(s.Name, "search ")
		rp, okR := strings.CutPrefix(r.Name, "replace ")
		if !okS || !okR || sp != rp {
			return bad("section %d and %d: want \"search <path>\" then \"replace <path>\" of the same path, got %q and %q", i+1, i+2, s.Name, r.Name)
		}
		if len(bytes.TrimSpace(s.Data)) == 0 {
			return bad("search %s: empty", sp)
		}
		if bytes.Equal(s.Data, r.Data) {
			return bad("search %s: the replacement is the same text", sp)
		}
		m.Edits = append(m.Edits, edit{Path: sp, Search: string(s.Data), Replace: string(r.Data)})
	}
	return m, nil
}

// check makes sure every edit applies to the files under root: its search
// text occurs exactly once (after the edits before it in the same file).
func (m mutant) check(root string) error {
	_, err := m.plant(root, func(string, []byte) error { return nil })
	return err
}

// plant applies the edits to the files under root, writing each changed
// file with write, and returns the original contents to restore.
func (m mutant) plant(root string, write func(path string, data []byte) error) (map[string][]byte, error) {
	original := map[string][]byte{}
	current := map[string]string{}
	for _, e := range m.Edits {
		text, ok := current[e.Path]
		if !ok {
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(e.Path)))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.File, err)
			}
			original[e.Path] = data
			text = string(data)
		}
		switch n := strings.Count(text, e.Search); n {
		case 1:
		case 0:
			return nil, fmt.Errorf("%s: the search text is not in %s (the code moved or changed: update the mutant):\n%s", m.File, e.Path, e.Search)
		default:
			return nil, fmt.Errorf("%s: the search text occurs %d times in %s (make it longer so that it is unique):\n%s", m.File, n, e.Path, e.Search)
		}
		current[e.Path] = strings.Replace(text, e.Search, e.Replace, 1)
	}
	for _, p := range slices.Sorted(maps.Keys(current)) {
		if err := write(filepath.Join(root, filepath.FromSlash(p)), []byte(current[p])); err != nil {
			return original, err
		}
	}
	return original, nil
}

// restore writes back the files plant changed.
func restore(root string, original map[string][]byte) error {
	var errs []error
	for p, data := range original {
		errs = append(errs, os.WriteFile(filepath.Join(root, filepath.FromSlash(p)), data, 0o644))
	}
	return errors.Join(errs...)
}
