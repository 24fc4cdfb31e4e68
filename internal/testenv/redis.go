package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
)

const (
	// RedisPackage is the Debian package that provides redis-server. Argo
	// CD runs on it when it is on PATH, else on the embedded Redis.
	RedisPackage = "redis-server"
	// RedisEnv selects Argo CD's Redis: unset or "auto" means redis-server
	// from PATH when there is one, else the embedded Redis; "embedded"
	// means the embedded Redis even when redis-server is installed (.ci/run
	// runs `make demo` with it, as a machine with only Go, make and git would).
	RedisEnv = "FERRY_TESTENV_REDIS"

	// embeddedRedisEnv, set to "1", turns any binary that links this
	// package (a test binary, cmd/testenv) into the embedded Redis, serving
	// on the address in its first argument: the environment re-executes
	// itself with it, so Redis is a process like every other part and
	// outlives `testenv up`.
	embeddedRedisEnv = "FERRY_TESTENV_EMBEDDED_REDIS"
	// miniredisModule is the module the embedded Redis is built from.
	miniredisModule = "github.com/alicebob/miniredis/v2"
)

func init() {
	if os.Getenv(embeddedRedisEnv) == "1" {
		serveChild("embedded Redis", func(ctx context.Context) error {
			if len(os.Args) < 2 {
				return fmt.Errorf("%s=1 needs the address to serve on as the first argument", embeddedRedisEnv)
			}
			return serveEmbeddedRedis(ctx, os.Args[1])
		})
	}
}

// serveEmbeddedRedis serves a Redis-compatible server (miniredis, the
// server Argo CD's own tests use) on addr until ctx ends. Keys expire by
// the wall clock, as in Redis (miniredis' default is to expire them only
// when a test fast-forwards). Nothing is persisted.
func serveEmbeddedRedis(ctx context.Context, addr string) error {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr(addr); err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer m.Close()
	fmt.Fprintf(os.Stderr, "embedded Redis (%s) serving on %s\n", miniredisModule, addr)
	<-ctx.Done()
	return nil
}

// redisCommand chooses Argo CD's Redis (see RedisEnv): the path of
// redis-server, or of this binary when embedded is true.
func redisCommand() (bin string, embedded bool, err error) {
	switch mode := os.Getenv(RedisEnv); mode {
	case "", "auto":
		if bin, err := exec.LookPath("redis-server"); err == nil {
			return bin, false, nil
		}
	case "embedded":
	default:
		return "", false, fmt.Errorf("%s=%q: use auto (redis-server from PATH if installed, else the embedded Redis), "+
			"embedded, or leave it unset", RedisEnv, mode)
	}
	self, err := os.Executable()
	if err != nil {
		return "", false, fmt.Errorf("the embedded Redis for Argo CD cannot re-execute this binary (%w): "+
			"install the Debian package %s and leave %s unset", err, RedisPackage, RedisEnv)
	}
	return self, true, nil
}

// startRedis starts Redis for Argo CD on a random loopback port with no
// persistence, its files and log (redis.log) in dir: redis-server when
// redisCommand chooses it, else the embedded Redis (this binary,
// re-executed). It returns once Redis answers PING.
func startRedis(dir string, mode launchMode) (p *proc, addr string, embedded bool, err error) {
	bin, embedded, err := redisCommand()
	if err != nil {
		return nil, "", false, err
	}
	env := childEnv([]string{embeddedRedisEnv + "="})
	if embedded {
		env = append(env, embeddedRedisEnv+"=1")
	} else if err := os.MkdirAll(filepath.Join(dir, "redis"), 0o700); err != nil {
		return nil, "", false, fmt.Errorf("create Redis directory: %w", err)
	}
	p, err = startComponent(component{
		name: "redis", bin: bin, dir: dir, mode: mode, timeout: 30 * time.Second, env: env,
		args: func() ([]string, error) {
			ports, err := freePorts(1)
			if err != nil {
				return nil, err
			}
			addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
			if embedded {
				return []string{addr}, nil
			}
			return []string{
				"--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no",
				"--dir", filepath.Join(dir, "redis"),
				"--daemonize", "no", "--logfile", "",
				"--loglevel", "warning",
			}, nil
		},
		ready: func(ctx context.Context) error { return redisPing(ctx, addr) },
	})
	if err != nil {
		return nil, "", false, err
	}
	return p, addr, embedded, nil
}

// redisPing sends PING to the Redis at addr and wants +PONG. The command
// is a RESP array: the embedded Redis does not take inline commands.
func redisPing(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return fmt.Errorf("send PING: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read PING answer: %w", err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
