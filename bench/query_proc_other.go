//go:build !linux

package bench

import (
	"syscall"
	"time"
)

func resetPeakOf(int)                      {}
func peakRSSOf(int) int64                  { return 0 }
func cpuOf(int) time.Duration              { return 0 }
func ownCPU() time.Duration                { return 0 }
func serverProcAttr() *syscall.SysProcAttr { return nil }
