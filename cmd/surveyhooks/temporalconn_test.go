package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "surveyhooks test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a certificate for cn valid until notAfter and returns it and its key as PEM.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, notAfter time.Time, dnsNames ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func TestTemporalConnectionIsPlainByDefault(t *testing.T) {
	t.Parallel()
	conn, creds, err := temporalConnection(config{})
	require.NoError(t, err)
	require.Nil(t, conn.TLS)
	require.Nil(t, creds)
}

func TestTemporalConnectionLoadsCertificatesAndAPIKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, "surveyhooks-worker", x509.ExtKeyUsageClientAuth, time.Now().Add(time.Hour))
	cfg := config{
		TemporalTLSCert:       writeFile(t, dir, "client.pem", certPEM),
		TemporalTLSKey:        writeFile(t, dir, "client.key", keyPEM),
		TemporalTLSCA:         writeFile(t, dir, "ca.pem", ca.pem),
		TemporalTLSServerName: "temporal.internal",
	}
	conn, creds, err := temporalConnection(cfg)
	require.NoError(t, err)
	require.Nil(t, creds)
	require.NotNil(t, conn.TLS)
	require.Equal(t, "temporal.internal", conn.TLS.ServerName)
	require.Len(t, conn.TLS.Certificates, 1)
	require.Equal(t, "surveyhooks-worker", conn.TLS.Certificates[0].Leaf.Subject.CommonName)
	require.NotNil(t, conn.TLS.RootCAs)
	require.GreaterOrEqual(t, conn.TLS.MinVersion, uint16(tls.VersionTLS12))

	// An API key alone (Temporal Cloud) means TLS with the system's CAs.
	conn, creds, err = temporalConnection(config{TemporalAPIKey: "key-123"})
	require.NoError(t, err)
	require.NotNil(t, creds)
	require.NotNil(t, conn.TLS)
	require.Nil(t, conn.TLS.RootCAs)
	require.Empty(t, conn.TLS.Certificates)

	// TEMPORAL_TLS alone: a cluster with a public certificate and no client ones.
	conn, creds, err = temporalConnection(config{TemporalTLS: true})
	require.NoError(t, err)
	require.Nil(t, creds)
	require.NotNil(t, conn.TLS)
}

func TestTemporalConnectionExplainsBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, "worker", x509.ExtKeyUsageClientAuth, time.Now().Add(time.Hour))
	_, otherKeyPEM := ca.issue(t, "other", x509.ExtKeyUsageClientAuth, time.Now().Add(time.Hour))
	expiredPEM, expiredKeyPEM := ca.issue(t, "old", x509.ExtKeyUsageClientAuth, time.Now().Add(-time.Hour))
	cert := writeFile(t, dir, "client.pem", certPEM)
	key := writeFile(t, dir, "client.key", keyPEM)
	otherKey := writeFile(t, dir, "other.key", otherKeyPEM)
	expired := writeFile(t, dir, "expired.pem", expiredPEM)
	expiredKey := writeFile(t, dir, "expired.key", expiredKeyPEM)
	notPEM := writeFile(t, dir, "ca.txt", []byte("not a certificate\n"))
	missing := filepath.Join(dir, "missing.pem")

	for name, tc := range map[string]struct {
		cfg  config
		want []string
	}{
		"cert without key":  {config{TemporalTLSCert: cert}, []string{"TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together"}},
		"key without cert":  {config{TemporalTLSKey: key}, []string{"TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together"}},
		"unreadable cert":   {config{TemporalTLSCert: missing, TemporalTLSKey: key}, []string{"TEMPORAL_TLS_CERT", "missing.pem", "no such file"}},
		"unreadable key":    {config{TemporalTLSCert: cert, TemporalTLSKey: missing}, []string{"TEMPORAL_TLS_KEY", "missing.pem"}},
		"mismatched pair":   {config{TemporalTLSCert: cert, TemporalTLSKey: otherKey}, []string{"are not a certificate and its key", "client.pem", "other.key"}},
		"key as cert":       {config{TemporalTLSCert: key, TemporalTLSKey: key}, []string{"are not a certificate and its key"}},
		"expired cert":      {config{TemporalTLSCert: expired, TemporalTLSKey: expiredKey}, []string{"TEMPORAL_TLS_CERT", "expired on"}},
		"unreadable CA":     {config{TemporalTLSCA: missing}, []string{"TEMPORAL_TLS_CA", "no such file"}},
		"CA without a cert": {config{TemporalTLSCA: notPEM}, []string{"TEMPORAL_TLS_CA", "holds no PEM certificate"}},
	} {
		_, _, err := temporalConnection(tc.cfg)
		require.Error(t, err, name)
		for _, want := range tc.want {
			require.ErrorContains(t, err, want, name)
		}
	}
}

// TestDialTemporalPresentsCertificateAndAPIKey dials a TLS server that requires a client
// certificate from the test CA and is known by a name that is not its address: the dial
// gets through only if the CA, the server name and the client certificate are all used,
// and the server sees the API key. Requests are gzipped, unless the frontend is in process.
func TestDialTemporalPresentsCertificateAndAPIKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, "temporal", x509.ExtKeyUsageServerAuth, time.Now().Add(time.Hour), "temporal.internal")
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)
	clients := x509.NewCertPool()
	clients.AddCert(ca.cert)

	type seen struct{ path, authorization, clientCN, encoding string }
	var mu sync.Mutex
	var requests []seen
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		requests = append(requests, seen{r.URL.Path, r.Header.Get("Authorization"),
			r.TLS.PeerCertificates[0].Subject.CommonName, r.Header.Get("Grpc-Encoding")})
		mu.Unlock()
		// A gRPC "trailers-only" answer: refuse, so that the dial ends at once.
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "16") // UNAUTHENTICATED
		w.Header().Set("Grpc-Message", "test server")
		w.WriteHeader(http.StatusOK)
	}))
	srv.EnableHTTP2 = true // gRPC
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	certPEM, keyPEM := ca.issue(t, "surveyhooks-worker", x509.ExtKeyUsageClientAuth, time.Now().Add(time.Hour))
	cfg := config{
		TemporalAddress:       srv.Listener.Addr().String(),
		TemporalNamespace:     "default",
		TemporalTLSCert:       writeFile(t, dir, "client.pem", certPEM),
		TemporalTLSKey:        writeFile(t, dir, "client.key", keyPEM),
		TemporalTLSCA:         writeFile(t, dir, "ca.pem", ca.pem),
		TemporalTLSServerName: "temporal.internal",
		TemporalAPIKey:        "key-123",
	}
	for _, inProcess := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, err := dialTemporal(ctx, cfg, slog.New(slog.DiscardHandler), inProcess)
		cancel()
		if err == nil {
			c.Close()
		}
		require.ErrorContains(t, err, "test server", "the dial reached the server and read its answer")

		mu.Lock()
		require.NotEmpty(t, requests)
		got := requests[len(requests)-1]
		mu.Unlock()
		require.Equal(t, "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo", got.path)
		require.Equal(t, "Bearer key-123", got.authorization)
		require.Equal(t, "surveyhooks-worker", got.clientCN)
		if inProcess {
			require.Empty(t, got.encoding, "no gzip to dev's embedded server")
		} else {
			require.Equal(t, "gzip", got.encoding)
		}
	}
}
