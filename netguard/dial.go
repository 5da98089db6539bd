package netguard

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"syscall"
	"time"
)

// Dialer returns a *net.Dialer (timeout 10s, keep-alive 30s) that refuses
// blocked addresses. The check runs in Control, after DNS resolution and just
// before connect, on the exact address being dialed: a hostname that resolves
// to an internal address is refused however it got there, and a refused
// address receives no packet.
func (p Policy) Dialer() *net.Dialer {
	// Copy the allow-list so a caller mutating its slice later cannot widen
	// a dialer already in use.
	p.Allowed = slices.Clone(p.Allowed)
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   p.control,
	}
}

func (p Policy) control(network, address string, _ syscall.RawConn) error {
	addrPort, err := netip.ParseAddrPort(address)
	if err != nil {
		// Not an IP socket (e.g. unix); deliveries never need one.
		return fmt.Errorf("dial %s %s: %w", network, address, ErrBlockedAddress)
	}
	return p.CheckAddr(addrPort.Addr())
}

// Transport returns an *http.Transport for deliveries. It dials through
// Dialer, never uses a proxy (an environment proxy would do the connecting and
// bypass the address check), requires TLS 1.2 or later and attempts HTTP/2.
// It sets no response header timeout: each attempt carries its own deadline
// in its context. A receiver's response headers are read up to
// MaxResponseHeaderBytes; a larger header block fails the attempt.
func (p Policy) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            p.Dialer().DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  0,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// MaxResponseHeaderBytes bounds the response headers a delivery reads (net/http's
// default is 1 MiB): a receiver's answer is logged with every attempt, and a webhook
// receiver has no use for large headers.
const MaxResponseHeaderBytes = 64 << 10

// Client returns an *http.Client over Transport that never follows redirects:
// the response to the first request, 3xx included, is returned, because a
// redirect could lead a delivery to a URL nobody validated. It has no overall
// Timeout; each request's context bounds it.
func (p Policy) Client() *http.Client {
	return &http.Client{
		Transport: p.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
