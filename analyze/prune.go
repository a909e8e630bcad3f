package analyze

import (
	"slices"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// Partition pruning: Options.Clusters, Since and Until select partitions from their keys alone,
// before anything is fetched or registered.
//
// The archive does not record the window length W (it is the collector's --window, 30 min by
// default), only each window's start. Windows are aligned to the Unix epoch, so every start is a
// multiple of W, and so is the greatest common divisor of all starts: that gcd is never shorter
// than W. Taking it as the window length can only keep a partition that does not overlap the
// range (a conservative bound), never drop one that does. With windows every W minutes the gcd is
// W exactly.

// keepPartition reports whether a partition of cluster with a window starting at start (of
// length w) is selected by opts.
func keepPartition(opts Options, cluster string, start time.Time, w time.Duration) bool {
	if len(opts.Clusters) > 0 && !slices.Contains(opts.Clusters, cluster) {
		return false
	}
	if !opts.Until.IsZero() && !start.Before(opts.Until) {
		return false
	}
	if !opts.Since.IsZero() && !start.Add(w).After(opts.Since) {
		return false
	}
	return true
}

// windowLength is an upper bound of the window length (see above): the gcd of the window starts
// in minutes since the epoch, at least one minute.
func windowLength(starts []time.Time) time.Duration {
	var g int64
	for _, s := range starts {
		m := s.Unix() / 60
		if m < 0 {
			m = -m
		}
		g = gcd(g, m)
	}
	if g == 0 {
		return time.Minute
	}
	return time.Duration(g) * time.Minute
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// partitionOf parses the cluster and window of a key under spans/ or objects/
// (<prefix>cluster=<c>/window=<yyyymmddThhmm>/<file>).
func partitionOf(key string) (cluster string, window time.Time, ok bool) {
	_, rest, ok := strings.Cut(key, "cluster=")
	if !ok {
		return "", time.Time{}, false
	}
	cluster, rest, ok = strings.Cut(rest, "/window=")
	if !ok || cluster == "" {
		return "", time.Time{}, false
	}
	wk, _, _ := strings.Cut(rest, "/")
	w, err := archive.ParseWindowKey(wk)
	if err != nil {
		return "", time.Time{}, false
	}
	return cluster, w, true
}

// prune keeps the span parts and index files of the partitions opts selects. Index files whose
// key names no partition are kept (never ours to judge).
func prune(opts Options, partitions []archive.PartitionParts, index []archive.ObjectInfo) (parts, idx []archive.ObjectInfo) {
	if len(opts.Clusters) == 0 && opts.Since.IsZero() && opts.Until.IsZero() {
		for _, p := range partitions {
			parts = append(parts, p.Live...)
		}
		return parts, index
	}
	var starts []time.Time
	for _, p := range partitions {
		starts = append(starts, p.Partition.Window)
	}
	for _, o := range index {
		if _, w, ok := partitionOf(o.Key); ok {
			starts = append(starts, w)
		}
	}
	w := windowLength(starts)
	for _, p := range partitions {
		if keepPartition(opts, p.Partition.Cluster, p.Partition.Window, w) {
			parts = append(parts, p.Live...)
		}
	}
	for _, o := range index {
		if c, start, ok := partitionOf(o.Key); !ok || keepPartition(opts, c, start, w) {
			idx = append(idx, o)
		}
	}
	return parts, idx
}
