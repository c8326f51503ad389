#!/bin/sh
# Seeds the fuzz corpora with the example and test policies (idempotent).
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/parse_yaml corpus/parse_toml
for f in ../../examples/*/policies/*.yaml ../src/policy/testdata/*.yaml; do
    cp "$f" corpus/parse_yaml/
done
for f in ../../examples/*/policies-toml/*.toml ../../examples/policies.d/*.toml \
         ../src/policy/testdata/*.toml; do
    cp "$f" corpus/parse_toml/
done
