package temporalcluster

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// backendDialTimeout bounds the dial of one backend before the proxy tries the next.
const backendDialTimeout = time.Second

// Proxy is a TCP load balancer on loopback, as a client of a real cluster reaches its
// frontends: each new connection goes to the next backend that accepts it, round robin,
// and lives as long as both sides do (a killed backend ends its connections, and the
// client reconnects to another). Pause cuts every client off as a network partition
// does, without a reset: no byte passes either way and new connections hang until Resume.
type Proxy struct {
	l        net.Listener
	backends []string

	mu     sync.Mutex
	next   int
	gate   chan struct{} // closed while open; Pause replaces it with an open channel
	closed chan struct{}
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards to backends.
func NewProxy(backends ...string) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, errors.New("proxy: no backend")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	open := make(chan struct{})
	close(open)
	p := &Proxy{l: l, backends: backends, gate: open, closed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Pause stops all traffic through the proxy until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default: // already paused
	}
}

// Resume lets traffic through again; what was held goes on.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// Close stops listening and ends every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return
	default:
	}
	close(p.closed)
	p.l.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// wait blocks while the proxy is paused; false once it is closed.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	select {
	case <-gate:
		return true
	case <-p.closed:
		return false
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track records c so that Close ends it; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		return false
	default:
		p.conns[c] = struct{}{}
		return true
	}
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) serve(client net.Conn) {
	defer p.untrack(client)
	defer client.Close()
	if !p.wait() {
		return
	}
	backend := p.dial()
	if backend == nil {
		return
	}
	if !p.track(backend) {
		backend.Close()
		return
	}
	defer p.untrack(backend)
	defer backend.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(backend, client); done <- struct{}{} }()
	go func() { p.pipe(client, backend); done <- struct{}{} }()
	// Either side ending ends both: a killed node's connections close on the client too.
	<-done
	client.Close()
	backend.Close()
	<-done
}

// dial connects to the next backend that answers.
func (p *Proxy) dial() net.Conn {
	p.mu.Lock()
	start := p.next
	p.next = (p.next + 1) % len(p.backends)
	p.mu.Unlock()
	for i := range p.backends {
		addr := p.backends[(start+i)%len(p.backends)]
		c, err := net.DialTimeout("tcp", addr, backendDialTimeout)
		if err == nil {
			return c
		}
	}
	return nil
}

// pipe copies src to dst, holding every chunk while the proxy is paused.
func (p *Proxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
