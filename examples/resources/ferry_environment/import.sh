# Import an environment by name (its AppProject). Secrets are never read back into state, so the
# first apply after an import writes them again.
terraform import ferry_environment.acme acme
