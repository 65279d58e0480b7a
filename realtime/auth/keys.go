package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

// ParsePublicKeyPEM reads the first public key in PEM data: a PKIX
// "PUBLIC KEY" block, a PKCS #1 "RSA PUBLIC KEY" block or a "CERTIFICATE"
// (whose key is used). Private keys are refused on purpose: the server only
// verifies, and a private key in a config file is a leak waiting to happen.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("parsing public key: no PEM block found")
		}
		switch block.Type {
		case "PUBLIC KEY":
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing public key: %w", err)
			}
			return checkKey(key)
		case "RSA PUBLIC KEY":
			key, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing public key: %w", err)
			}
			return checkKey(key)
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing certificate: %w", err)
			}
			return checkKey(cert.PublicKey)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("parsing public key: found a %s block; configure the public key only", block.Type)
		}
		// Skip anything else (e.g. EC PARAMETERS) and look further.
	}
}

func checkKey(key any) (crypto.PublicKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		// RFC 7518 section 3.3: RSA keys of 2048 bits or larger MUST be used.
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("parsing public key: RSA key of %d bits is too small (2048 at least)", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return k, nil
	default:
		return nil, fmt.Errorf("parsing public key: unsupported key type %T", key)
	}
}

// KeyAlgorithms returns the JWS algorithms a key may verify and the one used
// when none is configured. Pinning the family to the key type is what keeps
// an HS256 token "signed" with the RSA public key bytes from being accepted.
func KeyAlgorithms(secret []byte, pub crypto.PublicKey) (allowed []string, def string, err error) {
	switch k := pub.(type) {
	case nil:
		if len(secret) == 0 {
			return nil, "", errors.New("no key configured: need a secret or a public key")
		}
		return []string{"HS256", "HS384", "HS512"}, "HS256", nil
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, "RS256", nil
	case *ecdsa.PublicKey:
		// RFC 7518 section 3.4 ties each ES algorithm to one curve.
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, "ES256", nil
		case elliptic.P384():
			return []string{"ES384"}, "ES384", nil
		case elliptic.P521():
			return []string{"ES512"}, "ES512", nil
		}
		return nil, "", fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return []string{"EdDSA"}, "EdDSA", nil
	}
	return nil, "", fmt.Errorf("unsupported key type %T", pub)
}

// checkAlgorithms validates configured algorithms against the key; an empty
// list yields the key's default.
func checkAlgorithms(configured []string, secret []byte, pub crypto.PublicKey) ([]string, error) {
	allowed, def, err := KeyAlgorithms(secret, pub)
	if err != nil {
		return nil, err
	}
	if len(configured) == 0 {
		return []string{def}, nil
	}
	out := make([]string, 0, len(configured))
	for _, alg := range configured {
		if alg == "none" || alg == "" {
			return nil, errors.New(`algorithm "none" is never accepted`)
		}
		if !slices.Contains(allowed, alg) {
			return nil, fmt.Errorf("algorithm %q does not fit the configured key (allowed: %v)", alg, allowed)
		}
		if !slices.Contains(out, alg) {
			out = append(out, alg)
		}
	}
	return out, nil
}
