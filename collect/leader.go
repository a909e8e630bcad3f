package collect

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader election timing: a leader that cannot renew for RenewDeadline stops its work, and
// another replica can take over LeaseDuration after the last renewal, so a stopping leader has
// LeaseDuration - RenewDeadline to finish before two could run.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// RunElected runs run only while identity holds the Lease namespace/name. When leadership is
// lost, run's context is cancelled and, once run has returned, RunElected campaigns again. When
// ctx is done, run's context is cancelled too, and the Lease is released only after run has
// returned, so that another replica's run never overlaps this one's. RunElected returns nil
// when ctx is done, and run's result when run returns on its own while leading.
func RunElected(ctx context.Context, cfg *rest.Config, namespace, name, identity string, run func(ctx context.Context) error) error {
	if cfg == nil {
		return errors.New("leader election: no rest.Config")
	}
	if namespace == "" || name == "" || identity == "" {
		return fmt.Errorf("leader election: namespace (%q), name (%q) and identity (%q) are required", namespace, name, identity)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "kairn-leader-election"
	}
	client, err := coordinationv1.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	for ctx.Err() == nil {
		done, err := campaign(ctx, client, namespace, name, identity, run)
		if done {
			return err
		}
	}
	return nil
}

// campaign is one term: it waits for leadership, runs run while leading and returns once both
// run and the elector have stopped. done says that RunElected must return (with err).
func campaign(ctx context.Context, client coordinationv1.LeasesGetter, namespace, name, identity string, run func(ctx context.Context) error) (done bool, err error) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name},
		Client:     client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	leading := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            namespace + "/" + name,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			// Its context ends when leadership is lost (or the elector stops).
			OnStartedLeading: func(lctx context.Context) { leading <- lctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return true, fmt.Errorf("leader election: %w", err)
	}
	// The elector outlives ctx until run has stopped: cancelling it releases the Lease.
	elCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	elected := make(chan struct{})
	go func() {
		defer close(elected)
		le.Run(elCtx)
	}()

	select {
	case <-ctx.Done():
		stopElector()
		<-elected
		return true, nil
	case <-elected:
		// Lost right after acquiring (or never acquired): campaign again, after a pause so a
		// failing apiserver is not hammered.
		select {
		case <-ctx.Done():
		case <-time.After(retryPeriod):
		}
		return false, nil
	case lctx := <-leading:
		runCtx, cancelRun := context.WithCancel(ctx)
		stop := context.AfterFunc(lctx, cancelRun)
		runErr := run(runCtx)
		lost := lctx.Err() != nil
		stop()
		cancelRun()
		stopElector()
		<-elected
		switch {
		case ctx.Err() != nil:
			return true, nil
		case lost:
			return false, nil // campaign again
		default:
			return true, runErr
		}
	}
}
