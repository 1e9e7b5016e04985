package main

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// packagingFigures measures the .vsix that `make package` wrote:
//   - vsix_bytes: the file (goal ≤ 26,214,400, Azure DevOps Server's default
//     upload limit; never above the Marketplace's 50 MB guidance)
//   - tools_task_bytes, thin_task_bytes_max: compressed bytes of each task's
//     entries in the .vsix (what the agent downloads per task, near enough)
//   - launcher_overhead_ms: median wall time of `node index.js` of a thin task
//     with a tool-cache hit (sha256 verified) minus the median of running the
//     executable directly, same task and environment, 15 runs each
//   - first_install_ms: median time of decompress + verify + cache on a cache
//     miss (the BrickferryTools installer's work without Node start-up), 5 runs
func packagingFigures(env benchEnv) (map[string]float64, error) {
	version, err := os.ReadFile(filepath.Join(env.Root, "VERSION"))
	if err != nil {
		return nil, err
	}
	vsix := filepath.Join(env.Dist, fmt.Sprintf("brickferry-%s.vsix", strings.TrimSpace(string(version))))
	st, err := os.Stat(vsix)
	if err != nil {
		return nil, fmt.Errorf("run `make package` first: %w", err)
	}
	figures := map[string]float64{"vsix_bytes": float64(st.Size())}

	work, err := os.MkdirTemp("", "brickferry-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(work) }()
	tasks, err := extractTasks(vsix, filepath.Join(work, "_tasks"))
	if err != nil {
		return nil, err
	}
	var tools, thin *benchTask
	for i := range tasks {
		t := &tasks[i]
		if t.Name == "BrickferryTools" {
			tools = t
			figures["tools_task_bytes"] = float64(t.Bytes)
			continue
		}
		figures["thin_task_bytes_max"] = max(figures["thin_task_bytes_max"], float64(t.Bytes))
		if t.Name == "DatabricksTrain" {
			thin = t
		}
	}
	if tools == nil || thin == nil {
		return nil, fmt.Errorf("%s lacks BrickferryTools or DatabricksTrain", vsix)
	}

	// first install: decompress, verify and cache into a fresh tool cache
	samples := make([]float64, 0, 5)
	for i := range 5 {
		script := fmt.Sprintf(`const tc=require(%q);const p=require(%q);const key=p.platformKey();
const m=require(%q);const e=m.platforms[key];const t=process.hrtime.bigint();
const {data}=tc.fromFolder(%q,key);tc.install({roots:[%q],version:m.version,arch:process.arch,key,data,sha256:e.sha256});
console.log(Number(process.hrtime.bigint()-t)/1e6);`,
			filepath.Join(tools.Dir, "toolcache.js"), filepath.Join(tools.Dir, "platform.js"),
			filepath.Join(tools.Dir, "bin", "manifest.json"), tools.Dir, filepath.Join(work, fmt.Sprintf("cache%d", i)))
		out, err := exec.Command("node", "-e", script).Output()
		if err != nil {
			return nil, fmt.Errorf("first install: %w", err)
		}
		ms, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			return nil, err
		}
		samples = append(samples, ms)
	}
	figures["first_install_ms"] = median(samples)

	// launcher overhead: install once with the real BrickferryTools task, then
	// time the thin task's launcher (cache hit) against the executable itself
	agentEnv := append(os.Environ(),
		"AGENT_TOOLSDIRECTORY="+filepath.Join(work, "_tool"),
		"AGENT_TEMPDIRECTORY="+filepath.Join(work, "_temp"),
		"BRICKFERRY_NO_DOWNLOAD=true", "TF_BUILD=True", "AGENT_ID=1")
	install := exec.Command("node", filepath.Join(tools.Dir, "index.js"))
	install.Env = agentEnv
	out, err := install.Output()
	if err != nil || !strings.Contains(string(out), "result=Succeeded") {
		return nil, fmt.Errorf("BrickferryTools did not install (%w):\n%s", err, out)
	}
	exe := ""
	for _, line := range strings.Split(string(out), "\n") {
		if _, v, ok := strings.Cut(line, "variable=brickferryPath;isOutput=true;]"); ok {
			exe = strings.TrimSpace(v)
		}
	}
	if exe == "" {
		return nil, fmt.Errorf("BrickferryTools set no brickferryPath:\n%s", out)
	}
	var viaLauncher, direct []float64
	for range 15 {
		for _, c := range []struct {
			cmd *exec.Cmd
			to  *[]float64
		}{
			{exec.Command("node", filepath.Join(thin.Dir, "index.js")), &viaLauncher},
			{exec.Command(exe, thin.Name), &direct},
		} {
			c.cmd.Env = agentEnv
			start := time.Now()
			if out, err := c.cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "##vso[task.complete") {
				return nil, fmt.Errorf("%s (%w):\n%s", c.cmd, err, out)
			}
			*c.to = append(*c.to, msSince(start))
		}
	}
	figures["launcher_overhead_ms"] = median(viaLauncher) - median(direct)
	fmt.Fprintf(env.Log, "launcher %.1f ms, direct %.1f ms (medians of 15)\n", median(viaLauncher), median(direct))
	return figures, nil
}

type benchTask struct {
	Name  string
	Dir   string
	Bytes uint64
}

// extractTasks unpacks every tasks/<Folder>/ of the .vsix the way the agent
// lays tasks out: <tasks>/<Name>_<id>/<version>/.
func extractTasks(vsix, tasksDir string) ([]benchTask, error) {
	z, err := zip.OpenReader(vsix)
	if err != nil {
		return nil, err
	}
	defer func() { _ = z.Close() }()
	byFolder := map[string][]*zip.File{}
	for _, f := range z.File {
		parts := strings.SplitN(f.Name, "/", 3)
		if len(parts) == 3 && parts[0] == "tasks" && parts[2] != "" && !strings.HasSuffix(f.Name, "/") {
			byFolder[parts[1]] = append(byFolder[parts[1]], f)
		}
	}
	var out []benchTask
	for folder, files := range byFolder {
		var meta struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			Version struct{ Major, Minor, Patch int }
		}
		var size uint64
		for _, f := range files {
			size += f.CompressedSize64
			if f.Name == "tasks/"+folder+"/task.json" {
				b, err := readZipFile(f)
				if err != nil {
					return nil, err
				}
				if err := json.Unmarshal(b, &meta); err != nil {
					return nil, fmt.Errorf("%s: %w", f.Name, err)
				}
			}
		}
		dir := filepath.Join(tasksDir, fmt.Sprintf("%s_%s", meta.Name, meta.ID),
			fmt.Sprintf("%d.%d.%d", meta.Version.Major, meta.Version.Minor, meta.Version.Patch))
		for _, f := range files {
			b, err := readZipFile(f)
			if err != nil {
				return nil, err
			}
			p := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(f.Name, "tasks/"+folder+"/")))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return nil, err
			}
		}
		out = append(out, benchTask{Name: meta.Name, Dir: dir, Bytes: size})
	}
	return out, nil
}

func readZipFile(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	return io.ReadAll(rc)
}
