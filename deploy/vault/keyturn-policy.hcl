# The least a Vault token needs for keyturn to rotate the credentials kept
# at secret/smartcar/<app>, with KV version 2 mounted at secret/. Replace
# "secret" with the backend's mount and "smartcar/+" with its path (one
# app per "+"). backends/vault's tests run keyturn under exactly this file
# and check that each capability in it is needed.

# The current secret; each version is one promoted secret. keyturn writes
# new versions only with check-and-set.
path "secret/data/smartcar/+" {
  capabilities = ["create", "read", "update"]
}

# The version list, and keyturn's bookkeeping in custom_metadata.
path "secret/metadata/smartcar/+" {
  capabilities = ["read", "update"]
}

# Removing a previous secret once it is proven dead at Smartcar: first
# soft-delete the version, then destroy it.
path "secret/delete/smartcar/+" {
  capabilities = ["update"]
}
path "secret/destroy/smartcar/+" {
  capabilities = ["update"]
}

# The pending secret, kept beside the current one until it is verified,
# then destroyed.
path "secret/data/smartcar/+/pending" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/smartcar/+/pending" {
  capabilities = ["read"]
}
path "secret/destroy/smartcar/+/pending" {
  capabilities = ["update"]
}

# Looking up and renewing its own token. Vault's default policy grants
# both; they are here for tokens created without it.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
