"""The content store (blobs by digest), the metadata database and garbage collection."""
