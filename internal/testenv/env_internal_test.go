package testenv

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2/proto"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = strings.TrimSpace(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *fatalRecorder) Helper() {}

// callFatal runs f with a fatalRecorder and returns the Fatalf message ("" if
// f returned normally).
func callFatal(t *testing.T, f func(tb testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rec)
	}()
	<-done
	return rec.msg
}

func TestSharedNeedsMain(t *testing.T) {
	mainRunning.Store(false)
	defer mainRunning.Store(true)
	s := NewShared(Options{Registry: true})
	msg := callFatal(t, func(tb testing.TB) { s.Get(tb) })
	for _, want := range []string{"testenv.Main", "TestMain"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Shared.Get() without Main: Fatalf(%q), want it to mention %q", msg, want)
		}
	}
	if s.started {
		t.Errorf("Shared.Get() without Main started the environment")
	}
}

// TestStartRedisFallsBackToEmbedded: with no redis-server on PATH, Argo CD's
// Redis is the embedded one (this test binary, re-executed), and it serves
// what Argo CD uses: PING, SET with expiry (by the wall clock) and NX, GET,
// RENAME, DEL, SUBSCRIBE and PUBLISH.
func TestStartRedisFallsBackToEmbedded(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(RedisEnv, "")
	dir := t.TempDir()
	p, addr, embedded, err := startRedis(dir, launchMode{})
	if err != nil {
		t.Fatalf("startRedis() without redis-server on PATH: %v", err)
	}
	defer func() {
		if err := p.stop(componentStopTimeout); err != nil {
			t.Error(err)
		}
	}()
	self, _ := os.Executable()
	if !embedded || p.cmd.Path != self {
		t.Fatalf("startRedis() without redis-server on PATH ran %s (embedded %v), want the embedded Redis (%s)", p.cmd.Path, embedded, self)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := redisPing(ctx, addr); err != nil {
		t.Fatalf("PING the embedded Redis: %v", err)
	}
	if log := readLog(filepath.Join(dir, "redis.log")); !strings.Contains(log, "embedded Redis (github.com/alicebob/miniredis/v2) serving on "+addr) {
		t.Errorf("redis.log = %q, want it to name the embedded Redis and its address", log)
	}

	c, err := proto.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	do := func(want string, cmd ...string) {
		t.Helper()
		if got, err := c.Do(cmd...); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", strings.Join(cmd, " "), got, err, want)
		}
	}
	set := time.Now()
	do(proto.Inline("OK"), "SET", "lock", "a", "PX", "1500")
	do(proto.Nil, "SET", "lock", "b", "NX", "PX", "1500")
	do(proto.String("a"), "GET", "lock")
	do(proto.Inline("OK"), "SET", "manifests", "m", "EX", "86400")
	do(proto.Inline("OK"), "RENAME", "manifests", "manifests.old")
	do(proto.String("m"), "GET", "manifests.old")
	do(proto.Int(1), "DEL", "manifests.old")
	time.Sleep(time.Until(set.Add(1600 * time.Millisecond)))
	do(proto.Nil, "GET", "lock") // expired by the clock, with no FastForward

	sub, err := proto.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got, err := sub.Do("SUBSCRIBE", "app|managed-resources"); err != nil || !strings.Contains(got, "subscribe") {
		t.Fatalf("SUBSCRIBE = %q, %v", got, err)
	}
	do(proto.Int(1), "PUBLISH", "app|managed-resources", "")
	if got, err := sub.Read(); err != nil || !strings.Contains(got, "message") {
		t.Errorf("subscriber read %q, %v; want the published message", got, err)
	}
}

// TestRedisCommand: redis-server from PATH is preferred; the embedded Redis
// is used without it or when RedisEnv asks for it.
func TestRedisCommand(t *testing.T) {
	withRedis := t.TempDir()
	fake := filepath.Join(withRedis, "redis-server")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	tests := []struct {
		name, path, mode string
		want             string
		embedded         bool
		wantErr          string
	}{
		{name: "redis-server on PATH", path: withRedis, want: fake},
		{name: "redis-server on PATH, auto", path: withRedis, mode: "auto", want: fake},
		{name: "no redis-server", path: t.TempDir(), want: self, embedded: true},
		{name: "embedded asked for", path: withRedis, mode: "embedded", want: self, embedded: true},
		{name: "unknown mode", path: withRedis, mode: "valkey", wantErr: `FERRY_TESTENV_REDIS="valkey": use auto`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			t.Setenv(RedisEnv, tt.mode)
			bin, embedded, err := redisCommand()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("redisCommand() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || bin != tt.want || embedded != tt.embedded {
				t.Errorf("redisCommand() = %q, %v, %v; want %q, %v", bin, embedded, err, tt.want, tt.embedded)
			}
		})
	}
}

