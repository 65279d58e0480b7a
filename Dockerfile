# Caddy with the socketio module, built from this checkout with Caddy's
# official builder image, as the caddy image's documentation shows for
# plugins:
#
#   docker build -t caddy-socketio .
#   docker run --rm caddy-socketio caddy list-modules    # lists http.handlers.socketio
#   docker run -p 80:80 -p 443:443 -v "$PWD/Caddyfile:/etc/caddy/Caddyfile" caddy-socketio
#
# Once a version is tagged, the builder stage can fetch it instead of
# copying the checkout:
#   RUN xcaddy build v2.11.9 --with github.com/caddy-socketio/caddy-socketio@v0.1.0
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder
ARG CADDY_VERSION
# go.mod asks for Go 1.26.8; if the builder image has an older Go, let it
# fetch that toolchain.
ENV GOTOOLCHAIN=auto
WORKDIR /src
COPY . .
RUN xcaddy build v${CADDY_VERSION} --output /usr/bin/caddy \
    --with github.com/caddy-socketio/caddy-socketio@v0.0.0-00010101000000-000000000000=/src

FROM caddy:${CADDY_VERSION}
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
