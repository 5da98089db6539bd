# syntax=docker/dockerfile:1
# surveyhooks: a static binary on a small, non-root base image.
#   docker build -t surveyhooks .
#   docker run --rm surveyhooks help
#
# The Go image must be the go.mod `go` line's release (1.26): the official images set
# GOTOOLCHAIN=local, so an older one refuses to build and a newer minor is untested.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: a static binary that needs no libc in the runtime image.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags="-s -w" \
    -o /out/surveyhooks ./cmd/surveyhooks

# distroless/static: CA certificates (HTTPS webhooks, TLS to Temporal) and tzdata, no
# shell, runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/surveyhooks /usr/local/bin/surveyhooks
USER nonroot:nonroot
# REST API (SURVEYHOOKS_ADDR) and Prometheus metrics (SURVEYHOOKS_METRICS_ADDR).
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/surveyhooks"]
CMD ["serve"]
