# One customer's deployment, in dependency order:
#   bundle (data source) -> infrastructure (the bundle's own Terraform module)
#   -> environment (Argo CD project, cluster, windows) -> application (synced to the digest).
#
# The infrastructure module is the bundle's Terraform layer. Its source is one of:
#   - "./bundle/terraform", after `ferry bundle pull REGISTRY/shop/bundle:1.4.0 -o bundle --only terraform`
#     (the local path, verified by digest as it is pulled);
#   - the layer's blob in the registry, `https://REGISTRY/v2/shop/bundle/blobs/sha256:…?archive=zip`,
#     as `ferry bundle inspect` and data.ferry_bundle.release.terraform_module_source print it:
#     `terraform init` installs it with no ferry binary on the machine (CI, HCP Terraform runs);
#   - for OpenTofu, `oci://REGISTRY/shop/bundle?digest=sha256:…` (opentofu_module_source).
# Whichever it is, verify_modules below fails the plan unless the installed module is byte for
# byte the Terraform layer of the bundle digest the application syncs.
#
# `make demo` runs all of it against a local registry, Kubernetes and Argo CD.

terraform {
  required_version = ">= 1.11"
  required_providers {
    ferry = {
      source = "ferry-dev/ferry"
    }
  }
}

provider "ferry" {
  kubernetes {
    config_path = var.kubeconfig
  }
  argocd_namespace = var.argocd_namespace

  registry {
    address    = split("/", var.bundle)[0]
    plain_http = var.registry_plain_http
  }
}

# The release candidate. A tag is resolved at every plan; everything below uses the digest.
data "ferry_bundle" "release" {
  reference      = var.bundle
  verify_modules = ["infrastructure"]
}

# Infrastructure first: the Terraform module shipped in the same bundle.
module "infrastructure" {
  source = "./bundle/terraform"

  customer = var.customer
  region   = var.region
  replicas = var.replicas
}

# The customer's slice of Argo CD: project, cluster, namespace, registry access, windows.
resource "ferry_environment" "customer" {
  name                = var.customer
  description         = "Shop for ${var.customer}"
  namespaces          = [module.infrastructure.namespace]
  source_repositories = ["oci://${data.ferry_bundle.release.repository}"]
  cluster_resources   = ["Namespace"]

  cluster {
    server                  = var.cluster_server
    bearer_token_wo         = var.cluster_token
    bearer_token_wo_version = var.cluster_token_version
    ca_data                 = file(var.cluster_ca_file)
  }

  # Argo CD pulls the bundle with these (an OCI repository Secret scoped to the project).
  registry_credentials {
    username   = var.registry_username
    password   = var.registry_password
    plain_http = var.registry_plain_http
  }

  dynamic "deployment_window" {
    for_each = var.deployment_windows
    content {
      kind        = deployment_window.value.kind
      schedule    = deployment_window.value.schedule
      duration    = deployment_window.value.duration
      time_zone   = deployment_window.value.time_zone
      description = deployment_window.value.description
    }
  }
}

# Then the application, synced to exactly the bundle digest once the infrastructure exists.
resource "ferry_application" "shop" {
  name        = "shop-${var.customer}"
  environment = ferry_environment.customer.project
  bundle      = data.ferry_bundle.release.pinned_reference
  path        = data.ferry_bundle.release.argocd_source.path
  namespace   = module.infrastructure.namespace

  sync_options {
    create_namespace  = true
    prune             = true
    server_side_apply = true
  }

  window_policy = var.window_policy
  stuck_after   = "5m"

  timeouts {
    create = "20m"
    update = "20m"
  }

  depends_on = [module.infrastructure]

  lifecycle {
    postcondition {
      condition     = self.sync_status == "Synced" && self.health_status == "Healthy" && self.synced_revision == data.ferry_bundle.release.digest
      error_message = "shop-${var.customer} is ${self.sync_status}/${self.health_status} at ${self.synced_revision}, not Synced/Healthy at ${data.ferry_bundle.release.digest}."
    }
  }
}
