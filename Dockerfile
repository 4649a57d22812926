# vista-warmer: a static binary on an empty image, run as a non-root user.
# docker build -t vista-warmer . ; see docs/operations.md "Deployment".
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=unknown
# timetzdata embeds the zone database: cinema zones resolve without the OS's.
RUN CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-X main.version=${VERSION} -X main.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      -o /out/vista-warmer ./cmd/vista-warmer

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/vista-warmer /vista-warmer
USER 65532:65532
ENV VISTA_WARMER_LISTEN=0.0.0.0:9470 \
    VISTA_WARMER_LOG_FORMAT=json
EXPOSE 9470
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s CMD ["/vista-warmer", "healthcheck"]
ENTRYPOINT ["/vista-warmer"]
