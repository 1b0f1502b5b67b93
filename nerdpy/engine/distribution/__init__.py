"""Registries: references, platforms, manifests, hosts.toml, authentication, credentials, the registry client, pull and push."""
