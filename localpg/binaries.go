package localpg

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries says that initdb and pg_ctl could not be found. Its text tells a person
// what to do, so callers can show it as it is.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: " +
	"install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL")

// distroBinGlob is where Debian and Ubuntu install the server binaries, which they keep
// off PATH. A variable so that tests can point it elsewhere.
var distroBinGlob = "/usr/lib/postgresql/*/bin"

// binaries are the absolute paths of the PostgreSQL programs this package runs.
type binaries struct {
	initdb   string
	pgCtl    string
	postgres string
}

// findBinaries looks on PATH first, then in the distribution's versioned directories,
// newest major version first. Both programs must come from the same place so that the
// cluster initdb writes is one pg_ctl's server can open.
func findBinaries() (binaries, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if pgCtl, err := exec.LookPath("pg_ctl"); err == nil {
			// The server sits next to pg_ctl's real file, where pg_ctl itself looks for it.
			real, err := filepath.EvalSymlinks(pgCtl)
			if err != nil {
				real = pgCtl
			}
			return binaries{initdb: initdb, pgCtl: pgCtl, postgres: filepath.Join(filepath.Dir(real), "postgres")}, nil
		}
	}
	dirs, _ := filepath.Glob(distroBinGlob) // the pattern is constant and valid
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range dirs {
		b := binaries{initdb: filepath.Join(dir, "initdb"), pgCtl: filepath.Join(dir, "pg_ctl"), postgres: filepath.Join(dir, "postgres")}
		if isExecutable(b.initdb) && isExecutable(b.pgCtl) {
			return b, nil
		}
	}
	return binaries{}, ErrNoBinaries
}

// compareVersions orders directory names such as "9.6" and "15" numerically, so that 15
// sorts after 9.6; non-numeric parts count as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
