package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// proc is a child process started by testenv in its own process group.
type proc struct {
	name      string // for messages, e.g. "registry 127.0.0.1:5000"
	pid       int    // also the process group id (Setpgid)
	startTime string // /proc/<pid>/stat starttime, guards against pid reuse

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's result, readable after exited is closed

	// shared marks a process of a Shared environment, which outlives the
	// tests by design and is only checked by Main.
	shared atomic.Bool

	stopOnce sync.Once
	stopErr  error
	stopping chan struct{} // closed when stop begins (an exit after that is expected)
}

// procs records every process testenv has started, for the leak guard.
var procs struct {
	sync.Mutex
	list []*proc
}

// startProc starts path with args in a new process group and tracks it. The
// child is sent SIGKILL if the thread that started it dies (so a crashed test
// binary does not orphan it); it is reaped by a goroutine.
func startProc(name, path string, args, env []string, dir string, logFile *os.File) (*proc, error) {
	return launch(procSpec{name: name, path: path, args: args, env: env, dir: dir, log: logFile})
}

// procSpec describes a process for launch.
type procSpec struct {
	name      string // for messages
	path      string
	args, env []string
	dir       string
	log       *os.File // stdout and stderr; nil discards them
	mode      launchMode
}

// launchMode says how an environment's processes relate to this process.
type launchMode struct {
	// detached starts processes in a session of their own without a
	// parent-death signal, so they outlive this process (testenv up).
	detached bool
	// shared marks the processes of a Shared environment (see proc.shared).
	shared bool
}

// launch starts s and tracks it (see startProc).
func launch(s procSpec) (*proc, error) {
	cmd := exec.Command(s.path, s.args...)
	cmd.Env = s.env
	cmd.Dir = s.dir
	if s.log != nil { // a nil *os.File in an io.Writer would not mean /dev/null
		cmd.Stdout = s.log
		cmd.Stderr = s.log
	}
	if s.mode.detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	p := &proc{
		name:     s.name,
		pid:      cmd.Process.Pid,
		cmd:      cmd,
		exited:   make(chan struct{}),
		stopping: make(chan struct{}),
	}
	p.startTime, _ = procStartTime(p.pid)
	p.shared.Store(s.mode.shared)
	procs.Lock()
	procs.list = append(procs.list, p)
	procs.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop kills the whole process group and waits for the leader to be reaped.
// It is idempotent.
func (p *proc) stop(timeout time.Duration) error {
	p.stopOnce.Do(func() {
		close(p.stopping)
		// Kill the group first (the leader and anything it spawned), then
		// the leader itself in case it already left the group.
		if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = fmt.Errorf("kill process group of %s (pid %d): %w", p.name, p.pid, err)
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(timeout):
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("%s (pid %d) did not exit within %v of SIGKILL", p.name, p.pid, timeout))
			return
		}
		// The leader is gone; make sure no member of its group survived.
		deadline := time.Now().Add(timeout)
		for {
			members := groupMembers(p.pid)
			if len(members) == 0 {
				return
			}
			if time.Now().After(deadline) {
				p.stopErr = errors.Join(p.stopErr, fmt.Errorf("process group %d of %s still has live members %v", p.pid, p.name, members))
				return
			}
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			time.Sleep(10 * time.Millisecond)
		}
	})
	return p.stopErr
}

// exitedEarly reports whether the process exited before stop was called.
func (p *proc) exitedEarly() bool {
	select {
	case <-p.exited:
		select {
		case <-p.stopping:
			return false
		default:
			return true
		}
	default:
		return false
	}
}

// live reports whether p (or any process in its group) is still alive.
// A zombie leader counts as alive: it was never waited for.
func (p *proc) live() []string {
	var out []string
	if st, err := procStartTime(p.pid); err == nil && (p.startTime == "" || st == p.startTime) {
		out = append(out, fmt.Sprintf("%s (pid %d, state %s)", p.name, p.pid, procState(p.pid)))
	}
	for _, pid := range groupMembers(p.pid) {
		if pid == p.pid {
			continue
		}
		out = append(out, fmt.Sprintf("member of %s's process group (pid %d, state %s)", p.name, pid, procState(pid)))
	}
	return out
}

// leakedProcesses describes every tracked process that is still alive,
// those of Shared environments only if withShared.
func leakedProcesses(withShared bool) []string {
	procs.Lock()
	list := append([]*proc(nil), procs.list...)
	procs.Unlock()
	var out []string
	for _, p := range list {
		if p.shared.Load() && !withShared {
			continue
		}
		out = append(out, p.live()...)
	}
	return out
}

// CheckNoLeaks fails t if any process started by testenv is still alive,
// except those of Shared environments (which live until Main stops them).
// Call it where no other testenv environment should be running any more,
// e.g. at the end of a test whose subtests started registries; Main performs
// the same check, Shared environments included, after all tests.
func CheckNoLeaks(t testing.TB) {
	t.Helper()
	if leaks := leakedProcesses(false); len(leaks) > 0 {
		t.Errorf("testenv: %d process(es) started by testenv still alive:\n\t%s", len(leaks), strings.Join(leaks, "\n\t"))
	}
}

// Main runs the tests of m, stops the Shared environments they started and
// then verifies that no process started by testenv is still alive; if one
// is, it reports it on stderr, kills it and exits non-zero even when the
// tests passed. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	mainRunning.Store(false)
	if err := stopShared(code != 0); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stop shared environments: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if leaks := leakedProcesses(true); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: %d process(es) started by testenv still alive after the tests:\n\t%s\n",
			len(leaks), strings.Join(leaks, "\n\t"))
		procs.Lock()
		list := append([]*proc(nil), procs.list...)
		procs.Unlock()
		for _, p := range list {
			if err := p.stop(5 * time.Second); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			}
		}
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (index 0 is the state, 2 the process group, 19 the start time).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return fields, nil
}

func procStartTime(pid int) (string, error) {
	f, err := procStat(pid)
	if err != nil {
		return "", err
	}
	return f[19], nil
}

func procState(pid int) string {
	f, err := procStat(pid)
	if err != nil {
		return "gone"
	}
	return f[0]
}

// groupMembers lists the live processes whose process group is pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil || f[2] != strconv.Itoa(pgid) {
			continue
		}
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}
