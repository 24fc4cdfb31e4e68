locals {
  namespace = "shop-${var.customer}"
  hostname  = "${var.customer}.shop.example.com"

  database = {
    name   = replace("shop_${var.customer}", "-", "_")
    host   = "${var.customer}-db.${var.region}.db.example.internal"
    port   = 5432
    engine = "postgres"
    size   = var.replicas > 4 ? "large" : "small"
  }

  labels = {
    "app.kubernetes.io/part-of" = "shop"
    "example.com/customer"      = var.customer
  }
}

# Stand-in for a managed database; replace with a real provider resource.
resource "terraform_data" "database" {
  input = {
    name   = local.database.name
    host   = local.database.host
    port   = local.database.port
    engine = local.database.engine
    size   = local.database.size
    region = var.region
    labels = local.labels
  }
}

# Stand-in for the customer's DNS record pointing at the shop ingress.
resource "terraform_data" "dns" {
  input = {
    name   = local.hostname
    type   = "CNAME"
    target = "ingress.${var.region}.shop.example.com"
    ttl    = 300
  }
}

check "hostname_length" {
  assert {
    condition     = length(local.hostname) <= 63
    error_message = "hostname ${local.hostname} is longer than 63 characters."
  }
}
