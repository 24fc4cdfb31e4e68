output "bundle" {
  description = "The deployed bundle, pinned by digest."
  value       = data.ferry_bundle.release.pinned_reference
}

output "hostname" {
  description = "The customer's shop hostname (from the infrastructure module)."
  value       = module.infrastructure.hostname
}

output "application" {
  description = "The application's state after the apply."
  value = {
    name            = ferry_application.shop.name
    sync_status     = ferry_application.shop.sync_status
    health_status   = ferry_application.shop.health_status
    synced_revision = ferry_application.shop.synced_revision
    last_operation  = ferry_application.shop.last_operation
  }
}
