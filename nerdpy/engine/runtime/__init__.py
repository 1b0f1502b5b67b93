"""Running containers: the OCI runtime (runc), the per-container monitor and its wire protocol, cgroups."""
