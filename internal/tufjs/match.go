package tufjs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Match asks tuf-js's own delegation matcher (DelegatedRole.isDelegatedPath,
// as its updater calls it) whether a role delegated patterns matches each
// of paths.
func Match(patterns, paths []string) ([]bool, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	in, err := json.Marshal(map[string][]string{"patterns": patterns, "paths": paths})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", filepath.Join(Dir(), "match.mjs"))
	cmd.Dir = Dir()
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("running tuf-js's matcher: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	var out struct {
		Matches []bool `json:"matches"`
	}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("reading tuf-js's matcher output: %w", err)
	}
	if len(out.Matches) != len(paths) {
		return nil, fmt.Errorf("tuf-js answered for %d paths, asked %d", len(out.Matches), len(paths))
	}
	return out.Matches, nil
}
