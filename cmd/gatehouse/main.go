// Command gatehouse is the reverse proxy's command line; the work happens in
// internal/server.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/server"
)

// version is set with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `gatehouse — a reverse proxy

usage:
  gatehouse run      [-c gatehouse.yaml] [--watch]   serve; SIGHUP reloads, SIGUSR1 reopens log files, SIGTERM stops gracefully
  gatehouse validate [-c gatehouse.yaml]             check a configuration file
  gatehouse proxy --listen ADDR --to URL [--to URL ...]
                                                     no config file: one site, round robin to the targets
  gatehouse demo                                     proxy on 127.0.0.1:8080, admin on 127.0.0.1:9901, two demo backends
  gatehouse version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	server.Version = version
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "proxy":
		return cmdProxy(args[1:], stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "gatehouse %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "gatehouse.yaml", "configuration file")
}

func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if fs.Parse(args) != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err == nil {
		// What the config asks may still be more than this build can run.
		err = server.Check(cfg)
	}
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s (warning)\n", w.Error())
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	watch := fs.Bool("watch", false, "reload when the configuration file changes")
	if fs.Parse(args) != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	log := newLogger(stderr)
	loader := func() (*config.Config, error) { return config.Load(*path) }
	return serve(cfg, loader, *watch, *path, log)
}

// serve runs until SIGTERM/SIGINT, reloading on SIGHUP (and file changes).
func serve(cfg *config.Config, loader func() (*config.Config, error), watch bool, path string, log *slog.Logger) int {
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("cannot build configuration", "err", err)
		return 1
	}
	srv.Loader = loader
	// Signals are caught before the listeners open: a SIGTERM that comes
	// as soon as the port answers must stop gracefully, not kill.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	log.Info("gatehouse started", "version", version, "config", cfg.File)

	ctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if watch {
		go watchFile(ctx, path, cfg.Hash, log, func() { srv.Reload() })
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			log.Info("SIGHUP: reloading")
			srv.Reload()
			continue
		case syscall.SIGUSR1:
			if err := srv.ReopenLogs(); err != nil {
				log.Error("SIGUSR1: cannot reopen the access log; still writing to the old file", "err", err)
			} else {
				log.Info("SIGUSR1: access log reopened")
			}
			continue
		}
		log.Info("stopping: finishing in-flight requests", "signal", sig.String())
		timeout := srv.Snapshot().Config.ShutdownTimeout
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		srv.Shutdown(sctx)
		cancel()
		log.Info("stopped")
		return 0
	}
	return 0
}

// watchFile polls the file (editors replace files by rename, which a poll of
// content sees reliably) and calls reload when its bytes differ from those
// last loaded (loadedHash is the hash of the bytes the server started with,
// so a change made before the first poll is not missed).
func watchFile(ctx context.Context, path, loadedHash string, log *slog.Logger, reload func()) {
	last := loadedHash
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(data)
		cur := hex.EncodeToString(sum[:])
		if cur == last {
			continue
		}
		last = cur
		log.Info("configuration file changed: reloading", "file", path)
		reload()
	}
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdProxy(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	accessLog := fs.String("access-log", "off", "access log: off | stderr | stdout | a file path")
	withMetrics := fs.Bool("metrics", true, "count requests for metrics (there is no admin listener in this mode; false measures what counting costs)")
	var to stringList
	fs.Var(&to, "to", "backend URL (repeatable)")
	if fs.Parse(args) != nil {
		return 2
	}
	if len(to) == 0 {
		fmt.Fprintln(stderr, "gatehouse proxy: at least one --to URL is required")
		return 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listeners:\n  - addr: %q\n", *listen)
	if *accessLog == "off" {
		b.WriteString("access_log: {enabled: false}\n")
	} else {
		fmt.Fprintf(&b, "access_log: {enabled: true, output: %q}\n", *accessLog)
	}
	if !*withMetrics {
		b.WriteString("metrics: {enabled: false}\n")
	}
	b.WriteString("upstreams:\n  backends:\n    targets:\n")
	for _, u := range to {
		fmt.Fprintf(&b, "      - %q\n", u)
	}
	b.WriteString("sites:\n  - routes:\n      - upstream: backends\n")
	cfg, err := config.Parse("(command line)", []byte(b.String()))
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	return serve(cfg, func() (*config.Config, error) { return cfg, nil }, false, "", newLogger(stderr))
}
