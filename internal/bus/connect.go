package bus

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Connection timing. A server that dies with its machine (no TCP reset)
// is noticed after pingEvery × pingsOut; one whose process dies, at once.
const (
	reconnectWait = 500 * time.Millisecond
	pingEvery     = 2 * time.Second
	pingsOut      = 3
	// waitLogEvery spaces the log lines of a wait that goes on.
	waitLogEvery = 10 * time.Second
	maxWaitPause = 2 * time.Second
)

// securityOptions turn the credential and TLS files of o into connection
// options, checking first that each file can be read.
func securityOptions(o Options) ([]nats.Option, error) {
	var opts []nats.Option
	for _, f := range []struct{ flag, path string }{
		{"--nats-creds", o.Creds}, {"--nats-nkey", o.NKey},
		{"--nats-tls-ca", o.TLSCA}, {"--nats-tls-cert", o.TLSCert}, {"--nats-tls-key", o.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	if o.Creds != "" && o.NKey != "" {
		return nil, errors.New("--nats-creds and --nats-nkey are two ways to say who this process is: give one")
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if o.TLSCA != "" {
		pem, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("--nats-tls-ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--nats-tls-ca %s: no PEM certificate in it", o.TLSCA)
		}
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.TLSCA != "" || o.TLSCert != "" {
		// Refuse a server that does not speak TLS rather than send our
		// credentials to it in clear.
		opts = append(opts, nats.Secure())
	}
	return opts, nil
}

// connect opens the connection, waiting while no server answers.
// Credentials the servers refuse, or TLS that cannot work, end the wait.
func (b *Bus) connect(ctx context.Context, urls, name string, extra []nats.Option) (*nats.Conn, error) {
	log := b.log
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.PingInterval(pingEvery),
		nats.MaxPingsOutstanding(pingsOut),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
	}, extra...)
	where := redactURLs(urls)
	if urls == "" {
		where = "the embedded server"
	}
	return wait(ctx, b.log, "NATS at "+where, func() (*nats.Conn, error) {
		nc, err := nats.Connect(urls, opts...)
		if err != nil && !permanentConnectError(err) {
			return nil, retryable{err}
		}
		return nc, err
	})
}

// permanentConnectError reports whether waiting cannot help: the servers
// refused who we are, or TLS cannot be agreed.
func permanentConnectError(err error) bool {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrNkeysNotSupported) || errors.Is(err, nats.ErrSecureConnRequired) ||
		errors.Is(err, nats.ErrSecureConnWanted) || errors.Is(err, nats.ErrClientCertOrRootCAsRequired) {
		return true
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "authorization violation") || strings.Contains(msg, "tls:")
}

// retryable marks an error that waiting may mend.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// wait calls try until it succeeds or fails with an error that is not
// retryable, pausing between attempts (250 ms, doubling to 2 s) until ctx
// ends. The log says what it waits for at the first failure, then every
// waitLogEvery, and when the wait is over.
func wait[T any](ctx context.Context, log interface {
	Warn(string, ...any)
	Info(string, ...any)
}, what string, try func() (T, error)) (T, error) {
	start := time.Now()
	pause := 250 * time.Millisecond
	var logged time.Time
	for {
		v, err := try()
		var r retryable
		if err == nil || !errors.As(err, &r) {
			if err == nil && !logged.IsZero() {
				log.Info("waited for "+what, "for", time.Since(start).Round(time.Millisecond))
			}
			return v, err
		}
		if logged.IsZero() || time.Since(logged) >= waitLogEvery {
			log.Warn("waiting for "+what, "err", r.err, "waited", time.Since(start).Round(time.Second))
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%s: %w (gave up waiting: %w)", what, r.err, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, maxWaitPause)
	}
}

// redactURLs drops any user information from comma-separated URLs, for
// the log.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unreadable URL)"
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
