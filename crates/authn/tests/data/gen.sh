#!/bin/sh
# Regenerates the RS256 test key (ring cannot generate RSA keys). The key never expires, so it
# is committed; nothing trusts it outside these tests.
set -eu
cd "$(dirname "$0")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-2048.pk8.pem
