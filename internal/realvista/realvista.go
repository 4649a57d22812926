// Package realvista finds, for tests, real Vista Connect data kept outside
// the repository: rows found in public repositories and Vista's own API
// definition, in a folder named by $VISTA_REALVISTA or, by default,
// shared/realvista/samples beside the project's folder. The files are not
// part of the repository; tests that read them skip, saying so, where they
// are absent.
package realvista

import (
	"os"
	"path/filepath"
	"testing"
)

// Env names a folder of samples to use instead of the one beside the
// project.
const Env = "VISTA_REALVISTA"

// Samples returns the folder of the real samples, or skips the test.
func Samples(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv(Env)
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			tb.Skipf("real Vista samples: cannot find the project's root: %v: skipped", err)
		}
		dir = filepath.Join(filepath.Dir(root), "shared", "realvista", "samples")
	}
	if _, err := os.Stat(filepath.Join(dir, "elixir-vista-client_test_session_row_yorck2019.json")); err != nil {
		tb.Skipf("real Vista samples not found in %s (../shared/realvista/samples beside the project, or $%s): skipped", dir, Env)
	}
	return dir
}

// moduleRoot is the folder holding go.mod, above the test's own.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
