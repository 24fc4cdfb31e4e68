# Only built-in Terraform features are used (terraform_data, check), so
# `terraform init` needs no provider downloads and works offline.
terraform {
  required_version = ">= 1.5"
}
