package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteIcons writes icon.png (32×32) into every task folder and the 128×128
// extension icon to build/marketplace/images/extension-icon.png.
func WriteIcons(root string) error {
	small, err := encodePNG(brickIcon(32))
	if err != nil {
		return err
	}
	large, err := encodePNG(brickIcon(128))
	if err != nil {
		return err
	}
	tasks, err := ReadTasks(filepath.Join(root, "tasks"))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if err := os.WriteFile(filepath.Join(root, "tasks", t.Folder, "icon.png"), small, 0o644); err != nil {
			return fmt.Errorf("%s: %w", t.Folder, err)
		}
	}
	dir := filepath.Join(root, "build", "marketplace", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "extension-icon.png"), large, 0o644)
}
