package warmer

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/vista-warmer/vista-warmer/keys"
)

// A full reload of a kind: its list fetched in a goroutine of its own
// (fetchAsync), taken in by the writer's loop chunk by chunk (takeIn),
// committed whole, and tried again with a backoff when it fails.

// reloader is what the writer keeps of one kind's full reloads; the
// writer's loop owns it, as part of the state.
type reloader struct {
	next     time.Time // when the next full reload is due (the warmer's clock)
	loaded   bool      // a full load went through in this epoch
	loadedAt string    // P:meta's loaded:{kind} as this writer wrote or read it
	quiet    bool      // the next reload is part of a build from nothing
	held     *heldDrop // a drop held back, see judgeDrop
	retry    *backoff.ExponentialBackOff
	// emptySince is when an empty list on a build anew was first refused
	// (judgeEmptyBuild).
	emptySince time.Time
	// awaitWrites: Redis refused the reload's writes, or evicted the
	// lease or P:meta from under them; it goes again as soon as Redis
	// takes writes and has room.
	awaitWrites bool
	fetching    *fetchRun // the list being fetched, if one is
	intake      *intake   // the list being taken in, chunk by chunk
	// unindexed are the entities a build from nothing wrote that its
	// indexes do not list yet (writeIndexes).
	unindexed []string
	// zones: of the sessions' reloader, the cinemas' zones its last
	// list was read with (zoneKey).
	zones string
	// fresh: Redis held no key of the kind when its build began
	// (readUnlisted saw none), so the build's new hashes need no DEL
	// before they are written (hashFreshCmd).
	fresh bool
}

// fetched is what a fetcher got, for the writer's state it began in: a
// chunk of the list (rows) while the rest is on its way, then the whole
// list, or the error that ended the fetch.
type fetched struct {
	st   *state
	k    keys.Kind
	run  *fetchRun
	now  time.Time // when the list was asked for, on the warmer's clock
	rows []row
	// again: rows names an id that an earlier message's rows had (a list
	// that names an id twice, chunks apart).
	again bool
	l     *listing // set on the last message, unless err is
	err   error
}

// fetchRun is one fetch of a list, which its writer can call off.
type fetchRun struct {
	cancel context.CancelFunc
}

// fetchAsync fetches a kind's list in a goroutine of its own, in the
// background of the loop's other work, and hands it to the loop chunk by
// chunk through w.fetched, waking it after each. The loop takes the
// chunks in (takeFetched, takeIn) while later pages are fetched, so Redis
// writes one part of a long list while Vista sends the next. The loop
// starts no fetch of a kind being fetched (reloadNow calls one off).
func (w *Warmer) fetchAsync(ctx context.Context, k keys.Kind, now time.Time) {
	w.loading(k)
	st, zones := w.st, w.zones()
	if k == keys.Sessions {
		st.kinds[k].zones = zoneKey(zones)
	}
	fctx, cancel := context.WithCancel(ctx)
	run := &fetchRun{cancel: cancel}
	st.kinds[k].fetching = run
	send := func(f fetched) error {
		select {
		case w.fetched <- f:
			select {
			case w.arrived <- struct{}{}:
			default:
			}
			return nil
		case <-fctx.Done():
			return fctx.Err() // the writer stopped taking the list in
		}
	}
	w.goAsk(func() {
		defer cancel()
		emit := func(rows []row, again bool) error {
			return send(fetched{st: st, k: k, run: run, now: now, rows: rows, again: again})
		}
		l, err := w.fetch(fctx, st, k, now, zones, emit)
		_ = send(fetched{st: st, k: k, run: run, now: now, l: l, err: err})
	})
}

// takeFetched takes in what was fetched in the background since the last step.
func (w *Warmer) takeFetched(ctx context.Context) error {
	for {
		f, ok := w.nextFetched()
		if !ok {
			return nil
		}
		if err := w.takeIn(ctx, f); err != nil {
			if w.aside != nil {
				// The step ends here; the next takes it in.
				select {
				case w.arrived <- struct{}{}:
				default:
				}
			}
			return err
		}
	}
}

// nextFetched returns the next message of the fetchers, if one is in:
// the one set aside first.
func (w *Warmer) nextFetched() (fetched, bool) {
	if f := w.aside; f != nil {
		w.aside = nil
		return *f, true
	}
	select {
	case f := <-w.fetched:
		return f, true
	default:
		return fetched{}, false
	}
}

