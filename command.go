package socketio

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "socketio-token",
		Usage: "[--secret <secret>] [--sub <subject>] [--claim <key=value>]... [--ttl <duration>] [--aud <audience>] [--iss <issuer>]",
		Short: "Mints an HS256 token for Socket.IO development",
		Long: `
Mints a JSON Web Token signed with HS256 and prints it, for trying the socketio
handler's auth during development. The secret comes from --secret or, if that
is empty, from the JWT_SECRET environment variable; use the same secret as the
handler's auth secret. Prefer the environment variable: command-line arguments
are visible to other users of the machine.

--claim key=value adds a claim (repeatable); a value that parses as JSON
(a number, true/false, an object) is kept as such, anything else is a string.
The token expires after --ttl (default 1h).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("secret", "", "HMAC secret (default: $JWT_SECRET)")
			cmd.Flags().String("sub", "", "subject claim")
			cmd.Flags().StringArray("claim", nil, "extra claim as key=value (repeatable)")
			cmd.Flags().Duration("ttl", time.Hour, "lifetime of the token")
			cmd.Flags().String("aud", "", "audience claim")
			cmd.Flags().String("iss", "", "issuer claim")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdToken)
		},
	})
}

func cmdToken(fl caddycmd.Flags) (int, error) {
	claims, err := fl.GetStringArray("claim")
	if err != nil {
		return exitFailed, err
	}
	ttl, err := fl.GetDuration("ttl")
	if err != nil {
		return exitFailed, err
	}
	opts := tokenOptions{
		Secret: fl.String("secret"),
		Sub:    fl.String("sub"),
		Claims: claims,
		TTL:    ttl,
		Aud:    fl.String("aud"),
		Iss:    fl.String("iss"),
	}
	if opts.Secret == "" {
		opts.Secret = os.Getenv("JWT_SECRET")
	}
	tok, err := mintToken(opts, time.Now())
	if err != nil {
		return exitFailed, err
	}
	fmt.Println(tok)
	return 0, nil
}

// exitFailed is the exit code of a failed subcommand.
const exitFailed = 1

// tokenOptions are the socketio-token flags.
type tokenOptions struct {
	Secret string
	Sub    string
	Claims []string
	TTL    time.Duration
	Aud    string
	Iss    string
}

// mintToken builds and signs the token.
func mintToken(o tokenOptions, now time.Time) (string, error) {
	if o.Secret == "" {
		return "", errors.New("minting token: no secret (use --secret or set JWT_SECRET)")
	}
	if o.TTL <= 0 {
		return "", errors.New("minting token: --ttl must be positive")
	}
	claims := jwt.MapClaims{}
	for _, kv := range o.Claims {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("minting token: claim %q is not key=value", kv)
		}
		claims[k] = claimValue(v)
	}
	if o.Sub != "" {
		claims["sub"] = o.Sub
	}
	if o.Aud != "" {
		claims["aud"] = o.Aud
	}
	if o.Iss != "" {
		claims["iss"] = o.Iss
	}
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(o.TTL).Unix()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(o.Secret))
	if err != nil {
		return "", fmt.Errorf("minting token: %w", err)
	}
	return tok, nil
}

// claimValue keeps JSON scalars and objects typed; anything else is a string.
func claimValue(v string) any {
	var x any
	if err := jsonUnmarshalNumber([]byte(v), &x); err == nil {
		if _, isString := x.(string); !isString {
			return x
		}
	}
	return v
}
