terraform {
  required_providers {
    ferry = {
      source = "ferry-dev/ferry"
    }
  }
}

provider "ferry" {
  # The cluster where Argo CD runs (same names as the hashicorp/kubernetes provider).
  kubernetes {
    config_path    = "~/.kube/config"
    config_context = "platform"
  }
  argocd_namespace = "argocd"

  # Credentials for the bundle registry, on top of ~/.docker/config.json and its helpers.
  registry {
    address  = "registry.example.com"
    username = "ci"
    password = var.registry_token
  }
}

variable "registry_token" {
  type      = string
  sensitive = true
}
