package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// hashPassword runs `gatehouse hash-password` with the password on stdin.
func hashPassword(t *testing.T, password string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLIStdin(t, password+"\n", append([]string{"hash-password"}, args...)...)
	if code != 0 {
		t.Fatalf("hash-password %v: exit %d\n%s", args, code, stderr)
	}
	return strings.TrimSpace(stdout)
}

// authGet sends GET path with the given header pairs and returns the
// response with its body read.
func authGet(t *testing.T, c *http.Client, url string, kv ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	return doReq(t, c, req)
}

func doReq(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

// argon2Hash is an argon2id hash in PHC format with small parameters.
func argon2Hash(password string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func basicCreds(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// replaceAuthFile writes text to path by rename, as deploy tools do, and moves
// its mtime forward so a poll that compares stamps sees the change even
// within the file system's timestamp granularity.
func replaceAuthFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(tmp, later, later)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// userOf returns the "user" field of the access log line for path.
func userOf(gh *proc, path string) (string, bool) {
	for _, l := range accessLines(gh.stderr.String()) {
		if l["path"] == path {
			u, _ := l["user"].(string)
			return u, true
		}
	}
	return "", false
}

// runCLIStdin runs the binary with stdin as its input and returns its exit
// code and output.
func runCLIStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ghBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}
