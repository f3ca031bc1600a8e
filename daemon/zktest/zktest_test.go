package zktest

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	var pid int
	var addr string
	t.Run("lifecycle", func(t *testing.T) {
		s := Start(t)
		addr = s.Addr()
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("Addr() = %q, want a loopback address", addr)
		}
		if !ruok(addr) || !s.Running() {
			t.Fatalf("server on %s not answering after Start", addr)
		}

		s.Stop()
		if ruok(addr) || s.Running() {
			t.Fatalf("server on %s still answering after Stop", addr)
		}
		s.Stop() // idempotent

		s.Restart(t)
		if !ruok(addr) {
			t.Fatalf("server not answering on the same address %s after Restart", addr)
		}
		pid = s.PID()
		if pid == 0 {
			t.Fatal("PID() = 0 for a running server")
		}
	})
	// The subtest's cleanup must have killed the whole process group.
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists after cleanup (kill: %v)", pid, err)
	}
	if ruok(addr) {
		t.Errorf("a server still answers on %s after cleanup", addr)
	}
}

func TestLocateReportsMissingInstall(t *testing.T) {
	tests := []struct {
		name, env, value, want string
	}{
		{"classpath", EnvClasspath, "/nonexistent/zookeeper.jar", EnvClasspath},
		{"java", EnvJava, "/nonexistent/java", EnvJava},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			_, _, err := locate()
			if err == nil {
				t.Fatalf("locate() with %s=%s succeeded", tc.env, tc.value)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.value) {
				t.Errorf("error %q does not name %s and the missing path", err, tc.want)
			}
		})
	}
}
