# Builds payeshd and payesh into a small image. Used by docker-compose.yml.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/payeshd ./cmd/payesh

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 payesh
COPY --from=build /out/ /usr/local/bin/
USER payesh
EXPOSE 8080
ENTRYPOINT ["payeshd"]
