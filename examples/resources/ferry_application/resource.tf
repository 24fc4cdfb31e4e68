data "ferry_bundle" "shop" {
  reference = "registry.example.com/shop/bundle:1.4.0"
}

# Infrastructure first...
module "infra" {
  source   = "./infra"
  customer = "acme"
}

# ...then the application, synced to exactly the bundle digest.
resource "ferry_application" "shop" {
  name        = "shop-acme"
  environment = ferry_environment.acme.project
  bundle      = data.ferry_bundle.shop.pinned_reference
  namespace   = "acme-shop"

  sync_options {
    prune            = true
    create_namespace = true
  }

  kustomize {
    name_prefix   = "acme-"
    common_labels = { customer = "acme" }
  }

  window_policy  = "wait" # or "fail" (default), or "override" with override_reason
  health_timeout = "12m"
  stuck_after    = "5m"

  timeouts {
    create = "30m"
    update = "30m"
  }

  depends_on = [module.infra]
}
