"""The test federation, in layers: each test builds only as much of it as it needs, all of it at run time.

* :mod:`.pki` -- keys, certificates, CSRs and OCSP responses made with cryptography alone (odd and broken ones too);
* :mod:`.ca` -- the development CA (``central_registry.trust``) issuing under the certificate profile, into keys or
  soft tokens, and its OCSP responder's answers;
* :mod:`.gconf` -- global configuration values: the shared pieces every federation's configuration is made of,
  sample parameters and Hypothesis strategies;
* :mod:`.departments` -- the two departments (consumer and provider) of the evidence and end-to-end tests;
* :mod:`.evidence` -- their signed, logged and timestamped exchanges, as a message log holds them;
* :mod:`.peers` -- three security servers' authentication tokens and defective certificates, for the peer link;
* :mod:`.provider` -- a provider's SOAP service on loopback;
* :mod:`.world` -- two security servers wired in memory (stores, message logs, proxies, link) around that service.

``tests/e2e_federation.py`` runs the same kind of federation as services on the real reactor, built from these
pieces. Expensive keys are made once per test process; nothing here is ever committed.
"""
