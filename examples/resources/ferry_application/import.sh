# Import an application by name.
terraform import ferry_application.shop shop-acme
