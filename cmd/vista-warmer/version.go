package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set by make build: -ldflags "-X main.version=... -X main.commit=...
// -X main.buildDate=...". Without them, the module's build information
// (a go install of a tagged version, or the VCS stamp of a go build in a
// clone) says what it can.
var version, commit, buildDate string

// build describes this binary: its version, commit, build date and Go.
type build struct{ Version, Commit, Date, Go string }

func buildOf() build {
	b := build{Version: version, Commit: commit, Date: buildDate, Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" {
			b.Version = info.Main.Version
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && b.Commit != "" {
			b.Commit += "-dirty"
		}
	}
	for _, f := range []*string{&b.Version, &b.Commit, &b.Date} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return b
}

func (b build) String() string {
	return fmt.Sprintf("vista-warmer %s (commit %s, built %s, %s)", b.Version, b.Commit, b.Date, b.Go)
}

// registerBuildInfo exports vista_warmer_build_info, 1 with the build's
// labels, as exporters do.
func registerBuildInfo(reg prometheus.Registerer, b build) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vista_warmer_build_info",
		Help:        "1, labelled with the binary's version, commit, build date and Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "build_date": b.Date, "go_version": b.Go},
	})
	g.Set(1)
	reg.MustRegister(g)
}
