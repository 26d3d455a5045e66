package bench

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
)

// resetPeak returns what the heap no longer needs to the system and resets
// the kernel's record of this process's peak resident set to its current
// size (clear_refs 5), so that the next peakRSS covers what follows only.
func resetPeak() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS is the process's peak resident set since start or the last
// resetPeak, in KiB (VmHWM); 0 if unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	return 0
}
