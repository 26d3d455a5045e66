//go:build !linux

package bench

func resetPeak()     {}
func peakRSS() int64 { return 0 }
