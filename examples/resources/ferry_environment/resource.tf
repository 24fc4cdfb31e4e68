# One customer: its cluster, namespaces, bundle repositories and deployment windows.
resource "ferry_environment" "acme" {
  name                = "acme"
  description         = "ACME Corp production"
  namespaces          = ["acme-shop"]
  source_repositories = ["oci://registry.example.com/shop/*"]
  cluster_resources   = ["Namespace"]

  cluster {
    server                  = "https://acme.k8s.example.com:6443"
    bearer_token_wo         = var.acme_cluster_token
    bearer_token_wo_version = 1
    ca_data                 = file("${path.module}/acme-ca.pem")
  }

  registry_credentials {
    username            = "argocd-puller"
    password_wo         = var.registry_token
    password_wo_version = 1 # bump to write a rotated token
  }

  # Weekday nights in Berlin...
  deployment_window {
    kind        = "allow"
    schedule    = "0 2 * * 1-5"
    duration    = "2h"
    time_zone   = "Europe/Berlin"
    description = "weekday maintenance window"
  }

  # ...but never during the December freeze.
  deployment_window {
    kind        = "deny"
    schedule    = "0 0 15 12 *"
    duration    = "504h"
    time_zone   = "Europe/Berlin"
    description = "December freeze"
  }

  # Set during an incident: nothing deploys.
  frozen = false
}

variable "acme_cluster_token" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "registry_token" {
  type      = string
  sensitive = true
  ephemeral = true
}
