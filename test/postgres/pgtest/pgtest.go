// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster
// that Main starts on 127.0.0.1 for the test binary (initdb and pg_ctl
// from Debian's postgresql package; as root, the cluster runs as the
// postgres user) when a test first asks for a database, or the server
// SAMD_POSTGRES_DSN names. Each test gets a fresh database of its own.
//
// Without PostgreSQL a test skips, unless SAMD_REQUIRE_POSTGRES=1 or
// CI=true, where it fails: CI installs PostgreSQL (test/setup.sh).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

var (
	once     sync.Once
	adminDSN string // a DSN of the server's "postgres" database
	startErr error
	stop     func()
	next     atomic.Int64
)

// Required reports whether tests must fail, not skip, without PostgreSQL.
func Required() bool {
	return os.Getenv("SAMD_REQUIRE_POSTGRES") == "1" || os.Getenv("CI") == "true"
}

// Main runs the tests of a package and stops the server if one was
// started.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the throwaway cluster, if DSN started one. Packages with a
// TestMain of their own call it after m.Run.
func Stop() {
	if stop != nil {
		stop()
	}
}

// DSN returns the DSN of a new, empty database for t, dropped when t ends.
// The first call starts the server.
func DSN(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if dsn := os.Getenv("SAMD_POSTGRES_DSN"); dsn != "" {
			adminDSN = dsn
		} else {
			adminDSN, stop, startErr = startCluster()
		}
	})
	if adminDSN == "" || startErr != nil {
		msg := fmt.Sprintf("PostgreSQL not available: %v", startErr)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	db, err := sql.Open("pgx", adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("samd_test_%d_%d", os.Getpid(), next.Add(1))
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", adminDSN)
		if err == nil {
			db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			db.Close()
		}
	})
	return replaceDB(adminDSN, name)
}

// replaceDB points a keyword/value or URL DSN at another database.
func replaceDB(dsn, name string) string {
	if strings.Contains(dsn, "://") {
		i := strings.LastIndex(dsn, "/")
		q := ""
		if j := strings.Index(dsn[i:], "?"); j >= 0 {
			q = dsn[i+j:]
		}
		return dsn[:i+1] + name + q
	}
	var out []string
	for _, f := range strings.Fields(dsn) {
		if !strings.HasPrefix(f, "dbname=") {
			out = append(out, f)
		}
	}
	return strings.Join(append(out, "dbname="+name), " ")
}

// bin finds a PostgreSQL server program: on PATH, or in Debian's
// /usr/lib/postgresql/<version>/bin (newest version).
func bin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if len(dirs) == 0 {
		return "", fmt.Errorf("%s not found (Debian: apt-get install postgresql)", name)
	}
	return dirs[0], nil
}

func version(p string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return v
}

// startCluster makes a cluster in a temporary directory and starts it on
// a free loopback port, trusting local connections (a test server only).
func startCluster() (string, func(), error) {
	initdb, err := bin("initdb")
	if err != nil {
		return "", nil, err
	}
	pgctl, err := bin("pg_ctl")
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "samd-pg-")
	if err != nil {
		return "", nil, err
	}
	// PostgreSQL refuses to run as root: run it as the postgres user.
	var runAs []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", nil, errors.New("running as root and there is no postgres user to run the server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", nil, err
		}
		runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(args ...string) error {
		all := append(append([]string{}, runAs...), args...)
		c := exec.Command(all[0], all[1:]...)
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run(initdb, "-D", data, "-U", "samd", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", port, dir)
	if err := run(pgctl, "-D", data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop := func() {
		_ = run(pgctl, "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=samd dbname=postgres sslmode=disable", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		err = db.PingContext(ctx)
		db.Close()
	}
	if err != nil {
		stop()
		return "", nil, err
	}
	return dsn, stop, nil
}
