"""Key storage, signing, and OCSP fetching for the security server's own certificates."""
