# The same image as `go run ./cmd/release` assembles without Docker: a static
# hookd on scratch, a CA bundle, the non-root user 65532 and /data for SQLite.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t hookd .
#
# Not built by CI (it has no Docker engine); cmd/release's test checks that
# this file promises the same user, environment, volume and entrypoint.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/usr/bin/hookd ./cmd/hookd \
 && mkdir -p /out/etc/ssl/certs /out/tmp /data \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:hookd:/data:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group \
 && chmod 1777 /out/tmp && chmod 700 /data

FROM scratch
COPY --from=build /out/ /
# COPY makes root the owner unless told otherwise: /data is the user's.
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
ENV HOOKD_DATABASE_URL=sqlite:/data/hookd.db
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/bin/hookd"]
CMD ["serve"]
