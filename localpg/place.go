package localpg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// place returns the directory that holds, or is to hold, the cluster of dataDir.
//
// A symbolic link at dataDir is followed: it is how an earlier Start left the cluster
// elsewhere, and it keeps pointing there when dataDir's folder moves. An existing
// directory stays where it is. A missing dataDir that the server user cannot reach (root
// running from a folder under /root, mode 700) becomes a link to elsewhere, a directory
// created for the server user alone; with elsewhere empty, prepare reports the folder
// that cannot be entered.
//
// place removes nothing: a directory it cannot account for is reported with the command
// that resolves it.
func (r runner) place(dataDir, elsewhere string) (string, error) {
	fi, err := os.Lstat(dataDir)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(dataDir)
		if err != nil {
			return "", fmt.Errorf("read link %s: %w", dataDir, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(dataDir), target)
		}
		if _, err := os.Stat(target); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s links to the PostgreSQL folder %s, which is gone: "+
				"to start with an empty database, run rm %s", dataDir, target, dataDir)
		}
		return target, nil
	case err == nil:
		return dataDir, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("look up data directory: %w", err)
	}
	if elsewhere == "" || r.checkReachable(dataDir) == nil {
		return dataDir, nil
	}

	elsewhere = filepath.Clean(elsewhere)
	if err := os.MkdirAll(filepath.Dir(elsewhere), 0o755); err != nil {
		return "", fmt.Errorf("create parent of PostgreSQL folder: %w", err)
	}
	if err := r.checkReachable(elsewhere); err != nil {
		return "", err
	}
	switch err := os.Mkdir(elsewhere, 0o700); {
	case errors.Is(err, fs.ErrExist):
		// An empty one is ours, left by a start that stopped before linking it.
		if entries, err := os.ReadDir(elsewhere); err != nil || len(entries) > 0 {
			return "", fmt.Errorf("PostgreSQL folder %s exists, but %s does not link to it "+
				"(the data folder was deleted or recreated): to use it, run ln -s %s %s; to start afresh, rm -r %s",
				elsewhere, dataDir, elsewhere, dataDir, elsewhere)
		}
	case err != nil:
		return "", fmt.Errorf("create PostgreSQL folder: %w", err)
	}
	if err := r.own(elsewhere); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return "", fmt.Errorf("create parent of data directory: %w", err)
	}
	if err := os.Symlink(elsewhere, dataDir); err != nil {
		return "", fmt.Errorf("link %s to %s: %w", dataDir, elsewhere, err)
	}
	return elsewhere, nil
}
