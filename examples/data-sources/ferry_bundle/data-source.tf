terraform {
  required_providers {
    ferry = {
      source = "ferry-dev/ferry"
    }
  }
}

variable "reference" {
  description = "The bundle pushed by `ferry bundle push`, by tag or digest."
  type        = string
  default     = "127.0.0.1:5000/shop/bundle:1.4.0"
}

variable "plain_http" {
  description = "Talk plain HTTP to the bundle's registry (a loopback registry such as `make testenv-up` starts)."
  type        = bool
  default     = true
}

provider "ferry" {
  registry {
    address    = split("/", var.reference)[0]
    plain_http = var.plain_http
  }
}

data "ferry_bundle" "shop" {
  reference = var.reference
}

# Deploy exactly this digest everywhere.
output "digest" {
  value = data.ferry_bundle.shop.digest
}

output "pinned_reference" {
  value = data.ferry_bundle.shop.pinned_reference
}

output "argocd_source" {
  value = data.ferry_bundle.shop.argocd_source
}

output "opentofu_module_source" {
  value = data.ferry_bundle.shop.opentofu_module_source
}

output "api_image" {
  value = data.ferry_bundle.shop.images["api"].pinned_reference
}
