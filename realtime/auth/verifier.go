package auth

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config describes how tokens are verified. Exactly one of Secret and
// PublicKey is set.
type Config struct {
	// Secret is the HMAC key (HS256, HS384, HS512).
	Secret []byte
	// PublicKey is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	PublicKey crypto.PublicKey
	// Algorithms lists the accepted JWS algorithms. Empty means the key's
	// default: HS256 for a secret, RS256 for RSA, ES256/ES384/ES512 for the
	// ECDSA curve, EdDSA for Ed25519. "none" is refused.
	Algorithms []string
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// Audience, when set, requires the aud claim to hold one of these values.
	Audience []string
	// Leeway is the tolerated clock skew for exp and nbf (see DefaultLeeway;
	// zero means none).
	Leeway time.Duration
	// Now returns the current time; nil means time.Now. Tests swap it.
	Now func() time.Time
}

// Claims are the verified claims of a token. Numbers are json.Number so that
// large integer subjects survive intact.
type Claims map[string]any

// Expiry returns the exp claim, if any.
func (c Claims) Expiry() (time.Time, bool) {
	exp, err := jwt.MapClaims(c).GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, false
	}
	return exp.Time, true
}

// Verifier checks tokens against one Config. It is safe for concurrent use
// and immutable: build a new one when the configuration changes.
type Verifier struct {
	key    any
	algs   []string
	leeway time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// NewVerifier validates cfg (key present, algorithms fit the key) and returns
// a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Secret) > 0 && cfg.PublicKey != nil {
		return nil, errors.New("configuring token verification: set either a secret or a public key, not both")
	}
	algs, err := checkAlgorithms(cfg.Algorithms, cfg.Secret, cfg.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("configuring token verification: %w", err)
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("configuring token verification: negative leeway")
	}
	v := &Verifier{algs: algs, leeway: cfg.Leeway, now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if cfg.PublicKey != nil {
		v.key = cfg.PublicKey
	} else {
		v.key = slices.Clone(cfg.Secret)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audience...))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Algorithms returns the accepted algorithms.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

// Leeway returns the tolerated clock skew; the expiry timer of a connected
// socket fires at exp plus this leeway, matching what Verify accepts.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// Verify checks the signature and the registered claims of token and
// returns its claims. A refusal is ErrMissingToken or an *Error whose
// message is safe to show to the client.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return nil, ErrMissingToken
	}
	claims := jwt.MapClaims{}
	// The key function returns the one configured key; the algorithm check
	// has already been done by WithValidMethods, before any key is used.
	tok, err := v.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return nil, v.explain(tok, err)
	}
	return Claims(claims), nil
}

// explain turns a jwt error into a short, stable reason.
func (v *Verifier) explain(tok *jwt.Token, err error) error {
	reason := "token is invalid"
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "token is malformed"
	case tok != nil && tok.Method != nil && !slices.Contains(v.algs, tok.Method.Alg()):
		alg := tok.Method.Alg()
		if alg == "none" {
			reason = "token is unverifiable: unsigned tokens (alg none) are never accepted"
		} else {
			reason = fmt.Sprintf("token is unverifiable: algorithm %s is not accepted", alg)
		}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = "token is unverifiable: unknown algorithm"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = "signature is invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = "token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = "token has invalid issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = "token has invalid audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "token is missing a required claim"
		for _, c := range []string{"iss", "aud", "exp", "nbf", "sub", "iat"} {
			if strings.Contains(err.Error(), c+" claim is required") {
				reason = "token is missing the " + c + " claim"
				break
			}
		}
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "token used before issued"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		reason = "token has invalid claims"
	}
	return &Error{Reason: reason, Err: err}
}
