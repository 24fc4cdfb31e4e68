# globex's root module: the shared customer module with globex's values. ferry fleet rollout runs
# terraform apply here with -var bundle=HOST/PATH@sha256:… (fleet.yaml: dir: customers/globex).

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
}

variable "bundle" {
  description = "The bundle, pinned by digest (set by ferry fleet rollout)."
  type        = string
}

variable "kubeconfig" {
  description = "Kubeconfig of the cluster Argo CD runs in."
  type        = string
  default     = "~/.kube/config"
}

variable "argocd_namespace" {
  description = "Namespace of Argo CD's control plane."
  type        = string
  default     = "argocd"
}

variable "cluster_token" {
  description = "Bearer token Argo CD uses for globex's cluster (TF_VAR_cluster_token)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

module "customer" {
  source = "../../modules/customer"

  bundle             = var.bundle
  customer           = "globex"
  labels             = { region = "eu", tier = "standard" }
  cluster_server     = "https://globex.k8s.example.com"
  cluster_token      = var.cluster_token
  cluster_ca_file    = "${path.module}/cluster-ca.pem"
  deployment_windows = []
}
