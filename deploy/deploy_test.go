// Package deploy holds the files operators deploy vista-warmer with; its
// tests check them offline.
package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vista-warmer/vista-warmer/warmer"
)

// collectors records what the warmer registers.
type collectors struct {
	prometheus.Registerer
	all []prometheus.Collector
}

func (c *collectors) MustRegister(cs ...prometheus.Collector) { c.all = append(c.all, cs...) }

// exported lists the metric names the warmer exports, series or not yet,
// with the series names of histograms (_bucket, _sum, _count).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	rec := &collectors{Registerer: prometheus.NewRegistry()}
	warmer.NewMetrics(rec)
	names := map[string]bool{"vista_warmer_build_info": true, // registered by the command
		"vista_warmer_upstream_budget_in_use": true, "vista_warmer_upstream_budget_waiting": true}
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for _, c := range rec.all {
		descs := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(descs); close(descs) }()
		for d := range descs {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
				for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
					names[m[1]+suffix] = true
				}
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names", len(names))
	}
	return names
}

func TestRulesNameOnlyExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	used := regexp.MustCompile(`\bvista_warmer_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the rules name no metric")
	}
	for _, name := range used {
		if !names[name] {
			t.Errorf("the rules use %s, which the warmer does not export", name)
		}
	}
}

func TestRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
