package bus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// startServer runs an in-process NATS server with JetStream on a loopback
// port, configured by configure, until the test ends.
func startServer(t *testing.T, configure func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: os.Getenv("BUS_TEST_SERVER_LOG") == "",
	}
	configure(o)
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if !o.NoLog {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// userNKey makes an NKey user: its public key, and its seed in a file, as
// an operator hands it to babelcast (--nats-nkey).
func userNKey(t *testing.T) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ = kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, seedFile
}

// pki is a CA with a server certificate (127.0.0.1) and a client one.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string // PEM files
	pool                                             *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{ca: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write("cert"+big.NewInt(serial).String()+".pem", "CERTIFICATE", der), write("key"+big.NewInt(serial).String()+".pem", "EC PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = leaf(3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

// A cluster that wants mutual TLS and an NKey user: --nats-tls-* and
// --nats-nkey get in; without the client certificate, or trusting no CA,
// the connection is refused at once.
func TestMutualTLSAndNKey(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	pub, seedFile := userNKey(t)
	s := startServer(t, func(o *server.Options) {
		cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
		if err != nil {
			t.Fatal(err)
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		o.TLS, o.TLSVerify = true, true
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	})
	url := s.ClientURL()
	b := open(t, Options{URL: url, NKey: seedFile, TLSCA: p.ca, TLSCert: p.clientCert, TLSKey: p.clientKey})
	if _, err := b.Rooms.Put(context.Background(), "r", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, o := range map[string]Options{
		"no client certificate": {URL: url, NKey: seedFile, TLSCA: p.ca},
		"no CA":                 {URL: url, NKey: seedFile, TLSCert: p.clientCert, TLSKey: p.clientKey},
		"no key":                {URL: url, TLSCA: p.ca, TLSCert: p.clientCert, TLSKey: p.clientKey},
	} {
		o.Logger = quiet()
		start := time.Now()
		if b, err := Open(ctx, o); err == nil {
			b.Close()
			t.Errorf("%s: let in", name)
		} else if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: refused after %v (%v); want at once", name, took, err)
		}
	}
}

// A .creds file (operator mode: user JWT and seed) gets in with --nats-creds.
func TestCredsFile(t *testing.T) {
	t.Parallel()
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opClaims := jwt.NewOperatorClaims(opPub)
	acc, _ := nkeys.CreateAccount()
	accPub, _ := acc.PublicKey()
	accClaims := jwt.NewAccountClaims(accPub)
	accClaims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	accJWT, err := accClaims.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	sys, _ := nkeys.CreateAccount()
	sysPub, _ := sys.PublicKey()
	sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	opClaims.SystemAccount = sysPub
	usr, _ := nkeys.CreateUser()
	usrPub, _ := usr.PublicKey()
	usrClaims := jwt.NewUserClaims(usrPub)
	usrClaims.IssuerAccount = accPub
	usrJWT, err := usrClaims.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	usrSeed, _ := usr.Seed()
	creds, err := jwt.FormatUserConfig(usrJWT, usrSeed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "babelcast.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		r := &server.MemAccResolver{}
		for pub, claims := range map[string]string{accPub: accJWT, sysPub: sysJWT} {
			if err := r.Store(pub, claims); err != nil {
				t.Fatal(err)
			}
		}
		o.AccountResolver, o.SystemAccount = r, sysPub
	})
	b := open(t, Options{URL: s.ClientURL(), Creds: credsFile})
	if _, err := b.Rooms.Put(context.Background(), "r", []byte("{}")); err != nil {
		t.Fatal(err)
	}
}

// With a certificate, the embedded server's listener speaks TLS only: a
// process holding the key and trusting the CA joins over TLS, a plain
// connection is refused, and a certificate without its key (or without a
// listener) is refused at start.
func TestEmbeddedListenerOverTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	b := open(t, Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ListenTLSCert: p.serverCert, ListenTLSKey: p.serverKey})
	url := b.ClientURL()
	if !strings.HasPrefix(url, "tls://127.0.0.1:") {
		t.Fatalf("listener URL %q, want tls://", url)
	}
	if _, err := b.Rooms.Put(context.Background(), "r", []byte(`{"speaker_key":"spk_secret"}`)); err != nil {
		t.Fatal(err)
	}
	joined := open(t, Options{URL: url, NKey: b.ListenerKeyFile(), TLSCA: p.ca})
	if e, err := joined.Rooms.Get(context.Background(), "r"); err != nil || !strings.Contains(string(e.Value()), "spk_secret") {
		t.Fatalf("the joined process reads the rooms: %v", err)
	}
	plain := "nats://" + strings.TrimPrefix(url, "tls://")
	if nc, err := nats.Connect(plain, nats.NoReconnect(), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a plain connection to the TLS listener was let in")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, o := range map[string]Options{
		"certificate without key":      {DataDir: t.TempDir(), Listen: "127.0.0.1:0", ListenTLSCert: p.serverCert},
		"certificate without listener": {DataDir: t.TempDir(), ListenTLSCert: p.serverCert, ListenTLSKey: p.serverKey},
		"not a certificate":            {DataDir: t.TempDir(), Listen: "127.0.0.1:0", ListenTLSCert: p.ca + ".missing", ListenTLSKey: p.serverKey},
		"listener TLS when joining":    {URL: url, NKey: b.ListenerKeyFile(), TLSCA: p.ca, ListenTLSCert: p.serverCert, ListenTLSKey: p.serverKey},
	} {
		o.Logger = quiet()
		if b, err := Open(ctx, o); err == nil {
			b.Close()
			t.Errorf("%s: opened", name)
		}
	}
}
