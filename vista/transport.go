// One request to Vista: the budget, retries with backoff, Retry-After,
// and what an error answer means.

package vista

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cenkalti/backoff/v5"
)

// get fetches u, retrying what may pass: transport errors, timeouts, 408, 429
// and 5xx, except for an endpoint asked once (seat checks). A context that
// ends stops it at once, in a backoff or a wait for the budget too.
func (c *Client) get(ctx context.Context, ep endpoint, u *url.URL, buf []byte) ([]byte, error) {
	retry := c.backoff()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("vista %s: %w", ep.entity, err)
		}
		body, retryAfter, err := c.attempt(ctx, ep, u, buf)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("vista %s: %w", ep.entity, ctx.Err())
		}
		var ae *attemptError
		if !errors.As(err, &ae) {
			return nil, err
		}
		if attempt >= c.maxRetries || ep.once {
			return nil, ae.err
		}
		delay := c.jitter(retry.NextBackOff())
		if retryAfter >= 0 {
			delay = min(retryAfter, c.maxDelay)
		}
		level := slog.LevelDebug
		if attempt > 0 {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "vista request failed, retrying",
			"endpoint", ep.name, "attempt", attempt+1, "delay", delay, "err", err)
		if err := c.sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("vista %s: %w", ep.entity, err)
		}
	}
}

// backoff is the ceilings of a request's retries: BaseDelay, doubling up
// to MaxDelay. The delay is drawn below each (c.jitter: full jitter).
func (c *Client) backoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: c.baseDelay, Multiplier: 2, MaxInterval: c.maxDelay}
}

func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// attemptError is a failed attempt that may pass on a retry.
type attemptError struct{ err error }

func (e *attemptError) Error() string { return e.err.Error() }

func (e *attemptError) Unwrap() error { return e.err }

// attempt makes one request, within the budget. retryAfter is the server's
// Retry-After, or -1. Errors for a retry are wrapped in *attemptError.
func (c *Client) attempt(ctx context.Context, ep endpoint, u *url.URL, buf []byte) (body []byte, retryAfter time.Duration, err error) {
	retryAfter = -1
	// Acquired before the attempt's timeout starts: a wait for the budget
	// is not the server's slowness.
	release, err := c.budget.acquireFor(ctx)
	if err != nil {
		return nil, retryAfter, fmt.Errorf("vista %s: %w", ep.entity, err)
	}
	defer release()
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, retryAfter, fmt.Errorf("vista %s: %w", ep.entity, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set(tokenHeader, c.token)
	}
	start := time.Now()
	status := 0
	defer func() {
		if c.observe != nil {
			c.observe(ep.name, status, time.Since(start))
		}
	}()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, retryAfter, c.transportError(ep, actx, err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		excerptBody, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
		se := &StatusError{Endpoint: ep.entity, StatusCode: resp.StatusCode, Body: c.cleanBody(excerptBody)}
		switch code := resp.StatusCode; {
		case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				retryAfter = d
				c.pause(ep, min(d, c.maxDelay))
			} else {
				c.budget.slowDown()
			}
			return nil, retryAfter, &attemptError{se}
		case code == http.StatusRequestTimeout || code >= 500:
			return nil, retryAfter, &attemptError{se}
		}
		return nil, retryAfter, se
	}
	if resp.ContentLength > c.maxBody {
		return nil, retryAfter, fmt.Errorf("vista %s: answer of %d bytes, more than the %d allowed", ep.entity, resp.ContentLength, c.maxBody)
	}
	body, err = readBody(resp.Body, resp.ContentLength, c.maxBody+1, buf)
	if err != nil {
		return nil, retryAfter, c.transportError(ep, actx, err)
	}
	if int64(len(body)) > c.maxBody {
		return nil, retryAfter, fmt.Errorf("vista %s: answer larger than the %d bytes allowed", ep.entity, c.maxBody)
	}
	return body, retryAfter, nil
}

// pause holds every request of the budget for d: Vista asked for it, and
// asked the client, not this one request.
func (c *Client) pause(ep endpoint, d time.Duration) {
	if c.budget == nil || d <= 0 {
		return
	}
	c.log.Warn("vista asks to wait; pausing every request", "endpoint", ep.name, "for", d)
	c.budget.pauseFor(d)
}

// transportError describes a request that got no (whole) answer. A timeout of
// the attempt is reported as such, not as the caller's deadline.
func (c *Client) transportError(ep endpoint, actx context.Context, err error) error {
	if actx.Err() == context.DeadlineExceeded {
		return &attemptError{fmt.Errorf("vista %s: no answer within %v", ep.entity, c.timeout)}
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return fmt.Errorf("vista %s: %w", ep.entity, err) // retrying does not fix a certificate
	}
	return &attemptError{fmt.Errorf("vista %s: %w", ep.entity, err)}
}

// cleanBody keeps the start of an error answer readable on one log line and
// free of the token, should the server echo it.
func (c *Client) cleanBody(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if c.token != "" {
		s = strings.ReplaceAll(s, c.token, "[redacted]")
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110, 10.2.3). A date in the past means now.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		const maxSecs = uint64(1<<63-1) / uint64(time.Second)
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// readBody reads at most limit bytes of an answer whose length the server
// said (n, or -1) into buf, the body of the list's page before, whose
// room is reused: a list's pages are about the same size. Without room
// enough for n, into one buffer of that size; of unknown length (a
// streamed answer, as the simulated Vista's and likely IIS's), into
// buf growing as needed. io.ReadAll grew a buffer from 512 bytes for
// every page, copying a 600 KB page about eleven times over: at 100k
// sessions, 200 MB of garbage a cold load. A length that is wrong costs
// nothing but that saving.
func readBody(r io.Reader, n, limit int64, buf []byte) ([]byte, error) {
	if n >= 0 && n < limit && int64(cap(buf)) < n+bytes.MinRead {
		buf = make([]byte, 0, n+bytes.MinRead) // room to read the EOF without growing
	}
	b := bytes.NewBuffer(buf[:0])
	_, err := b.ReadFrom(io.LimitReader(r, limit))
	return b.Bytes(), err
}
