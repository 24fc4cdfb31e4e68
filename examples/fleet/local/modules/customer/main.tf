# One customer's environment and application, shared by every customer root in ../../customers.
# The root module passes the bundle (pinned by digest: `ferry fleet rollout` runs
# terraform apply -var bundle=HOST/PATH@sha256:…) and the customer's own values.

terraform {
  required_version = ">= 1.11"
  required_providers {
    ferry = {
      source = "ferry-dev/ferry"
    }
  }
}

data "ferry_bundle" "release" {
  reference = var.bundle
}

# The customer's slice of Argo CD: project, cluster, namespace, registry access, windows.
resource "ferry_environment" "customer" {
  name                = var.customer
  namespaces          = [var.customer]
  source_repositories = ["oci://${data.ferry_bundle.release.repository}"]
  cluster_resources   = ["Namespace"]
  labels              = var.labels

  cluster {
    server          = var.cluster_server
    bearer_token_wo = var.cluster_token
    ca_data         = file(var.cluster_ca_file)
  }

  dynamic "deployment_window" {
    for_each = var.deployment_windows
    content {
      kind      = deployment_window.value.kind
      schedule  = deployment_window.value.schedule
      duration  = deployment_window.value.duration
      time_zone = deployment_window.value.time_zone
    }
  }
}

# The application, synced to exactly the bundle digest; ferry fleet rollout reads it afterwards
# to decide whether the customer is done.
resource "ferry_application" "shop" {
  name        = "shop-${var.customer}"
  environment = ferry_environment.customer.project
  bundle      = data.ferry_bundle.release.pinned_reference
  path        = data.ferry_bundle.release.argocd_source.path
  namespace   = var.customer

  sync_options {
    create_namespace = true
    prune            = true
  }

  # A closed window is the rollout's business (it defers the customer); fail rather than wait.
  window_policy = "fail"
  stuck_after   = "5m"
}
