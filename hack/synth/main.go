// Command synth writes the synthetic control-plane traffic of internal/synth to a directory: per
// cluster an audit log (JSON lines, or EventList bodies with -eventlist) and watch streams, and
// rollouts.csv, the rollouts the traffic holds (what `kairn report rollout-first-pull` should find).
//
//	go run ./hack/synth -out /tmp/traffic -deployments 200 -replicas 3 -rollouts 4 -duration 2h
//	kairn ingest --cluster c0 --audit /tmp/traffic/c0/audit.log --archive /tmp/archive
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kairn-dev/kairn/internal/synth"
)

func main() {
	var cfg synth.Config
	out := flag.String("out", "traffic", "output directory")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed: the same flags give the same bytes")
	flag.IntVar(&cfg.Clusters, "clusters", 1, "clusters")
	flag.IntVar(&cfg.Namespaces, "namespaces", 4, "namespaces per cluster")
	flag.IntVar(&cfg.Deployments, "deployments", 8, "Deployments per cluster")
	flag.IntVar(&cfg.Replicas, "replicas", 2, "pods per Deployment")
	flag.IntVar(&cfg.Rollouts, "rollouts", 2, "image rollouts per Deployment")
	flag.IntVar(&cfg.Nodes, "nodes", 2, "nodes per cluster")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "time the rollouts are spread over")
	flag.Float64Var(&cfg.EventsPerSecond, "rate", 0, "at least this many audit events per second per cluster (Metadata-level background fills up)")
	flag.IntVar(&cfg.EventList, "eventlist", 0, "write webhook EventList bodies of this many events per line")
	flag.Parse()
	for _, c := range synth.Generate(cfg) {
		dir := filepath.Join(*out, c.Name)
		must(os.MkdirAll(dir, 0o755))
		must(os.WriteFile(filepath.Join(dir, "audit.log"), c.Audit, 0o644))
		for r, data := range c.Watch {
			must(os.WriteFile(filepath.Join(dir, "watch-"+r+".json"), data, 0o644))
		}
		f, err := os.Create(filepath.Join(dir, "rollouts.csv"))
		must(err)
		w := csv.NewWriter(f)
		w.Write([]string{"cluster", "namespace", "kind", "name", "upgrade_at", "first_pull_at"})
		for _, r := range c.Rollouts {
			w.Write([]string{r.Cluster, r.Namespace, r.Kind, r.Name, r.UpgradeAt.Format(time.RFC3339Nano), r.FirstPullAt.Format(time.RFC3339Nano)})
		}
		w.Flush()
		must(w.Error())
		must(f.Close())
		fmt.Printf("%s: %d audit events (%d with bodies), %d bytes, %d objects, %d rollouts\n",
			dir, c.Events, c.BodyEvents, len(c.Audit), c.Objects, len(c.Rollouts))
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "synth:", err)
		os.Exit(1)
	}
}
