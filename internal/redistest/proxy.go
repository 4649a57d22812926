package redistest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a server, which a test can make hold
// what crosses it, one way or both, or slow it down: a partition as TCP
// sees it, where nothing is refused and nothing arrives until it heals
// (what was sent meanwhile then arrives, as retransmissions would bring
// it).
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	hold   [2]bool // ToServer, ToClient
	delay  time.Duration
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

// Directions of a Proxy's traffic.
const (
	ToServer = 0
	ToClient = 1
)

// StartProxy listens on a free loopback port and forwards each connection
// to target until the test ends.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Hold holds the traffic of the directions given (ToServer, ToClient),
// and lets the others go.
func (p *Proxy) Hold(directions ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = [2]bool{}
	for _, d := range directions {
		p.hold[d] = true
	}
	p.cond.Broadcast()
}

// Heal lets all traffic go again, at full speed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold, p.delay = [2]bool{}, 0
	p.cond.Broadcast()
}

// Slow delays each chunk that crosses the proxy by d.
func (p *Proxy) Slow(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(server, client, ToServer)
		go p.pipe(client, server, ToClient)
	}
}

// pipe copies src to dst, holding or slowing each chunk as the proxy says.
func (p *Proxy) pipe(dst, src net.Conn, dir int) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.hold[dir] && !p.closed {
				p.cond.Wait()
			}
			delay, closed := p.delay, p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if delay > 0 {
				time.Sleep(delay)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}
