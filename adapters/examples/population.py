"""A small population register: persons looked up by personal code, over SOAP and over REST.

Run it with ``python -m adapters.examples.population --port 8082``:

* SOAP at ``/soap`` (WSDL at ``/soap?wsdl``): ``getPerson(personCode)`` and ``findPersons(surname)``;
* REST at ``/rest/persons`` (OpenAPI at ``/rest/persons/openapi.json``): ``GET /rest/persons/{personCode}`` and
  ``GET /rest/persons?surname=...``.

Registered on a security server as a REST service ``persons`` whose URL is ``http://HOST:PORT/rest/persons``
(with the OpenAPI description, whose paths ``/{personCode}`` and ``/`` become the service's endpoints), a
consumer's ``GET /r1/.../population/persons/38001010014`` reaches ``/rest/persons/38001010014``: the provider's
security server appends the path after the service code to the service's URL (pr-rest §4.1). Every lookup is logged
with who asked (client, user id, message id): the register knows which member's system asked on whose behalf.
The seed data (``population.json``) is invented.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from typing import Any, Mapping, TypedDict

import structlog
from twisted.web import resource

from adapters.provider.caller import Caller
from adapters.provider.rest import RestError, RestProvider, RestRequest
from adapters.provider.server import main_for
from adapters.provider.soap import SoapProvider

NAMESPACE = "http://population.fedbus.example/producer"
log = structlog.get_logger()


class Person(TypedDict):
    """One person in the register."""

    personCode: str
    givenName: str
    surname: str
    birthDate: dt.date
    residence: str
    children: list[str]


class Persons(TypedDict):
    """A list of persons (findPersons)."""

    person: list[Person]


def load_persons() -> dict[str, Person]:
    """The seed data shipped with the package, by personal code."""
    text = resources.files("adapters.examples").joinpath("population.json").read_text(encoding="utf-8")
    records: list[Mapping[str, Any]] = json.loads(text)["persons"]
    persons: dict[str, Person] = {}
    for record in records:
        person = Person(
            personCode=str(record["personCode"]), givenName=str(record["givenName"]), surname=str(record["surname"]),
            birthDate=dt.date.fromisoformat(str(record["birthDate"])), residence=str(record["residence"]),
            children=[str(code) for code in record["children"]],
        )
        persons[person["personCode"]] = person
    return persons


class Register:
    """The register's data and its two interfaces."""

    def __init__(self, persons: Mapping[str, Person] | None = None) -> None:
        self.persons = dict(persons if persons is not None else load_persons())

    def lookup(self, caller: Caller, person_code: str) -> Person | None:
        """One person, logging who asked."""
        log.info("person_looked_up", person_code=person_code, client=str(caller.client), user_id=caller.user_id,
                 message_id=caller.message_id)
        return self.persons.get(person_code)

    def by_surname(self, caller: Caller, surname: str) -> list[Person]:
        """Everyone with this surname, logging who asked."""
        log.info("persons_searched", surname=surname, client=str(caller.client), user_id=caller.user_id,
                 message_id=caller.message_id)
        return [p for p in self.persons.values() if p["surname"].casefold() == surname.casefold()]

    def soap(self) -> SoapProvider:
        """getPerson and findPersons over X-Road SOAP."""
        provider = SoapProvider(NAMESPACE, name="populationService")
        titles = {"personCode": "Personal identification code", "surname": "Surname"}

        @provider.operation(version="v1", title="Look up a person by personal code", titles=titles)
        def getPerson(caller: Caller, personCode: str) -> Persons:  # noqa: N802, N803 - X-Road names
            """The person with this code: a list of one, or empty when there is none (a business answer)."""
            found = self.lookup(caller, personCode)
            return {"person": [found] if found is not None else []}

        @provider.operation(version="v1", title="Find persons by surname", titles=titles)
        def findPersons(caller: Caller, surname: str) -> Persons:  # noqa: N802 - the X-Road service code
            """Everyone with this surname."""
            return {"person": self.by_surname(caller, surname)}

        return provider

    def rest(self) -> RestProvider:
        """``GET /{personCode}`` and ``GET /?surname=`` (mounted at ``/rest/persons``), with an OpenAPI description."""
        provider = RestProvider("Population register: persons", version="1.0.0",
                                description="Invented persons, looked up by personal code or surname.")

        @provider.route("GET", "/{personCode}", summary="One person by personal code", returns=Person)
        def get_person(request: RestRequest, personCode: str) -> Person:  # noqa: N803 - the path parameter
            found = self.lookup(request.caller, personCode)
            if found is None:
                raise RestError(404, f"no person with code {personCode}", code="not_found")
            return found

        @provider.route("GET", "/", summary="Persons by surname", returns=list[Person],
                        query={"surname": "Surname to look for (required)"})
        def find_persons(request: RestRequest) -> list[Person]:
            surname = request.param("surname")
            if not surname:
                raise RestError(400, "query parameter surname is required", code="missing_parameter")
            return self.by_surname(request.caller, surname)

        return provider

    def resource(self, base_url: str) -> resource.Resource:
        """``/soap`` and ``/rest/persons`` under one root."""
        root = resource.Resource()  # type: ignore[no-untyped-call]
        rest = resource.Resource()  # type: ignore[no-untyped-call]
        root.putChild(b"soap", self.soap().resource(f"{base_url}/soap"))  # type: ignore[arg-type]
        root.putChild(b"rest", rest)  # type: ignore[arg-type]
        rest.putChild(b"persons", self.rest().resource(f"{base_url}/rest/persons"))  # type: ignore[arg-type]
        return root


def build_resource(base_url: str) -> resource.Resource:
    """The register with its seed data."""
    return Register().resource(base_url)


main = main_for(build_resource, "population register", "Example population register (SOAP at /soap, REST at /rest/persons)")

if __name__ == "__main__":
    main()
