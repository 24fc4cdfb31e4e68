variable "customer" {
  description = "Customer identifier: names the Argo CD project, the application and the namespace."
  type        = string
  default     = "acme"
}

variable "region" {
  description = "Region of the customer's infrastructure."
  type        = string
  default     = "eu-west-1"
}

variable "replicas" {
  description = "Replicas of the api and web services."
  type        = number
  default     = 2
}

variable "bundle" {
  description = "The release candidate pushed by `ferry bundle push`, by tag or digest."
  type        = string
}

variable "registry_plain_http" {
  description = "Talk plain HTTP to the bundle's registry (a loopback registry such as `make testenv-up` starts)."
  type        = bool
  default     = false
}

variable "registry_username" {
  description = "User Argo CD pulls the bundle as; null for an anonymous registry."
  type        = string
  default     = null
}

variable "registry_password" {
  description = "Password or token for registry_username."
  type        = string
  sensitive   = true
  default     = null
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

variable "cluster_server" {
  description = "API server URL of the customer's cluster, as Argo CD reaches it."
  type        = string
}

variable "cluster_token" {
  description = "Bearer token Argo CD uses for the customer's cluster. Write-only: never stored in state."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "cluster_token_version" {
  description = "Bump to send a rotated cluster_token."
  type        = number
  default     = 1
}

variable "cluster_ca_file" {
  description = "PEM file of the CA of the customer's API server."
  type        = string
}

variable "deployment_windows" {
  description = "The customer's deployment windows (Argo CD sync windows)."
  type = list(object({
    kind        = string
    schedule    = string
    duration    = string
    time_zone   = optional(string, "UTC")
    description = optional(string)
  }))
  default = []
}

variable "window_policy" {
  description = "What an apply does when the window is closed: fail, wait or override."
  type        = string
  default     = "fail"
}
