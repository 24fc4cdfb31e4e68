variable "bundle" {
  description = "The bundle, pinned by digest."
  type        = string
}

variable "customer" {
  description = "Customer identifier: the Argo CD project, the namespace, the application shop-CUSTOMER."
  type        = string
}

variable "labels" {
  description = "Labels of the customer's environment (its AppProject), for ferry fleet status selectors."
  type        = map(string)
  default     = {}
}

variable "cluster_server" {
  description = "API server URL of the customer's cluster, as Argo CD reaches it."
  type        = string
}

variable "cluster_token" {
  description = "Bearer token Argo CD uses for the customer's cluster. Write-only."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "cluster_ca_file" {
  description = "PEM file of the CA of the customer's API server."
  type        = string
}

variable "deployment_windows" {
  description = "The customer's deployment windows."
  type = list(object({
    kind      = string
    schedule  = string
    duration  = string
    time_zone = optional(string, "UTC")
  }))
  default = []
}
