// Command package builds the Brickferry extension: it assembles the extension
// folder (the thin tasks with the launcher, the BrickferryTools task with the
// brotli-compressed executables of every platform and their sha256, the
// extension manifest, the Marketplace page and icons), stamps the version from
// VERSION into the extension and every task, and runs tfx-cli (pinned in
// package-lock.json) to write <out>/brickferry-<version>.vsix.
//
// The executables are carried once, by BrickferryTools: task folders cannot
// share files (each contribution is zipped on its own), and five platforms in
// each of four tasks would not fit the Marketplace guidance (50 MB) nor Azure
// DevOps Server's default upload limit. See docs/packaging.md.
//
//	go run ./build/package -version $(cat VERSION) -out dist [-publisher id] [-repo-url https://...] [-docs-url https://...]
//	go run ./build/package -icons   # regenerate the PNG icons
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var platforms string
	var icons bool
	fs.StringVar(&o.Root, "root", ".", "repository root")
	fs.StringVar(&o.Version, "version", "", "extension version (default: the VERSION file)")
	fs.StringVar(&o.Out, "out", "dist", "output folder for the .vsix (the staged extension goes to <out>/extension)")
	fs.StringVar(&o.Bin, "bin", "", "folder with <goos>-<goarch>/brickferry[.exe] (default <root>/dist/bin)")
	fs.StringVar(&platforms, "platforms", strings.Join(AllPlatforms, ","), "platforms to carry")
	fs.IntVar(&o.Quality, "quality", 11, "brotli quality (0-11)")
	fs.IntVar(&o.Window, "lgwin", 24, "brotli window bits (10-24; the launcher decodes standard brotli)")
	fs.IntVar(&o.Workers, "workers", runtime.NumCPU(), "executables compressed at once")
	fs.StringVar(&o.CacheDir, "cache", "", "compressed-executable cache (default <out>/cache/brotli)")
	fs.StringVar(&o.Publisher, "publisher", "", "Marketplace publisher id (default: vss-extension.json's)")
	fs.StringVar(&o.RepoURL, "repo-url", "", "the extension's repository, linked from the Marketplace page (default: no repository link)")
	fs.StringVar(&o.DocsURL, "docs-url", "", "where docs/ is browsed, for the tasks' Learn more links (default: <repo-url>/blob/main on GitHub, else no links)")
	fs.BoolVar(&icons, "icons", false, "write the PNG icons (task icons and extension icon) and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Log = stdout
	if icons {
		if err := WriteIcons(o.Root); err != nil {
			fmt.Fprintln(stderr, "package:", err)
			return 1
		}
		return 0
	}
	o.Platforms = strings.Split(platforms, ",")
	res, err := Build(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "package:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", res.VSIX, res.VSIXBytes)
	return 0
}
