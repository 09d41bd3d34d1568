"""The security server's proxies: the client proxy (IS-facing), the server proxy (mTLS) and the peer link."""
