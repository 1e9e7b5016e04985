package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// copyRepo copies the repository's working tree (tracked files and new files
// git does not ignore, as they are now, uncommitted changes included) to a
// new temporary folder, so that the bugs are planted in a copy and never in
// the checkout. node_modules and build/devtools/node_modules (Azurite, which
// some tests start; tfx-cli and the pipeline schema tools) are linked
// file by file (hard links, or a copy across file systems): the tests only
// read it, and the planted files are all under version control.
func copyRepo(ctx context.Context, root string) (string, error) {
	dir, err := os.MkdirTemp("", "brickferry-mutate-")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return dir, fmt.Errorf("git ls-files: %w: %s", err, stderr.String())
	}
	for _, rel := range bytes.Split(out, []byte{0}) {
		if len(rel) == 0 {
			continue
		}
		from := filepath.Join(root, filepath.FromSlash(string(rel)))
		info, err := os.Lstat(from)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return dir, err
		}
		if err := copyEntry(from, filepath.Join(dir, filepath.FromSlash(string(rel))), info, false); err != nil {
			return dir, err
		}
	}
	// Both installs: the root's (Azurite) and build/devtools' (tfx-cli, the
	// pipeline schema tools).
	for _, nm := range []string{filepath.Join(root, "node_modules"), filepath.Join(root, "build", "devtools", "node_modules")} {
		if _, err := os.Stat(nm); err != nil {
			continue
		}
		err := filepath.WalkDir(nm, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			to := filepath.Join(dir, rel)
			if d.IsDir() {
				return os.MkdirAll(to, 0o755)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyEntry(p, to, info, true)
		})
		if err != nil {
			return dir, fmt.Errorf("linking %s: %w", nm, err)
		}
	}
	return dir, nil
}

// copyEntry copies a file or a symbolic link; link asks for a hard link
// where the file system allows one.
func copyEntry(from, to string, info fs.FileInfo, link bool) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(target, to)
	}
	if link && os.Link(from, to) == nil {
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	return dst.Close()
}
