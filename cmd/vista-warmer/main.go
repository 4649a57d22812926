// Command vista-warmer keeps a Redis cache of Vista Connect's cinemas, films
// and sessions warm and publishes every change. See --help, and the contract
// for the keys and events readers use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/vista-warmer/vista-warmer/warmer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(warmer.GCPercent) // GOGC set in the environment wins
	}

	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		// For a container's HEALTHCHECK, where no curl is: GET /healthz of
		// the warmer in this container.
		os.Exit(healthcheck(os.Getenv("VISTA_WARMER_LISTEN"), os.Stderr))
	}
	if len(os.Args) > 1 {
		if _, ok := commands[os.Args[1]]; ok {
			// A reader's command: status, get, sessions, watch.
			os.Exit(runCommand(ctx, os.Args[1], os.Args[2:], os.LookupEnv, os.Stdout, os.Stderr))
		}
	}

	m := NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	} else if err != nil {
		fmt.Fprintln(m.Stderr, "vista-warmer:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		os.Exit(m.fail(errors.Join(err, m.Close())))
	}

	select {
	case <-ctx.Done():
	case <-m.Done(): // the warmer gave up on its own
	}
	stop() // from here on a second signal ends the process at once
	err := errors.Join(m.Err(), m.Close())
	if err != nil {
		os.Exit(m.fail(err))
	}
}
