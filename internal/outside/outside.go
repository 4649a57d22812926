// Package outside holds what the benchmarks that measure the warmer from
// outside (membench, eventlat, freshness) share: a free loopback port,
// child processes that end with the benchmark, and the probe's GET.
package outside

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// FreePort returns a loopback TCP port nobody listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitListening waits up to 5 s for something to listen on the loopback
// port (a redis-server just started).
func WaitListening(ctx context.Context, port int) error {
	for range 100 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on 127.0.0.1:%d", port)
}

// Proc is a child process and its end.
type Proc struct {
	Cmd  *exec.Cmd
	Done chan struct{} // closed when it has exited
	Err  error         // how it exited, once Done is closed
}

// Start starts cmd; it is killed should the benchmark itself be.
func Start(cmd *exec.Cmd) (*Proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, Done: make(chan struct{})}
	go func() { p.Err = cmd.Wait(); close(p.Done) }()
	return p, nil
}

// Stop asks the process to stop, and kills it after 10 s.
func (p *Proc) Stop() {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(10 * time.Second):
		p.Cmd.Process.Kill()
		<-p.Done
	}
}

// Client is the benchmarks' HTTP client for the warmer's endpoints.
var Client = &http.Client{Timeout: 5 * time.Second}

// Get reads url whole and says whether it answered 200.
func Get(url string) error {
	resp, err := Client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}
