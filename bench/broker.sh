#!/bin/sh
# Builds the broker load generator and runs it: a keyturn daemon (audit
# on, on disk) and a bare net/http handler in one server process, driven
# from a second process over loopback. Flags go to the generator, e.g.
#   bench/broker.sh -consumers 64 -duration 10s -rounds 3 -dir /var/tmp/kt
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/broker-bench" ./bench/broker
"$bin/broker-bench" "$@"
