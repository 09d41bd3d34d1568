"""What a provider department's system uses to offer services to the bus.

* :mod:`adapters.provider.soap`: plain Python callables as an X-Road SOAP 4.0 service (document/literal
  wrapped), with a generated WSDL (:class:`~adapters.provider.soap.SoapProvider`);
* :mod:`adapters.provider.rest`: callables as a REST service with an OpenAPI 3 description
  (:class:`~adapters.provider.rest.RestProvider`);
* :mod:`adapters.provider.caller`: who asked (:class:`~adapters.provider.caller.Caller`), given to every callable;
* :mod:`adapters.provider.server`: run either as a Twisted web server.
"""
