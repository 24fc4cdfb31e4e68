output "database_url" {
  description = "Database connection URL without credentials (fake, for the example)."
  value       = "postgres://${terraform_data.database.output.host}:${terraform_data.database.output.port}/${terraform_data.database.output.name}?sslmode=require"
}

output "hostname" {
  description = "Public hostname of the customer's shop."
  value       = terraform_data.dns.output.name
}

output "namespace" {
  description = "Kubernetes namespace Argo CD deploys the customer's shop into."
  value       = local.namespace
}
