"""Example services, each runnable alone (``python -m adapters.examples.<name> --port N``).

* :mod:`~adapters.examples.getrandom`: ``getRandom``, the service of X-Road's example adapter;
* :mod:`~adapters.examples.hello`: ``helloService``, its other service;
* :mod:`~adapters.examples.population`: a small population register, persons by personal code, over SOAP
  (``getPerson``, ``findPersons``) and REST (``GET /persons/{personCode}``, ``GET /persons?surname=``), with seed
  data shipped in ``population.json``.
"""
