// Package procstat reads a process's memory figures from /proc (Linux), for the attack and
// soak tools.
package procstat

import (
	"fmt"
	"os"
	"strings"
)

// Memory is a process's memory in MiB: resident now (VmRSS), its peak (VmHWM) and what it has
// reserved, touched or not (VmData).
type Memory struct{ RSS, PeakRSS, Data float64 }

// Read returns pid's memory figures.
func Read(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, l := range strings.Split(string(b), "\n") {
		var kb float64
		for prefix, dst := range map[string]*float64{"VmRSS: %f kB": &m.RSS, "VmHWM: %f kB": &m.PeakRSS, "VmData: %f kB": &m.Data} {
			if _, err := fmt.Sscanf(l, prefix, &kb); err == nil {
				*dst = kb / 1024
			}
		}
	}
	return m, nil
}
