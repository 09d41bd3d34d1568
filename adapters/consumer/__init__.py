"""What a consumer department's system uses to call services through its own security server.

* :mod:`adapters.consumer.soap`: X-Road SOAP 4.0 services, through zeep (:class:`~adapters.consumer.soap.SoapConsumer`);
* :mod:`adapters.consumer.rest`: REST r1 services (:class:`~adapters.consumer.rest.RestConsumer`);
* :mod:`adapters.consumer.faults`: the typed exceptions both raise for X-Road faults.

Both are plain synchronous clients (requests underneath), for scripts, web applications and batch jobs.
"""
