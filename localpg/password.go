package localpg

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// PasswordFile is the file in the cluster directory that holds the superuser's
	// password. Whoever can read it can read the database files next to it anyway.
	PasswordFile = "superuser-password"
	// hbaConf is written over the one initdb makes: no connection is trusted, local
	// users other than the server's own included, since 127.0.0.1 says nothing about
	// who connects.
	hbaConf = `# Written by localpg: every connection needs the superuser's password, kept in
# ` + PasswordFile + ` in this directory.
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
`
)

// readPassword returns the superuser's password of the cluster in dataDir.
func readPassword(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, PasswordFile))
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%s is empty", filepath.Join(dataDir, PasswordFile))
	}
	return pw, nil
}

// ensurePassword gives a stopped cluster a superuser password and makes the server ask
// for it, unless the password file says that is done. New clusters (initdb -A trust)
// and clusters made before passwords existed take the same way. The password file is
// written last: a crash before it leaves a cluster this function finishes next time.
func (c *Cluster) ensurePassword(ctx context.Context, ephemeral bool) error {
	pw, err := readPassword(c.DataDir)
	if err == nil {
		c.password = pw
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read PostgreSQL password: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate PostgreSQL password: %w", err)
	}
	// URL-safe base64: no quoting needed in a SQL literal or a connection URL.
	pw = base64.RawURLEncoding.EncodeToString(raw)

	if err := c.writeOwned(filepath.Join(c.DataDir, "pg_hba.conf"), hbaConf); err != nil {
		return err
	}
	// Single-user mode sets the password without a server listening anywhere, before any
	// connection could come in trusted.
	args := []string{"--single", "-D", c.DataDir, "-c", "password_encryption=scram-sha-256"}
	if ephemeral {
		args = append(args, "-c", "fsync=off")
	}
	cmd := c.run.command(ctx, c.bins.postgres, append(args, "postgres")...)
	cmd.Stdin = strings.NewReader("ALTER ROLE " + Superuser + " PASSWORD '" + pw + "'\n")
	out, err := cmd.CombinedOutput()
	// The server echoes a failing statement; the password stays out of our errors.
	text := strings.ReplaceAll(string(out), pw, "***")
	if err == nil && strings.Contains(text, "ERROR:") {
		err = errors.New("statement failed")
	}
	if err != nil {
		return fmt.Errorf("set PostgreSQL password in %s: %s: %w", c.DataDir, lastLines(text, 3), err)
	}
	if err := c.writeOwned(filepath.Join(c.DataDir, PasswordFile), pw+"\n"); err != nil {
		return err
	}
	c.password = pw
	return nil
}

// writeOwned writes a file of the cluster, private to the server user, as PostgreSQL
// keeps its own files.
func (c *Cluster) writeOwned(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := c.run.own(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
