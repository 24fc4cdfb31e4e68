#!/usr/bin/env bash
# The whole per-customer flow on this machine, as `make demo` runs it:
#   1. start a registry, a Kubernetes control plane (with the simulated kubelet, so Pods
#      "run") and Argo CD as local processes (internal/testenv, `make testenv-up`);
#   2. ferry bundle push examples/release to the local registry;
#   3. ferry bundle pull its Terraform module next to a copy of this directory;
#   4. terraform apply: bundle -> infrastructure -> environment -> application, ending with
#      the application Synced and Healthy at the bundle digest (the postcondition in main.tf);
#   5. ferry app status (the same engine, outside Terraform), then terraform plan again:
#      nothing to change.
# Needs bin/ferry and bin/terraform-provider-ferry (make build) and the tool cache (make tools).
# DEMO_DIR (default build/demo) holds everything; DEMO_KEEP=1 leaves the environment running
# (stop it with: FERRY_TESTENV_DIR=$DEMO_DIR/testenv make testenv-down).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
demo=${DEMO_DIR:-$root/build/demo}
ferry=$root/bin/ferry
step() { printf '\n==> %s\n' "$*"; }

rm -rf "$demo"
mkdir -p "$demo/customer"
export FERRY_TESTENV_DIR=$demo/testenv
(cd "$root" && go build -o "$demo/bin/testenv" ./internal/testenv/cmd/testenv)
stop() {
	if [ "${DEMO_KEEP:-}" = 1 ]; then
		echo "Environment left running; stop it with: FERRY_TESTENV_DIR=$FERRY_TESTENV_DIR make testenv-down"
	else
		"$demo/bin/testenv" down
	fi
}
trap stop EXIT

step "Start a registry, Kubernetes and Argo CD on loopback"
exports=$("$demo/bin/testenv" up)
eval "$exports"
ref=$FERRY_TESTENV_REGISTRY/shop/bundle:1.4.0

step "Push examples/release as $ref"
SOURCE_DATE_EPOCH=1764115200 "$ferry" bundle push "$root/examples/release" "$ref" --plain-http --no-tty \
	--offline # the example images are digest-pinned placeholders: lock them as written
"$ferry" bundle inspect "$ref" --plain-http

step "Fetch the bundle's Terraform module for the customer root module"
cp "$root"/examples/customer/*.tf "$demo/customer/"
cd "$demo/customer"
"$ferry" bundle pull "$ref" -o bundle --only terraform --plain-http --no-tty

# The provider is the one just built, installed from a local plugin directory: no download
# (terraform_data is built in).
platform=$(go env GOOS)_$(go env GOARCH)
plugins=$demo/plugins/registry.terraform.io/ferry-dev/ferry/0.0.1/$platform
mkdir -p "$plugins"
cp "$root/bin/terraform-provider-ferry" "$plugins/terraform-provider-ferry_v0.0.1"
export TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_INPUT=0
export TF_VAR_bundle=$ref TF_VAR_registry_plain_http=true TF_VAR_kubeconfig=$KUBECONFIG \
	TF_VAR_argocd_namespace=$FERRY_TESTENV_ARGOCD_NAMESPACE TF_VAR_cluster_server=$FERRY_TESTENV_CLUSTER_SERVER \
	TF_VAR_cluster_ca_file=$FERRY_TESTENV_CLUSTER_CA_FILE
TF_VAR_cluster_token=$(cat "$FERRY_TESTENV_CLUSTER_TOKEN_FILE")
export TF_VAR_cluster_token

step "terraform init (the bundle's module; the provider from $demo/plugins)"
terraform init -no-color -plugin-dir="$demo/plugins" >/dev/null

step "terraform apply for customer acme"
terraform apply -auto-approve -no-color

step "The application"
terraform output -no-color application

step "The same application through the CLI (the provider's engine)"
"$ferry" app status shop-acme --argocd-namespace "$FERRY_TESTENV_ARGOCD_NAMESPACE"
status=$("$ferry" app status shop-acme --argocd-namespace "$FERRY_TESTENV_ARGOCD_NAMESPACE" --format 'go-template={{.syncStatus}}/{{.healthStatus}}')
[ "$status" = Synced/Healthy ] || { echo "ferry app status says $status, want Synced/Healthy" >&2; exit 1; }

step "terraform plan again: nothing to change"
terraform plan -detailed-exitcode -no-color >/dev/null && echo "No changes."
