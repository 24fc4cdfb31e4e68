variable "customer" {
  description = "Customer identifier; used for the namespace, database and DNS names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.customer))
    error_message = "customer must be 3-32 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "region" {
  description = "Cloud region the customer's infrastructure lives in."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like \"eu-west-1\"."
  }
}

variable "replicas" {
  description = "Number of api and web replicas for this customer."
  type        = number
  default     = 2

  validation {
    condition     = var.replicas >= 1 && var.replicas <= 10 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number between 1 and 10."
  }
}