func TestUpStateExports(t *testing.T) {
	tests := []struct {
		name  string
		state UpState
		want  string
	}{
		{
			name:  "registry only",
			state: UpState{Dir: "/tmp/x", RegistryAddr: "127.0.0.1:5000"},
			want:  "export FERRY_TESTENV_DIR='/tmp/x'\nexport FERRY_TESTENV_REGISTRY='127.0.0.1:5000'\n",
		},
		{
			name: "everything, quoted",
			state: UpState{Dir: "/tmp/it's", Kubeconfig: "/tmp/it's/kubeconfig", ClusterServer: "https://127.0.0.1:6443",
				RegistryAddr: "127.0.0.1:5000", RegistryUsername: "ferry", RegistryPassword: "pw", ArgoCDNamespace: "argocd"},
			want: `export KUBECONFIG='/tmp/it'\''s/kubeconfig'
export FERRY_TESTENV_DIR='/tmp/it'\''s'
export FERRY_TESTENV_REGISTRY='127.0.0.1:5000'
export FERRY_TESTENV_REGISTRY_USERNAME='ferry'
export FERRY_TESTENV_REGISTRY_PASSWORD='pw'
export FERRY_TESTENV_CLUSTER_SERVER='https://127.0.0.1:6443'
export FERRY_TESTENV_ARGOCD_NAMESPACE='argocd'
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.state.Exports(); got != tt.want {
				t.Errorf("Exports() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStateDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "FERRY_TESTENV_DIR", env: map[string]string{"FERRY_TESTENV_DIR": "/x/state", "XDG_RUNTIME_DIR": "/run/user/1"}, want: "/x/state"},
		{name: "XDG_RUNTIME_DIR", env: map[string]string{"FERRY_TESTENV_DIR": "", "XDG_RUNTIME_DIR": "/run/user/1"}, want: "/run/user/1/ferry-testenv"},
		{name: "TMPDIR", env: map[string]string{"FERRY_TESTENV_DIR": "", "XDG_RUNTIME_DIR": "", "TMPDIR": "/tmp"}, want: "/tmp/ferry-testenv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if got := StateDir(); got != tt.want {
				t.Errorf("StateDir() = %q, want %q", got, tt.want)
			}
		})
	}
}

// deadPID returns a pid no process has.
func deadPID(t *testing.T) int {
	for pid := 4194000; pid > 100000; pid-- {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			return pid
		}
	}
	t.Skip("no free pid found")
	return 0
}

func TestSweepSharedDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := strconv.Itoa(deadPID(t))
	files := []string{"cluster/etcd.log", "cluster/etcd/member/wal/0.wal", "argocd/home/x", "registry/storage/blob"}
	logs := []string{"cluster/etcd.log"}
	tests := []struct {
		name string
		dir  string
		old  bool
		want []string // files left; nil means the directory is gone
	}{
		{name: "dead test binary", dir: sharedDirPrefix + dead + "-1", want: logs},
		{name: "dead for a day", dir: sharedDirPrefix + dead + "-2", old: true, want: nil},
		{name: "this test binary", dir: sharedDirPrefix + strconv.Itoa(os.Getpid()) + "-3", want: files},
		{name: "running test binary", dir: sharedDirPrefix + "1-4", want: files},
		{name: "not ours", dir: sharedDirPrefix + dead, want: files},
	}
	for _, tt := range tests {
		for _, f := range files {
			path := filepath.Join(tmp, tt.dir, f)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if tt.old {
			past := time.Now().Add(-48 * time.Hour)
			if err := os.Chtimes(filepath.Join(tmp, tt.dir), past, past); err != nil {
				t.Fatal(err)
			}
		}
	}
	sweepSharedDirs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			root := filepath.Join(tmp, tt.dir)
			_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(root, path)
					got = append(got, rel)
				}
				return nil
			})
			want := append([]string(nil), tt.want...)
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("files in %s after sweepSharedDirs() = %q, want %q", tt.dir, got, want)
			}
			if _, err := os.Stat(root); tt.want == nil && !os.IsNotExist(err) {
				t.Errorf("%s after sweepSharedDirs(): %v, want it removed", tt.dir, err)
			}
		})
	}
}
