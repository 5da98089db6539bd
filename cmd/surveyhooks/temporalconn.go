package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/client"
)

// temporalConnection returns how to reach cfg's Temporal frontend: plain gRPC for a local or
// private cluster (the default); TLS when any TLS setting or an API key is given, with a
// client certificate (mTLS: a self-hosted cluster, or Temporal Cloud with certificates), a
// private CA and a server name as set; an API key (Temporal Cloud) as credentials. Files
// are read here, at start, so that a wrong path or a mismatched pair is a clear error
// rather than a failed handshake later.
func temporalConnection(cfg config) (client.ConnectionOptions, client.Credentials, error) {
	var conn client.ConnectionOptions
	var creds client.Credentials
	if (cfg.TemporalTLSCert == "") != (cfg.TemporalTLSKey == "") {
		return conn, nil, errors.New("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (the client certificate and its private key)")
	}
	if cfg.TemporalAPIKey != "" {
		creds = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	useTLS := cfg.TemporalTLS || cfg.TemporalTLSCert != "" || cfg.TemporalTLSCA != "" ||
		cfg.TemporalTLSServerName != "" || cfg.TemporalAPIKey != ""
	if !useTLS {
		return conn, creds, nil
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TemporalTLSServerName}
	if cfg.TemporalTLSCert != "" {
		cert, err := loadClientCertificate(cfg.TemporalTLSCert, cfg.TemporalTLSKey)
		if err != nil {
			return conn, nil, err
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	if cfg.TemporalTLSCA != "" {
		pem, err := os.ReadFile(cfg.TemporalTLSCA)
		if err != nil {
			return conn, nil, fmt.Errorf("TEMPORAL_TLS_CA: read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return conn, nil, fmt.Errorf("TEMPORAL_TLS_CA: %s holds no PEM certificate", cfg.TemporalTLSCA)
		}
		tlsConfig.RootCAs = pool
	}
	conn.TLS = tlsConfig
	return conn, creds, nil
}

// loadClientCertificate reads a PEM certificate and its key, saying which file is wrong.
func loadClientCertificate(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TEMPORAL_TLS_CERT: read client certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TEMPORAL_TLS_KEY: read client key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TEMPORAL_TLS_CERT %s and TEMPORAL_TLS_KEY %s are not a certificate and its key: %w", certFile, keyFile, err)
	}
	// Go fills Leaf since 1.23; a certificate past its date would fail every handshake.
	if cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("TEMPORAL_TLS_CERT %s expired on %s", certFile, cert.Leaf.NotAfter.Format(time.DateOnly))
	}
	return cert, nil
}
