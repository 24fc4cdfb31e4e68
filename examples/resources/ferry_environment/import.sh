# Import an environment by name (its AppProject).
terraform import ferry_environment.acme acme
