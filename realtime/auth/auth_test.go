package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func keys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

func pemOf(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

var secret = []byte("0123456789abcdef0123456789abcdef")

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func future() int64 { return fixedNow.Add(time.Hour).Unix() }

func TestVerifyValidPerKeyType(t *testing.T) {
	keys(t)
	cases := []struct {
		name   string
		cfg    Config
		method jwt.SigningMethod
		signer any
	}{
		{"HS256", Config{Secret: secret}, jwt.SigningMethodHS256, secret},
		{"RS256", Config{PublicKey: parsePEM(t, pemOf(t, &rsaKey.PublicKey))}, jwt.SigningMethodRS256, rsaKey},
		{"ES256", Config{PublicKey: parsePEM(t, pemOf(t, &ecKey.PublicKey))}, jwt.SigningMethodES256, ecKey},
		{"EdDSA", Config{PublicKey: parsePEM(t, pemOf(t, edKey.Public()))}, jwt.SigningMethodEdDSA, edKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Now = func() time.Time { return fixedNow }
			v, err := NewVerifier(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Algorithms(); len(got) != 1 || got[0] != tc.name {
				t.Fatalf("default algorithms = %v, want [%s]", got, tc.name)
			}
			tok := testkit.Sign(t, tc.method, tc.signer, jwt.MapClaims{"sub": "alice", "exp": future(), "n": 12345678901234567})
			claims, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims["sub"] != "alice" {
				t.Fatalf("sub = %v", claims["sub"])
			}
			if n := claims["n"]; n == nil || n.(interface{ String() string }).String() != "12345678901234567" {
				t.Fatalf("large number mangled: %v", n)
			}
			exp, ok := claims.Expiry()
			if !ok || exp.Unix() != future() {
				t.Fatalf("Expiry = %v %v", exp, ok)
			}
		})
	}
}

func parsePEM(t *testing.T, b []byte) crypto.PublicKey {
	t.Helper()
	k, err := ParsePublicKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyRefusals(t *testing.T) {
	keys(t)
	rsaPEM := pemOf(t, &rsaKey.PublicKey)
	hs := Config{Secret: secret, Now: func() time.Time { return fixedNow }}
	rs := Config{PublicKey: parsePEM(t, rsaPEM), Now: hs.Now}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)

	noneTok := testkit.Unsigned(t, jwt.MapClaims{"sub": "x"})
	cases := []struct {
		name    string
		cfg     Config
		token   string
		message string
		is      error
	}{
		{"empty", hs, "", "missing token", ErrMissingToken},
		{"garbage", hs, "abc", "invalid token: token is malformed", jwt.ErrTokenMalformed},
		{"bad signature HS", hs, testkit.Sign(t, jwt.SigningMethodHS256, []byte("another secret of enough length!"), jwt.MapClaims{"exp": future()}),
			"invalid token: signature is invalid", jwt.ErrTokenSignatureInvalid},
		{"bad signature RS", rs, testkit.Sign(t, jwt.SigningMethodRS256, other, jwt.MapClaims{"exp": future()}),
			"invalid token: signature is invalid", jwt.ErrTokenSignatureInvalid},
		{"expired", hs, testkit.Sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": fixedNow.Add(-time.Minute).Unix()}),
			"invalid token: token is expired", jwt.ErrTokenExpired},
		{"nbf in future", hs, testkit.Sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"nbf": fixedNow.Add(time.Minute).Unix()}),
			"invalid token: token is not valid yet", jwt.ErrTokenNotValidYet},
		{"alg none", hs, noneTok, "invalid token: token is unverifiable: unsigned tokens (alg none) are never accepted", nil},
		{"alg none with RSA", rs, noneTok, "invalid token: token is unverifiable: unsigned tokens (alg none) are never accepted", nil},
		{"alg confusion", rs, testkit.Sign(t, jwt.SigningMethodHS256, rsaPEM, jwt.MapClaims{"sub": "mallory", "exp": future()}),
			"invalid token: token is unverifiable: algorithm HS256 is not accepted", nil},
		{"unconfigured HS512", hs, testkit.Sign(t, jwt.SigningMethodHS512, secret, jwt.MapClaims{}),
			"invalid token: token is unverifiable: algorithm HS512 is not accepted", nil},
		{"unknown alg", hs, "eyJhbGciOiJYWDk5OSIsInR5cCI6IkpXVCJ9.e30.c2ln",
			"invalid token: token is unverifiable: unknown algorithm", jwt.ErrTokenUnverifiable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			claims, err := v.Verify(tc.token)
			if err == nil {
				t.Fatalf("accepted, claims %v", claims)
			}
			if err.Error() != tc.message {
				t.Fatalf("message = %q, want %q", err.Error(), tc.message)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if strings.Contains(err.Error(), tc.token) && tc.token != "" {
				t.Fatal("message echoes the token")
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	now := fixedNow
	v, err := NewVerifier(Config{Secret: secret, Leeway: 5 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok := testkit.Sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": fixedNow.Add(-3 * time.Second).Unix()})
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("3s past exp within 5s leeway: %v", err)
	}
	now = fixedNow.Add(3 * time.Second)
	if _, err := v.Verify(tok); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("6s past exp: %v", err)
	}
	if v.Leeway() != 5*time.Second {
		t.Fatalf("Leeway() = %v", v.Leeway())
	}
}

func TestIssuerAudience(t *testing.T) {
	v, err := NewVerifier(Config{Secret: secret, Issuer: "https://issuer.test", Audience: []string{"chat", "admin"}, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		claims jwt.MapClaims
		want   string
	}{
		{"ok", jwt.MapClaims{"iss": "https://issuer.test", "aud": "chat"}, ""},
		{"ok aud list", jwt.MapClaims{"iss": "https://issuer.test", "aud": []string{"x", "admin"}}, ""},
		{"wrong iss", jwt.MapClaims{"iss": "https://evil.test", "aud": "chat"}, "invalid token: token has invalid issuer"},
		{"missing iss", jwt.MapClaims{"aud": "chat"}, "invalid token: token is missing the iss claim"},
		{"wrong aud", jwt.MapClaims{"iss": "https://issuer.test", "aud": "billing"}, "invalid token: token has invalid audience"},
		{"missing aud", jwt.MapClaims{"iss": "https://issuer.test"}, "invalid token: token is missing the aud claim"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(testkit.Sign(t, jwt.SigningMethodHS256, secret, tc.claims))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	keys(t)
	rsaPub := &rsaKey.PublicKey
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key", Config{}, "no key configured"},
		{"both", Config{Secret: secret, PublicKey: rsaPub}, "not both"},
		{"none", Config{Secret: secret, Algorithms: []string{"none"}}, `"none" is never accepted`},
		{"HS with RSA key", Config{PublicKey: rsaPub, Algorithms: []string{"HS256"}}, `"HS256" does not fit`},
		{"RS with secret", Config{Secret: secret, Algorithms: []string{"RS256"}}, `"RS256" does not fit`},
		{"ES384 with P-256", Config{PublicKey: &ecKey.PublicKey, Algorithms: []string{"ES384"}}, `"ES384" does not fit`},
		{"negative leeway", Config{Secret: secret, Leeway: -time.Second}, "negative leeway"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	v, err := NewVerifier(Config{PublicKey: rsaPub, Algorithms: []string{"RS256", "PS256", "RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Algorithms(); len(got) != 2 {
		t.Fatalf("algorithms = %v, want deduplicated RS256 PS256", got)
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	keys(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	privDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	cases := []struct {
		name string
		data []byte
		want string // "" = ok
	}{
		{"pkix rsa", pemOf(t, &rsaKey.PublicKey), ""},
		{"pkcs1 rsa", pkcs1, ""},
		{"ed25519", pemOf(t, edKey.Public()), ""},
		{"small rsa", pemOf(t, &small.PublicKey), "too small"},
		{"private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), "public key only"},
		{"not pem", []byte("hello"), "no PEM block"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKeyPEM(tc.data)
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	h := Handshake{
		Auth:    map[string]any{"token": "from-auth", "other": "x", "num": 3},
		Headers: http.Header{"Authorization": {"Bearer from-header"}, "Cookie": {"a=1; jwt=from-cookie"}, "X-Token": {"from-x"}},
		Query:   url.Values{"access_token": {"from-query"}},
	}
	cases := []struct {
		specs []string
		h     Handshake
		want  string
		from  string
	}{
		{[]string{"auth"}, h, "from-auth", "auth:token"},
		{[]string{"auth:other"}, h, "x", "auth:other"},
		{[]string{"auth:num"}, h, "", ""},
		{[]string{"header"}, h, "from-header", "header:Authorization"},
		{[]string{"header:x-token"}, h, "from-x", "header:X-Token"},
		{[]string{"query:access_token"}, h, "from-query", "query:access_token"},
		{[]string{"cookie:jwt"}, h, "from-cookie", "cookie:jwt"},
		{[]string{"auth:missing", "cookie:jwt"}, h, "from-cookie", "cookie:jwt"},
		{[]string{"query"}, h, "", ""},
		{[]string{"header"}, Handshake{Headers: http.Header{"Authorization": {"Basic abc"}}}, "", ""},
		{[]string{"auth", "header"}, Handshake{Headers: http.Header{"Authorization": {"bearer  tok "}}}, "tok", "header:Authorization"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.specs, ","), func(t *testing.T) {
			var srcs []Source
			for _, s := range tc.specs {
				src, err := ParseSource(s)
				if err != nil {
					t.Fatal(err)
				}
				srcs = append(srcs, src)
			}
			tok, from, ok := Extract(srcs, tc.h)
			if tok != tc.want || ok != (tc.want != "") || (ok && from.String() != tc.from) {
				t.Fatalf("Extract = %q %v %v, want %q from %s", tok, from, ok, tc.want, tc.from)
			}
		})
	}
	for _, bad := range []string{"cookie", "body:x", ""} {
		if _, err := ParseSource(bad); err == nil {
			t.Errorf("ParseSource(%q) accepted", bad)
		}
	}
}
