package filewatch

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWatchFollowsChangesAndKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("one"), 0o644)
	parse := func(b []byte) (string, error) {
		if strings.Contains(string(b), "bad") {
			return "", errors.New("bad content")
		}
		return strings.ToUpper(string(b)), nil
	}
	w := Watch(path, 10*time.Millisecond, parse, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer w.Close()
	data, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := parse(data)
	w.Store(v, data)
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for w.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("content %q, want %q", w.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	replace := func(text string, mod time.Time) {
		tmp := path + ".tmp"
		os.WriteFile(tmp, []byte(text), 0o644)
		os.Chtimes(tmp, mod, mod)
		os.Rename(tmp, path)
	}
	replace("two", time.Now().Add(time.Second))
	wait("TWO")
	replace("bad", time.Now().Add(2*time.Second))
	time.Sleep(50 * time.Millisecond)
	wait("TWO") // kept
	os.Remove(path)
	time.Sleep(50 * time.Millisecond)
	wait("TWO") // kept
	// A build that read an older version: the poller catches up.
	w.Store("OLD", []byte("old"))
	replace("four", time.Now().Add(4*time.Second))
	wait("FOUR")
	w.Store("STALE", []byte("stale")) // the file says "four"
	wait("FOUR")
	replace("three", time.Now().Add(3*time.Second))
	wait("THREE")
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "no such file",
		dir:                           "not a regular file",
	} {
		if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadFile(%s) = %v, want %q", path, err, want)
		}
	}
}
