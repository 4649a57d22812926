// The nemesis's faults on the warmers and their links to Redis:
// partitions, a slow link, signals, a twin; and the restarts that follow,
// as an orchestrator's.

package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"
)

// bind picks the warmer a fault on role "holder" or "other" hits: the
// lease's holder now (the writer when none) or the other one; when a
// fault already holds that one, the other one.
func (n *Nemesis) bind(role string, busy map[*Warmer]bool) *Warmer {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	holder, _ := n.w.Holder(ctx, n.rdb)
	first, second := n.w.Writer, n.w.Standby
	if holder == n.w.Standby.Name {
		first, second = second, first
	}
	if role == "other" {
		first, second = second, first
	}
	if busy[first] && !busy[second] {
		return second
	}
	return first
}

func role(f *fault) string {
	_, r, _ := strings.Cut(f.kind.resource, ":")
	return r
}

func (n *Nemesis) partition(f *fault, dirs ...int) (func(), error) {
	x := n.bind(role(f), n.proxyBusy)
	f.target = x
	n.proxyBusy[x] = true
	x.Proxy.Hold(dirs...)
	return func() {
		x.Proxy.Heal()
		delete(n.proxyBusy, x)
	}, nil
}

func (n *Nemesis) slowLink(f *fault) (func(), error) {
	x := n.bind(role(f), n.proxyBusy)
	f.target = x
	n.proxyBusy[x] = true
	x.Proxy.Slow(time.Duration(100+f.param%900) * time.Millisecond)
	return func() {
		x.Proxy.Heal()
		delete(n.proxyBusy, x)
	}, nil
}

// endWarmer sends sig (SIGKILL, SIGTERM, SIGHUP: each ends the warmer)
// and starts it again when the fault heals. A warmer told to stop
// cleanly that is still running when the fault heals did not stop: it
// is killed, and its process counts as crashed.
func (n *Nemesis) endWarmer(f *fault, sig syscall.Signal) (func(), error) {
	x := n.bind(role(f), n.procBusy)
	f.target = x
	if err := x.Signal(sig); err != nil {
		return nil, err
	}
	n.procBusy[x] = true
	return func() {
		delete(n.procBusy, x)
		if !x.Wait(10 * time.Second) {
			n.w.Logf("%s did not end within 10s of %s; killed", x.Name, sig)
			x.hung()
			x.Kill()
		}
		n.restart(x)
	}, nil
}

// revive starts again, as an orchestrator would (systemd's
// Restart=on-failure, a Kubernetes pod), a warmer that ended without a
// fault holding it down: a crash is recorded all the same, and the rest
// of the run goes on with two warmers.
func (n *Nemesis) revive() {
	for _, x := range []*Warmer{n.w.Writer, n.w.Standby} {
		if !x.Started() || x.Running() || n.procBusy[x] || slices.Contains(n.pending, x) {
			continue
		}
		n.w.Logf("%s ended without being asked; starting it again", x.Name)
		n.restart(x)
	}
}

// restart starts x again, or once the password is restored.
func (n *Nemesis) restart(x *Warmer) {
	if n.rotated {
		n.w.Logf("%s starts again once the password is restored", x.Name)
		n.pending = append(n.pending, x)
		return
	}
	if err := x.Start(); err != nil {
		n.w.Logf("restart %s: %v", x.Name, err)
	}
}

func (n *Nemesis) stopWarmer(f *fault) (func(), error) {
	x := n.bind(role(f), n.procBusy)
	f.target = x
	if err := x.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	n.procBusy[x] = true
	return func() {
		delete(n.procBusy, x)
		x.Signal(syscall.SIGCONT)
	}, nil
}

func (n *Nemesis) twin(f *fault) (func(), error) {
	if n.rotated {
		return nil, fmt.Errorf("not started: the password is rotated, and a start with refused credentials stops at once")
	}
	of := n.bind("holder", nil)
	x, err := n.w.StartTwin(of)
	if err != nil {
		return nil, err
	}
	f.target = x
	return func() { n.w.StopTwin() }, nil
}
