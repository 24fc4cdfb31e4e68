# Refuse to plan a deployment outside the customer's window.
resource "terraform_data" "release" {
  input = data.ferry_bundle.shop.digest

  lifecycle {
    precondition {
      condition     = provider::ferry::window_status(ferry_environment.acme.deployment_window, plantimestamp()).open
      error_message = "ACME's deployment window is closed: ${provider::ferry::window_status(ferry_environment.acme.deployment_window, plantimestamp()).reason}"
    }
  }
}

output "acme_window" {
  value = provider::ferry::window_status(ferry_environment.acme.deployment_window, plantimestamp())
}
