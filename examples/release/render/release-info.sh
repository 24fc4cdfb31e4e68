#!/bin/sh
# Prints a ConfigMap describing this release. ferry runs it once at package
# time and stores stdout as manifests/release-info.yaml in the bundle.
# Output must be deterministic: only use values ferry passes in.
set -eu

: "${FERRY_BUNDLE_NAME:?FERRY_BUNDLE_NAME must be set (ferry sets it)}"
: "${FERRY_BUNDLE_VERSION:?FERRY_BUNDLE_VERSION must be set (ferry sets it)}"

cat <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-release-info
  labels:
    app.kubernetes.io/name: shop-release-info
    app.kubernetes.io/part-of: shop
data:
  bundle: "${FERRY_BUNDLE_NAME}"
  version: "${FERRY_BUNDLE_VERSION}"
YAML