// takeIn writes a chunk of a list, or commits the whole list, or
// schedules the next try when fetching or writing it failed. What was
// fetched for a writer's state that has gone since (the lease changed
// hands, the cache was read again), or for a fetch called off, is
// dropped: the state that replaced it reloads on its own.
func (w *Warmer) takeIn(ctx context.Context, f fetched) error {
	if w.st == nil || f.st != w.st || w.st.kinds[f.k].fetching != f.run {
		return nil
	}
	k, st := f.k, w.st
	var err error
	switch {
	case f.err != nil:
		err = f.err
	case f.l == nil:
		if err = w.writeRows(ctx, k, f.rows, nil, f.now, w.buildStream(ctx, k, f.run)); err == nil {
			return nil // the rest of the list is on its way
		}
	default:
		err = w.commit(ctx, k, f.l)
	}
	f.run.cancel() // done with, or given up
	st.kinds[k].fetching = nil
	st.kinds[k].intake = nil
	if w.st != st {
		return w.failed("reload_"+string(k), err)
	}
	if f.err != nil && len(st.kinds[k].unindexed) > 0 {
		// A build whose list Vista failed: what it wrote is listed now,
		// not when a list goes through. (A write that failed leaves it
		// to the next list: Redis would likely refuse this one too.)
		if ierr := w.writeIndexes(ctx, k); ierr != nil {
			err = errors.Join(err, ierr) // a fence's answer counts as any write's
		}
	}
	if err != nil {
		// Try again with a backoff counted from the failure, which may
		// come minutes after the fetch began (a list that hangs until its
		// timeouts run out), or at the schedule if sooner.
		failedAt := w.cfg.Clock.Now()
		st.kinds[k].next = minTime(failedAt.Add(st.retry(k).NextBackOff()), w.schedules[k].Next(failedAt))
		if errors.Is(err, errEmptyBuild) {
			st.kinds[k].next = failedAt.Add(emptyBuildRetry)
		}
		if code, _ := refusal(err); code == "acl" || errors.As(err, new(*RefusedError)) || errors.Is(err, errLeaseGone) || errors.Is(err, errMetaGone) || errors.Is(err, errMoved) {
			// Redis refused the writes (out of memory, read-only, a
			// command the ACL denies), or lost the lease key or P:meta
			// from under them (evicted): the reload goes again as soon
			// as a write goes through and Redis has a tenth of its
			// memory free, not at the next retry or cron; a Redis that
			// hovers at its limit waits the retry out. So too when a
			// failover moved the writer (errMoved): once it goes on there.
			st.kinds[k].awaitWrites = true
		}
		return w.failed("reload_"+string(k), err)
	}
	st.retry(k).Reset()
	st.kinds[k].awaitWrites = false // went through: nothing to go again for
	w.reloaded(k, f.now)
	return nil
}

// retry is the backoff of a kind's full reloads that failed in a row, on
// the warmer's clock: a minute, doubling up to a quarter of an hour.
func (st *state) retry(k keys.Kind) *backoff.ExponentialBackOff {
	r := st.kinds[k]
	if r.retry == nil {
		r.retry = &backoff.ExponentialBackOff{InitialInterval: time.Minute, Multiplier: 2, MaxInterval: 15 * time.Minute}
	}
	return r.retry
}

// reloaded sets when a kind reloads next after a reload that went through:
// at its schedule, or, while a drop is held back, as soon as a reload can
// confirm it, which need not wait for the schedule.
func (w *Warmer) reloaded(k keys.Kind, now time.Time) {
	next := w.schedules[k].Next(now)
	if h := w.st.kinds[k].held; h != nil {
		next = minTime(next, maxTime(now, h.at.Add(ConfirmDropAfter)))
	}
	w.st.kinds[k].next = next
	if sessions := w.st.kinds[keys.Sessions]; (k == keys.Cinemas || k == keys.Sessions) && sessions.zones != zoneKey(w.zones()) {
		// The sessions' wall times were read in zones the cinemas no
		// longer give (a build that found the cinema list empty read
		// them all in the default zone): they are read again at once.
		sessions.next = now
	}
	w.worksAgain("reload_" + string(k))
	if w.cfg.AfterReload != nil {
		w.cfg.AfterReload(k)
	}
}
