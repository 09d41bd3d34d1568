"""The registry's own trust services for development, tests and the demo: a CA, an OCSP responder and a TSA."""
